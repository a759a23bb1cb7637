"""Filling in and signing an Ethereum transaction for one wallet."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from services.chains import BlockInfo, Chain
from services.errors import BadUserInput, InsufficientFunds
from services.tx_signing import KnownShapeSigner

MIN_GAS = 21_000


@dataclass(frozen=True)
class TxRequest:
    """What a client asks for, to sign or to submit; every field may be left to the chain.
    No ``to`` deploys a contract whose init code is ``data``. A submit leaves ``nonce``,
    ``gas_price`` and ``tx_type`` to the service."""

    to: str | None
    chain_id: int | None = None
    value: int = 0
    data: bytes = b""
    gas: int | None = None
    nonce: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    gas_price: int | None = None
    tx_type: int | None = None
    idempotency_key: str | None = None

    def fingerprint(self, chain_id: int) -> str:
        """What makes two submits "the same input" for idempotency (never the password)."""
        fields = {
            "to": self.to.lower() if self.to else None,
            "chain_id": chain_id,
            "value": self.value,
            "data": self.data.hex(),
            "gas": self.gas,
            "max_fee_per_gas": self.max_fee_per_gas,
            "max_priority_fee_per_gas": self.max_priority_fee_per_gas,
        }
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class SignedTx:
    raw: bytes
    hash: str
    nonce: int
    sender: str
    chain_id: int
    tx_type: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class FeeCaps:
    """The fee fields of a transaction: EIP-1559 caps (type 2) or a legacy gas price."""

    tx_type: int
    base_fee: int | None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    gas_price: int | None = None

    @property
    def price_cap(self) -> int:
        """The most one unit of gas can cost."""
        return self.max_fee_per_gas if self.max_fee_per_gas is not None else self.gas_price or 0

    def fields(self) -> dict[str, Any]:
        if self.tx_type == 2:
            return {
                "type": 2,
                "maxFeePerGas": self.max_fee_per_gas,
                "maxPriorityFeePerGas": self.max_priority_fee_per_gas,
            }
        return {"gasPrice": self.gas_price}  # eth-account signs legacy when no type is given


async def fee_caps(chain: Chain, block: BlockInfo, req: TxRequest) -> FeeCaps:
    """The fees a transaction uses: what ``req`` gives, the rest from the chain. Type 2 sets
    maxFeePerGas = 2 * baseFee + priority fee, so it survives a few full blocks."""
    if req.tx_type not in (None, 0, 2):
        raise BadUserInput("type must be 0 (legacy) or 2 (EIP-1559)", field="type")
    tx_type = req.tx_type
    if tx_type is None:
        tx_type = 0 if req.gas_price is not None or block.base_fee is None else 2
    if tx_type == 2:
        if block.base_fee is None:
            raise BadUserInput("this chain does not support EIP-1559 transactions", field="type")
        if req.gas_price is not None:
            raise BadUserInput("gasPrice is for legacy (type 0) transactions", field="gasPrice")
        priority = req.max_priority_fee_per_gas
        if priority is None:
            priority = await chain.max_priority_fee()
        max_fee = req.max_fee_per_gas
        if max_fee is None:
            max_fee = 2 * block.base_fee + priority
        if priority > max_fee:
            raise BadUserInput(
                "maxPriorityFeePerGas cannot exceed maxFeePerGas", field="maxPriorityFeePerGas"
            )
        return FeeCaps(
            2, block.base_fee, max_fee_per_gas=max_fee, max_priority_fee_per_gas=priority
        )
    for name, value in (
        ("maxFeePerGas", req.max_fee_per_gas),
        ("maxPriorityFeePerGas", req.max_priority_fee_per_gas),
    ):
        if value is not None:
            raise BadUserInput(f"{name} is for EIP-1559 (type 2) transactions", field=name)
    return FeeCaps(0, block.base_fee, gas_price=req.gas_price or await chain.gas_price())


async def fill_transaction(chain: Chain, sender: str, req: TxRequest) -> dict[str, Any]:
    """A complete transaction dict: EIP-1559 where the chain supports it, legacy otherwise."""
    block = await chain.latest_block()
    fees = await fee_caps(chain, block, req)
    tx: dict[str, Any] = {
        "chainId": chain.chain_id,
        "value": req.value,
        "data": req.data,
        "nonce": req.nonce if req.nonce is not None else await chain.pending_nonce(sender),
        **fees.fields(),
    }
    if req.to is not None:
        tx["to"] = req.to
    if req.gas is not None:
        if req.gas < MIN_GAS:
            raise BadUserInput(f"gas must be at least {MIN_GAS}", field="gas")
        gas = req.gas
    else:
        gas = await chain.estimate_gas(_estimate_of(sender, req))
    if gas > block.gas_limit:
        raise BadUserInput(f"gas {gas} is above the block gas limit {block.gas_limit}", field="gas")
    tx["gas"] = gas
    return tx


def _estimate_of(sender: str, req: TxRequest) -> dict[str, Any]:
    estimate: dict[str, Any] = {"from": sender, "value": req.value, "data": req.data}
    if req.to is not None:
        estimate["to"] = req.to
    return estimate


async def read_ahead(chain: Chain, sender: str, req: TxRequest, *, pending_nonce: bool) -> Chain:
    """``chain`` with what ``fill_affordable`` is about to read for ``req`` (and, with
    ``pending_nonce``, the sender's pending nonce) fetched in one JSON-RPC batch."""
    return await chain.read_ahead(
        sender,
        pending_nonce=pending_nonce,
        fees=req.gas_price is None and req.max_priority_fee_per_gas is None,
        estimate=_estimate_of(sender, req) if req.gas is None else None,
    )


async def fill_affordable(chain: Chain, sender: str, req: TxRequest) -> dict[str, Any]:
    """The one preflight of signTransaction and submitTransaction: ``fill_transaction``, then
    INSUFFICIENT_FUNDS (``needed``: value + gas limit * max fee; ``available``) unless the
    wallet can pay the most the transaction can cost."""
    try:
        fields = await fill_transaction(chain, sender, req)
    except InsufficientFunds:
        # Some nodes (py-evm) refuse to estimate for a sender that cannot pay: estimate as if
        # it could, so ``needed`` still counts the gas.
        gas, exact = await _gas_as_if_funded(chain, sender, req)
        fields = await fill_transaction(chain, sender, replace(req, gas=gas or intrinsic_gas(req)))
        if not exact:  # only a lower bound: never sign with it
            raise _cannot_pay(fields, await chain.latest_balance(sender), at_least=True) from None
    balance = await chain.latest_balance(sender)
    if balance < max_cost(fields):
        raise _cannot_pay(fields, balance)
    return fields


def _cannot_pay(
    fields: dict[str, Any], balance: int, *, at_least: bool = False
) -> InsufficientFunds:
    needed = max_cost(fields)
    return InsufficientFunds(
        f"the wallet holds {balance} wei and needs {'at least ' if at_least else ''}{needed} wei "
        f"(value + gas limit {fields['gas']} * max fee per gas)",
        needed=str(needed), available=str(balance),
    )  # fmt: skip


async def _gas_as_if_funded(chain: Chain, sender: str, req: TxRequest) -> tuple[int | None, bool]:
    """The gas estimate at a zero gas price, which a node answers for a sender that cannot pay
    the gas: (gas, True) with the transaction's own value, since the gas may depend on it (a
    revert there is the caller's answer). A wallet that does not even hold the value gets
    (the estimate without it, or None when that fails too, False): a lower bound only."""
    try:
        return await _estimate_at_zero_price(chain, sender, req, req.value), True
    except InsufficientFunds:
        pass
    try:
        return await _estimate_at_zero_price(chain, sender, req, 0), False
    except (InsufficientFunds, BadUserInput):  # say, the call needs the value
        return None, False


async def _estimate_at_zero_price(chain: Chain, sender: str, req: TxRequest, value: int) -> int:
    estimate: dict[str, Any] = {"from": sender, "value": value, "data": req.data, "gasPrice": 0}
    if req.to is not None:
        estimate["to"] = req.to
    return await chain.estimate_gas(estimate)


def intrinsic_gas(req: TxRequest) -> int:
    """The least gas any transaction with this data can use (EIP-2028 calldata, EIP-3860
    init code words)."""
    data = req.data
    gas = MIN_GAS + sum(4 if byte == 0 else 16 for byte in data)
    if req.to is None:
        gas += 32_000 + 2 * ((len(data) + 31) // 32)
    return gas


def max_cost(fields: dict[str, Any]) -> int:
    """The most this transaction can cost: value + gas * the highest gas price it allows."""
    price = fields.get("maxFeePerGas", fields.get("gasPrice", 0))
    return int(fields["value"]) + int(fields["gas"]) * int(price)


def sign_transaction(
    tx: dict[str, Any], key: bytes, sender: str, signer: KnownShapeSigner | None = None
) -> SignedTx:
    """``tx`` signed with ``key`` (``signer``: the same key's, kept across a ladder)."""
    known = (signer or KnownShapeSigner(key)).sign(tx)
    if known is None:
        from eth_account import Account

        signed = Account.sign_transaction(tx, key)
        known = bytes(signed.raw_transaction), bytes(signed.hash)
    raw, tx_hash = known
    return SignedTx(
        raw=raw,
        hash="0x" + tx_hash.hex(),
        nonce=int(tx["nonce"]),
        sender=sender,
        chain_id=int(tx["chainId"]),
        tx_type=int(tx.get("type", 0)),
        fields=tx,
    )
