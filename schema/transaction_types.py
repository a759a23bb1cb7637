"""GraphQL types for transactions and their events."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.models import Transaction, TransactionEvent
from schema.context import Info
from schema.scalars import Address, BigInt, ChainId, Hex
from services.domain import TransactionStatus
from services.errors import ChainUnavailable
from services.hub import EventView

# The domain enum is the GraphQL enum: one list of statuses.
strawberry.enum(TransactionStatus, name="TransactionStatus")


async def _event_transaction(root: TransactionEventType, info: Info) -> TransactionType:
    ctx = info.context
    async with ctx.read() as uow:
        tx = await ctx.services.transactions.get(
            uow, await ctx.principal(), str(root.transaction_id)
        )
    return TransactionType.from_model(tx)


@strawberry.type(name="TransactionEvent")
class TransactionEventType:
    seq: int = strawberry.field(description="Per transaction: 1, 2, 3, … with no gaps.")
    user_seq: BigInt = strawberry.field(
        description="Per user, in commit order: the cursor for myTransactions(afterSeq:)."
    )
    transaction_id: strawberry.ID
    status: TransactionStatus
    at: datetime
    reason: str | None
    transaction: TransactionType = strawberry.field(
        resolver=_event_transaction, description="The transaction as it is now."
    )

    @classmethod
    def from_model(cls, m: TransactionEvent | EventView) -> TransactionEventType:
        return cls(
            seq=m.seq,
            user_seq=BigInt(m.user_seq),
            transaction_id=strawberry.ID(str(m.transaction_id)),
            status=m.status,
            at=m.at,
            reason=m.reason,
        )


@strawberry.type(name="TransactionError")
class TransactionErrorType:
    code: str
    message: str


def _big(value: int | None) -> BigInt | None:
    return BigInt(int(value)) if value is not None else None


async def _hashes(root: TransactionType, info: Info) -> list[Hex]:
    ctx = info.context
    async with ctx.read() as uow:
        found = await ctx.services.transactions.attempts_hashes(uow, root._model.id)
    return [Hex(h) for h in found]


async def _confirmations(root: TransactionType, info: Info) -> int | None:
    if root._model.block_number is None:
        return 0
    try:
        latest = await info.context.services.chains.get(root._model.chain_id).block_number()
    except ChainUnavailable:
        return None
    return max(0, latest - int(root._model.block_number) + 1)


async def _events(root: TransactionType, info: Info) -> list[TransactionEventType]:
    ctx = info.context
    async with ctx.read() as uow:
        found = await ctx.services.transactions.events(uow, root._model.id)
    return [TransactionEventType.from_model(e) for e in found]


@strawberry.type(name="Transaction")
class TransactionType:
    id: strawberry.ID
    status: TransactionStatus
    chain_id: ChainId
    from_: Address = strawberry.field(name="from")
    to: Address | None
    value: BigInt
    data: Hex
    nonce: BigInt
    hash: Hex | None = strawberry.field(
        description="The hash that was mined, else the latest sent."
    )
    gas_limit: BigInt
    max_fee_per_gas: BigInt | None
    max_priority_fee_per_gas: BigInt | None
    gas_price: BigInt | None
    block_number: BigInt | None
    gas_used: BigInt | None
    effective_gas_price: BigInt | None
    error: TransactionErrorType | None
    created_at: datetime
    updated_at: datetime
    _model: strawberry.Private[Transaction]
    hashes: list[Hex] = strawberry.field(
        resolver=_hashes,
        description="Every hash broadcast for this nonce: the original, fee bumps, cancel.",
    )
    confirmations: int | None = strawberry.field(
        resolver=_confirmations,
        description="Blocks on top of (and including) the one it is in; null if the chain "
        "does not answer.",
    )
    events: list[TransactionEventType] = strawberry.field(
        resolver=_events, description="Every status change, oldest first."
    )

    @classmethod
    def from_model(cls, m: Transaction) -> TransactionType:
        error = None
        if m.error_code:
            error = TransactionErrorType(code=m.error_code, message=m.error_message or "")
        return cls(
            id=strawberry.ID(str(m.id)),
            status=m.status,
            chain_id=ChainId(m.chain_id),
            from_=Address(m.from_address),
            to=Address(m.to_address) if m.to_address else None,
            value=BigInt(int(m.value)),
            data=Hex("0x" + bytes(m.data).hex()),
            nonce=BigInt(m.nonce),
            hash=Hex(m.hash) if m.hash else None,
            gas_limit=BigInt(int(m.gas_limit)),
            max_fee_per_gas=_big(m.max_fee_per_gas),
            max_priority_fee_per_gas=_big(m.max_priority_fee_per_gas),
            gas_price=_big(m.gas_price),
            block_number=_big(m.block_number),
            gas_used=_big(m.gas_used),
            effective_gas_price=_big(m.effective_gas_price),
            error=error,
            created_at=m.created_at,
            updated_at=m.updated_at,
            _model=m,
        )


@strawberry.type(name="TransactionEdge")
class TransactionEdge:
    cursor: str
    node: TransactionType


@strawberry.type(name="PageInfo")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(name="TransactionConnection")
class TransactionConnection:
    edges: list[TransactionEdge]
    page_info: PageInfo


@strawberry.input(name="SubmitTransactionInput")
class SubmitTransactionInput:
    to: Address
    password: str
    chain_id: ChainId | None = None
    value: BigInt | None = None
    data: Hex | None = None
    gas: BigInt | None = None
    max_fee_per_gas: BigInt | None = None
    max_priority_fee_per_gas: BigInt | None = None
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Retry-safe key: the same key and input return the same transaction.",
    )
