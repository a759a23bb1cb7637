"""The chain port: one client per configured chain, every call bounded in time.

Every chain speaks Ethereum JSON-RPC through a transport (``services/rpc.py``): HTTP for a
node, or the in-process EVM of the embedded default (``services/embedded_evm.py``: py-evm in
a child process of its own, over a pipe). This module holds the RPC logic once for both: the
calls and what a failure means (value formats and revert reasons: ``services/rpc_values.py``).
It needs neither web3 nor eth-abi, so the worker (and its Lambda package) runs without them.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.causes import words
from services.errors import BadUserInput, ChainUnavailable, InsufficientFunds
from services.rpc import RpcError, Transport, TransportFailed
from services.rpc_values import is_revert, quantity, revert_message, rpc_transaction, to_hex

if TYPE_CHECKING:
    from services.devchain import ChainJournal

log = logging.getLogger(__name__)

EMBEDDED_RPC = "embedded"
# How nodes say "the sender cannot pay" (geth, anvil; py-evm has two wordings).
_CANNOT_PAY = ("insufficient funds", "insufficient balance", "cannot afford", "enough balance")
# Integer fields of a receipt, as hex quantities over JSON-RPC.
_RECEIPT_INTS = (
    "blockNumber", "gasUsed", "effectiveGasPrice", "status", "cumulativeGasUsed",
    "transactionIndex", "type",
)  # fmt: skip
# Calls in flight per chain. Submits make their chain calls outside any lock, so a burst of
# them would otherwise open one connection each and time out at the node together; the wait
# for a slot does not count against the call's timeout.
MAX_IN_FLIGHT = 16


@dataclass(frozen=True)
class ChainConfig:
    chain_id: int
    name: str
    rpc_url: str
    confirmations: int
    deadline_seconds: int
    bump_interval_seconds: int
    native_currency_symbol: str = "ETH"
    native_currency_decimals: int = 18
    explorer_tx_url: str | None = None

    def explorer_url(self, tx_hash: str | None) -> str | None:
        """The explorer page of a transaction hash, when the chain has an explorer."""
        if not self.explorer_tx_url or not tx_hash:
            return None
        return self.explorer_tx_url.replace("{hash}", tx_hash)

    @property
    def embedded(self) -> bool:
        return self.rpc_url == EMBEDDED_RPC


@dataclass(frozen=True)
class BlockInfo:
    number: int
    gas_limit: int
    base_fee: int | None  # None on chains without EIP-1559


_NOT_READ = object()
RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 60.0


def _call_key(method: str, params: tuple[Any, ...]) -> str:
    return json.dumps([method, params], sort_keys=True, default=str)


class NodeRejected(Exception):
    """The node answered with an error (not a transport failure)."""


def _connect(config: ChainConfig, timeout: float, journal: ChainJournal | None) -> Transport:
    if config.embedded:
        from services.embedded_evm import EmbeddedTransport

        return EmbeddedTransport(journal)
    from services.rpc import HttpTransport

    return HttpTransport(config.rpc_url, timeout)


class Chain:
    """A JSON-RPC node (or the in-process EVM) for one chain id."""

    def __init__(self, config: ChainConfig, timeout: float) -> None:
        self.config = config
        self._timeout = timeout
        self._transport: Transport | None = None
        self._verified = False
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        # The in-process EVM's durable history (services/devchain.py), set by Chains.
        self.journal: ChainJournal | None = None
        # Answers fetched ahead, by call (only on the copies read_ahead returns).
        self._answers: dict[str, Any] | None = None
        # The embedded chain's child process, started again after it ended: not before
        # this loop time, with the wait doubling while it keeps failing.
        self._restart_at = 0.0
        self._restart_wait = RESTART_FIRST_SECONDS

    @property
    def chain_id(self) -> int:
        return self.config.chain_id

    async def _request(self, method: str, *params: Any) -> Any:
        """One RPC call; transport failures and timeouts become CHAIN_UNAVAILABLE, a node's
        error answer raises RpcError. An answer fetched ahead (``read_ahead``) serves it."""
        if self._answers is not None:
            answer = self._answers.pop(_call_key(method, params), _NOT_READ)
            if isinstance(answer, RpcError):
                raise answer
            if answer is not _NOT_READ:
                return answer
        async with self._slots:
            return await self._request_now(method, *params)

    async def _request_now(self, method: str, *params: Any) -> Any:
        return await self._send(lambda transport: transport.request(method, list(params)))

    async def _send(self, call: Callable[[Transport], Awaitable[Any]]) -> Any:
        if self._transport is None:
            if asyncio.get_running_loop().time() < self._restart_at:
                raise self._unavailable(TransportFailed("the embedded chain is restarting"))
            self._transport = _connect(self.config, self._timeout, self.journal)
        transport = self._transport
        try:
            await transport.started()
            if not self._verified:
                async with asyncio.timeout(self._timeout):
                    actual = quantity(await transport.request("eth_chainId", []))
                if actual != self.chain_id:
                    log.error("chain %s answers with chain id %s", self.chain_id, actual)
                    raise ChainUnavailable(
                        f"the node for chain {self.chain_id} reports chain id {actual}"
                    )
                self._verified = True
            # asyncio.timeout, not wait_for: no task of its own for every call.
            async with asyncio.timeout(self._timeout):
                answer = await call(transport)
        except (TimeoutError, OSError, TransportFailed) as exc:
            if isinstance(exc, TransportFailed) and self.config.embedded:
                await self._restart_later(transport)
            raise self._unavailable(exc) from exc
        self._restart_wait = RESTART_FIRST_SECONDS
        return answer

    async def _restart_later(self, transport: Transport) -> None:
        """The embedded chain's child process ended (killed, out of memory) or could not
        start: a later call starts another, which replays the journal."""
        if self._transport is not transport:
            return  # a concurrent call got here first
        self._transport = None
        self._restart_at = asyncio.get_running_loop().time() + self._restart_wait
        log.warning("chain %s: the embedded chain starts again in %.0f s", self.chain_id,
                    self._restart_wait)  # fmt: skip
        self._restart_wait = min(self._restart_wait * 2, RESTART_MAX_SECONDS)
        await transport.close()

    async def read_ahead(
        self, sender: str, *, pending_nonce: bool, fees: bool, estimate: dict[str, Any] | None
    ) -> Chain:
        """This chain, with the answers to the reads a transaction's fill is about to make
        fetched now, in one JSON-RPC batch: the latest block and ``sender``'s balance; its
        pending nonce, the fee suggestions and the gas estimate of ``estimate`` as asked.
        Each answer serves one call of the returned chain; other calls go to the node."""
        calls: list[tuple[str, tuple[Any, ...]]] = [
            ("eth_getBlockByNumber", ("latest", False)),
            ("eth_getBalance", (sender, "latest")),
        ]
        if pending_nonce:
            calls.append(("eth_getTransactionCount", (sender, "pending")))
        if fees:
            calls += [("eth_maxPriorityFeePerGas", ()), ("eth_gasPrice", ())]
        if estimate is not None:
            calls.append(("eth_estimateGas", (rpc_transaction(estimate),)))
        async with self._slots:
            answers = await self._send(
                lambda transport: transport.batch([(m, list(p)) for m, p in calls])
            )
        ahead = copy.copy(self)
        ahead._answers = {
            _call_key(method, params): answer
            for (method, params), answer in zip(calls, answers, strict=True)
        }
        return ahead

    def _unavailable(self, exc: BaseException) -> ChainUnavailable:
        # Our own TransportFailed words say what failed; other errors could quote a node URL.
        reason = str(exc) if isinstance(exc, TransportFailed) else type(exc).__name__
        log.warning("chain %s unavailable: %s", self.chain_id, reason)
        return ChainUnavailable(
            f"chain {self.chain_id} ({self.config.name}) did not answer in time", field=None
        )

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()

    async def latest_block(self) -> BlockInfo:
        block = await self._request("eth_getBlockByNumber", "latest", False)
        base_fee = block.get("baseFeePerGas")
        return BlockInfo(
            quantity(block["number"]),
            quantity(block["gasLimit"]),
            quantity(base_fee) if base_fee is not None else None,
        )

    async def balance(self, address: str) -> tuple[int, int]:
        """(wei, block number), read at one block so the two agree."""
        number = quantity(await self._request("eth_blockNumber"))
        wei = quantity(await self._request("eth_getBalance", address, hex(number)))
        return wei, number

    async def latest_balance(self, address: str) -> int:
        """Wei at the latest block (a preflight's: ``balance`` when the block's number is not
        needed)."""
        return quantity(await self._request("eth_getBalance", address, "latest"))

    async def pending_nonce(self, address: str) -> int:
        return quantity(await self._request("eth_getTransactionCount", address, "pending"))

    async def max_priority_fee(self) -> int:
        try:
            return quantity(await self._request("eth_maxPriorityFeePerGas"))
        except RpcError:  # nodes without eth_maxPriorityFeePerGas
            return 10**9

    async def gas_price(self) -> int:
        return quantity(await self._request("eth_gasPrice"))

    async def estimate_gas(self, tx: dict[str, Any]) -> int:
        try:
            return quantity(await self._request("eth_estimateGas", rpc_transaction(tx)))
        except RpcError as exc:
            if any(text in exc.message.lower() for text in _CANNOT_PAY):
                raise InsufficientFunds("the wallet cannot pay for this transaction") from exc
            # In the node's words as its owner may read them (services/causes.py): a node
            # behind a proxy may name its upstream's URL, API key and all.
            if is_revert(exc):
                raise BadUserInput(
                    f"the transaction would revert: {words(revert_message(exc))}", field="data"
                ) from exc
            raise BadUserInput(f"the node rejected the transaction: {words(exc.message)}") from exc

    async def eth_call(self, to: str, data: bytes) -> bytes:
        """The call's return data; a revert or a node error raises ``RpcError``."""
        result = await self._request("eth_call", {"to": to, "data": to_hex(data)}, "latest")
        return result if isinstance(result, bytes) else bytes.fromhex(str(result)[2:])

    async def send_raw_transaction(self, raw: bytes) -> str:
        """Broadcast; a node's refusal raises NodeRejected with the node's message."""
        try:
            tx_hash = await self._request("eth_sendRawTransaction", to_hex(raw))
        except RpcError as exc:
            raise NodeRejected(exc.message) from exc
        return str(tx_hash).lower()

    async def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """The receipt with its integer fields as ints, or None while it is not mined."""
        found = await self._request("eth_getTransactionReceipt", tx_hash)
        if not found:
            return None
        receipt = dict(found)
        for key in _RECEIPT_INTS:
            if receipt.get(key) is not None:
                receipt[key] = quantity(receipt[key])
        return receipt

    async def block_number(self) -> int:
        return quantity(await self._request("eth_blockNumber"))

    async def revert_reason(self, call: dict[str, Any], block_number: int) -> str | None:
        """Replay a reverted call just before its block and return the node's reason."""
        block = hex(max(0, block_number - 1))
        try:
            await self._request("eth_call", rpc_transaction(call), block)
        except RpcError as exc:
            return revert_message(exc) if is_revert(exc) else None
        except Exception:  # the reason is a courtesy: a failed replay leaves the default
            return None
        return None

    async def dev_fund(self, address: str, wei: int) -> None:
        """Give ``address`` ``wei`` on a development chain (in-process EVM or anvil)."""
        if self.config.embedded:
            # Signed here, so the gift is a raw transaction in the journal like any other.
            from services.devchain import FUNDER, funding_transaction

            block = await self.latest_block()
            nonce = await self.pending_nonce(FUNDER)
            await self.send_raw_transaction(
                funding_transaction(self.chain_id, nonce, block.base_fee, address, wei)
            )
            return
        try:
            current = quantity(await self._request("eth_getBalance", address, "latest"))
            await self._request("anvil_setBalance", address, hex(current + wei))
        except RpcError as exc:
            raise BadUserInput(f"chain {self.chain_id} has no dev faucet") from exc


class Chains:
    """The configured chains; the first one is the default."""

    def __init__(
        self,
        configs: Sequence[ChainConfig],
        timeout: float,
        *,
        client: Callable[[ChainConfig, float], Chain] = Chain,
        data_dir: Path | None = None,
    ) -> None:
        """``client`` builds each chain's client: a seam for fault drills and tests. With
        ``data_dir``, in-process chains keep a journal there and replay it."""
        self._chains = {c.chain_id: client(c, timeout) for c in configs}
        for chain in self._chains.values():
            chain.journal = _journal(chain.config, data_dir)
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

    def open_embedded(self) -> None:
        """Start the embedded chains' processes now (they replay their journals while the
        rest starts), not on the first request."""
        for chain in self._chains.values():
            if chain.config.embedded and chain._transport is None:
                chain._transport = _connect(chain.config, chain._timeout, chain.journal)

    async def close(self) -> None:
        for chain in self._chains.values():
            await chain.close()


def _journal(config: ChainConfig, data_dir: Path | None) -> ChainJournal | None:
    if not config.embedded or data_dir is None:
        return None
    from services.devchain import ChainJournal

    return ChainJournal(data_dir / f"chain-{config.chain_id}.journal")
