"""The chain port: one client per configured chain, every call bounded in time.

web3 is imported on first use, not at start-up: it costs most of a second to import and
nothing on the ``me`` path needs it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from services.errors import BadUserInput, ChainUnavailable, InsufficientFunds

if TYPE_CHECKING:
    from web3 import AsyncWeb3
    from web3.types import TxParams

log = logging.getLogger(__name__)
T = TypeVar("T")

EMBEDDED_RPC = "embedded"


@dataclass(frozen=True)
class ChainConfig:
    chain_id: int
    name: str
    rpc_url: str
    confirmations: int
    deadline_seconds: int
    bump_interval_seconds: int

    @property
    def embedded(self) -> bool:
        return self.rpc_url == EMBEDDED_RPC


@dataclass(frozen=True)
class BlockInfo:
    number: int
    gas_limit: int
    base_fee: int | None  # None on chains without EIP-1559


class NodeRejected(Exception):
    """The node answered with an error (not a transport failure)."""


class Chain:
    """A JSON-RPC node (or the in-process EVM) for one chain id."""

    def __init__(self, config: ChainConfig, timeout: float) -> None:
        self.config = config
        self._timeout = timeout
        self._w3: AsyncWeb3[Any] | None = None
        self._verified = False

    @property
    def chain_id(self) -> int:
        return self.config.chain_id

    def _connect(self) -> AsyncWeb3[Any]:
        if self._w3 is None:
            from web3 import AsyncHTTPProvider, AsyncWeb3

            if self.config.embedded:
                from web3.providers.eth_tester import AsyncEthereumTesterProvider

                self._w3 = AsyncWeb3(AsyncEthereumTesterProvider())
            else:
                provider = AsyncHTTPProvider(
                    self.config.rpc_url,
                    request_kwargs={"timeout": self._timeout},
                    exception_retry_configuration=None,
                )
                self._w3 = AsyncWeb3(provider)
        return self._w3

    async def _call(self, operation: Callable[[AsyncWeb3[Any]], Awaitable[T]]) -> T:
        """Run one RPC operation; transport failures and timeouts become CHAIN_UNAVAILABLE."""
        from web3.exceptions import ContractLogicError, Web3RPCError

        w3 = self._connect()
        try:
            if not self._verified:
                actual = await asyncio.wait_for(w3.eth.chain_id, self._timeout)
                if actual != self.chain_id:
                    log.error("chain %s answers with chain id %s", self.chain_id, actual)
                    raise ChainUnavailable(
                        f"the node for chain {self.chain_id} reports chain id {actual}"
                    )
                self._verified = True
            return await asyncio.wait_for(operation(w3), self._timeout)
        except (ContractLogicError, Web3RPCError, NodeRejected, ChainUnavailable):
            raise
        except (TimeoutError, OSError) as exc:
            raise self._unavailable(exc) from exc
        except Exception as exc:
            if _is_transport_error(exc):
                raise self._unavailable(exc) from exc
            raise

    def _unavailable(self, exc: BaseException) -> ChainUnavailable:
        log.warning("chain %s unavailable: %s", self.chain_id, type(exc).__name__)
        return ChainUnavailable(
            f"chain {self.chain_id} ({self.config.name}) did not answer in time", field=None
        )

    async def close(self) -> None:
        if self._w3 is not None and not self.config.embedded:
            await self._w3.provider.disconnect()
        self._w3 = None

    async def latest_block(self) -> BlockInfo:
        block = await self._call(lambda w3: w3.eth.get_block("latest"))
        return BlockInfo(int(block["number"]), int(block["gasLimit"]), block.get("baseFeePerGas"))

    async def balance(self, address: str) -> tuple[int, int]:
        """(wei, block number), read at one block so the two agree."""
        number = await self._call(lambda w3: w3.eth.block_number)
        wei = await self._call(lambda w3: w3.eth.get_balance(address, block_identifier=number))  # type: ignore[arg-type]
        return int(wei), int(number)

    async def pending_nonce(self, address: str) -> int:
        return int(
            await self._call(lambda w3: w3.eth.get_transaction_count(address, "pending"))  # type: ignore[arg-type]
        )

    async def max_priority_fee(self) -> int:
        try:
            return int(await self._call(lambda w3: w3.eth.max_priority_fee))
        except Exception as exc:  # nodes without eth_maxPriorityFeePerGas
            if isinstance(exc, ChainUnavailable):
                raise
            return 10**9

    async def gas_price(self) -> int:
        return int(await self._call(lambda w3: w3.eth.gas_price))

    async def estimate_gas(self, tx: dict[str, Any]) -> int:
        from web3.exceptions import ContractLogicError, Web3RPCError

        try:
            return int(await self._call(lambda w3: w3.eth.estimate_gas(tx)))  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise BadUserInput(
                f"the transaction would revert: {exc.message}", field="data"
            ) from exc
        except (Web3RPCError, ValueError) as exc:
            message = str(getattr(exc, "message", None) or exc)
            if "insufficient funds" in message.lower():
                raise InsufficientFunds("the wallet cannot pay for this transaction") from exc
            raise BadUserInput(f"the node rejected the transaction: {message}") from exc

    async def eth_call(self, to: str, data: bytes) -> bytes:
        result = await self._call(lambda w3: w3.eth.call({"to": to, "data": data}))
        return bytes(result)

    async def send_raw_transaction(self, raw: bytes) -> str:
        """Broadcast; a node's refusal raises NodeRejected with the node's message."""
        from web3.exceptions import Web3RPCError

        try:
            tx_hash = await self._call(lambda w3: w3.eth.send_raw_transaction(raw))
        except (Web3RPCError, ValueError) as exc:
            raise NodeRejected(str(getattr(exc, "message", None) or exc)) from exc
        return "0x" + bytes(tx_hash).hex()

    async def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        from web3.exceptions import TransactionNotFound

        try:
            found = await self._call(lambda w3: w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        return dict(found) if found else None

    async def block_number(self) -> int:
        return int(await self._call(lambda w3: w3.eth.block_number))

    async def revert_reason(self, call: dict[str, Any], block_number: int) -> str | None:
        """Replay a reverted call just before its block and return the node's reason."""
        from web3.exceptions import ContractLogicError

        try:
            params = cast("TxParams", call)
            block = max(0, block_number - 1)
            await self._call(lambda w3: w3.eth.call(params, block_identifier=block))
        except ContractLogicError as exc:
            return str(exc.message or exc)
        except Exception:
            return None
        return None

    async def dev_fund(self, address: str, wei: int) -> None:
        """Give ``address`` ``wei`` on a development chain (in-process EVM or anvil)."""
        if self.config.embedded:

            async def transfer(w3: AsyncWeb3[Any]) -> None:
                funder = (await w3.eth.accounts)[0]
                tx_hash = await w3.eth.send_transaction(
                    {"from": funder, "to": address, "value": wei}  # type: ignore[typeddict-item]
                )
                await w3.eth.wait_for_transaction_receipt(tx_hash)

            await self._call(transfer)
            return

        async def set_balance(w3: AsyncWeb3[Any]) -> None:
            current = await w3.eth.get_balance(address)  # type: ignore[arg-type]
            response = await w3.provider.make_request(
                "anvil_setBalance",
                [address, hex(current + wei)],
            )
            if "error" in response:
                raise NodeRejected(str(response["error"]))

        try:
            await self._call(set_balance)
        except NodeRejected as exc:
            raise BadUserInput(f"chain {self.chain_id} has no dev faucet") from exc


def _is_transport_error(exc: BaseException) -> bool:
    from web3.exceptions import ProviderConnectionError, RequestTimedOut

    if isinstance(exc, (ProviderConnectionError, RequestTimedOut)):
        return True
    try:
        import aiohttp
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, aiohttp.ClientError)


class Chains:
    """The configured chains; the first one is the default."""

    def __init__(
        self,
        configs: Sequence[ChainConfig],
        timeout: float,
        *,
        client: Callable[[ChainConfig, float], Chain] = Chain,
    ) -> None:
        # ``client`` builds each chain's client: a seam for fault drills and tests.
        self._chains = {c.chain_id: client(c, timeout) for c in configs}
        self.default_id = configs[0].chain_id

    def get(self, chain_id: int | None, *, field: str = "chainId") -> Chain:
        """The chain with this id (the default for None); BAD_USER_INPUT for an unknown id."""
        chain = self._chains.get(self.default_id if chain_id is None else chain_id)
        if chain is None:
            known = ", ".join(str(c) for c in self._chains)
            raise BadUserInput(f"unknown chain id {chain_id}; configured: {known}", field=field)
        return chain

    def all(self) -> list[ChainConfig]:
        return [chain.config for chain in self._chains.values()]

    async def close(self) -> None:
        for chain in self._chains.values():
            await chain.close()
