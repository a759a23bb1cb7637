"""GraphQL types for transactions and their events."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

from datetime import datetime

import strawberry

from schema.attempt_types import TokenTransferType, TransactionAttemptType
from schema.context import Info
from schema.enums import AttemptKind, TransactionErrorCode, TxType
from schema.fields import field
from schema.scalars import Address, BigInt, ChainId, Hex, optional_big
from services.domain import TransactionStatus
from services.hub import EventView
from services.records import Transaction, TransactionAttempt, TransactionEvent
from services.token_transfers import decode_transfer, token_metadata
from services.transaction_queries import sent_attempts

# The domain enum is the GraphQL enum: one list of statuses.
strawberry.enum(TransactionStatus, name="TransactionStatus")


async def _event_transaction(root: "TransactionEventType", info: Info) -> "TransactionType":
    """The transaction as it is now."""
    ctx = info.context
    principal = await ctx.principal()
    tx = await ctx.services.transaction_queries.get(ctx.uow, principal, str(root.transaction_id))
    return TransactionType.from_model(tx)


@strawberry.type(name="TransactionEvent")
class TransactionEventType:
    seq: BigInt = strawberry.field(
        description="Per transaction: 1, 2, 3, … with no gaps: the cursor for "
        "transactionStatus(afterSeq:)."
    )
    user_seq: BigInt = strawberry.field(
        description="Per user, in commit order: the cursor for myTransactions(afterSeq:)."
    )
    transaction_id: strawberry.ID
    status: TransactionStatus
    at: datetime
    reason: str | None
    transaction: "TransactionType" = field(_event_transaction)

    @classmethod
    def from_model(cls, m: TransactionEvent | EventView) -> "TransactionEventType":
        return cls(
            seq=BigInt(m.seq),
            user_seq=BigInt(m.user_seq),
            transaction_id=strawberry.ID(str(m.transaction_id)),
            status=m.status,
            at=m.at,
            reason=m.reason,
        )


@strawberry.type(name="TransactionError")
class TransactionErrorType:
    code: TransactionErrorCode
    message: str


async def _hashes(root: "TransactionType", info: Info) -> list[Hex]:
    """Every hash broadcast for this nonce: the original, fee bumps, cancel."""
    return [Hex(a.hash) for a in sent_attempts(await root._attempts(info))]


async def _attempts(root: "TransactionType", info: Info) -> list[TransactionAttemptType]:
    """Every attempt broadcast for this nonce, in order: the original, fee bumps, the cancel."""
    return [TransactionAttemptType.from_model(a) for a in sent_attempts(await root._attempts(info))]


async def _live_attempt(root: "TransactionType", info: Info) -> TransactionAttemptType | None:
    """The attempt `hash` names: mined, or the latest broadcast (rung 0 before any)."""
    live = await root._live(info)
    return TransactionAttemptType.from_model(live) if live else None


async def _replaced_by_cancel(root: "TransactionType", info: Info) -> bool:
    """True when the live attempt is the cancel: a CANCELLED transaction shows the original's to and
    value with the cancel's hash and fees."""
    live = await root._live(info)
    return live is not None and live.kind == AttemptKind.CANCEL


async def _max_fee(root: "TransactionType", info: Info) -> BigInt | None:
    """Of the live attempt (EIP1559 only)."""
    live = await root._live(info)
    return optional_big(live.max_fee_per_gas if live else root._model.max_fee_per_gas)


async def _max_priority_fee(root: "TransactionType", info: Info) -> BigInt | None:
    """Of the live attempt (EIP1559 only)."""
    live = await root._live(info)
    return optional_big(
        live.max_priority_fee_per_gas if live else root._model.max_priority_fee_per_gas
    )


async def _gas_price(root: "TransactionType", info: Info) -> BigInt | None:
    """Of the live attempt (LEGACY only)."""
    live = await root._live(info)
    return optional_big(live.gas_price if live else root._model.gas_price)


async def _mined_at(root: "TransactionType", info: Info) -> datetime | None:
    """When walletql saw it in a block; null while pending."""
    if root._model.block_number is None:
        return None
    # The first event since it last left the mempool (a reorg sends it back there).
    events = await root._events(info)
    pending = {TransactionStatus.QUEUED, TransactionStatus.SUBMITTED}
    after = [e for e in events if e.status not in pending]
    last_pending = max((e.seq for e in events if e.status in pending), default=0)
    after = [e for e in after if e.seq > last_pending]
    return after[0].at if after else None


async def _confirmed_at(root: "TransactionType", info: Info) -> datetime | None:
    """When it reached CONFIRMED."""
    events = await root._events(info)
    return next((e.at for e in events if e.status == TransactionStatus.CONFIRMED), None)


def _explorer_url(root: "TransactionType", info: Info) -> str | None:
    """The block explorer's page for hash; null without a configured explorer."""
    chains = info.context.services.chains
    return chains.get(root._model.chain_id).config.explorer_url(root._model.hash)


async def _token_transfer(root: "TransactionType", info: Info) -> TokenTransferType | None:
    """The ERC-20 transfer(to, amount) this transaction calls, if it is one."""
    m = root._model
    transfer = decode_transfer(m.to_address, bytes(m.data))
    if transfer is None:
        return None
    meta = await token_metadata(info.context.services.chains.get(m.chain_id), transfer.token)
    return TokenTransferType(
        token=Address(transfer.token), symbol=meta.symbol, decimals=meta.decimals,
        amount=BigInt(transfer.amount), to=Address(transfer.to),
    )  # fmt: skip


async def _confirmations(root: "TransactionType", info: Info) -> int | None:
    """Blocks on top of (and including) the one it is in; null if the chain does not answer."""
    if root._model.block_number is None:
        return 0
    latest = await info.context.loaders.block_numbers.load(root._model.chain_id)
    return None if latest is None else max(0, latest - int(root._model.block_number) + 1)


async def _events(root: "TransactionType", info: Info) -> list[TransactionEventType]:
    """Every status change, oldest first."""
    return [TransactionEventType.from_model(e) for e in await root._events(info)]


@strawberry.type(name="Transaction")
class TransactionType:
    id: strawberry.ID
    status: TransactionStatus
    chain_id: ChainId
    from_: Address = strawberry.field(name="from")
    to: Address | None = strawberry.field(
        description="What was asked: null for a contract deployment. After a cancel it is "
        "still the original's (the cancel itself is a 0-value send to yourself): see "
        "replacedByCancel."
    )
    value: BigInt = strawberry.field(description="What was asked, as for `to`.")
    data: Hex
    nonce: BigInt
    type: TxType
    hash: Hex | None = strawberry.field(
        description="The hash of the live attempt: the one mined, else the latest sent."
    )
    gas_limit: BigInt
    max_fee_per_gas: BigInt | None = field(_max_fee)
    max_priority_fee_per_gas: BigInt | None = field(_max_priority_fee)
    gas_price: BigInt | None = field(_gas_price)
    block_number: BigInt | None
    block_hash: Hex | None
    gas_used: BigInt | None
    effective_gas_price: BigInt | None
    fee: BigInt | None = strawberry.field(
        description="What the sender paid for gas, in wei: gasUsed * effectiveGasPrice; null "
        "until mined."
    )
    error: TransactionErrorType | None
    created_at: datetime
    updated_at: datetime
    _model: strawberry.Private[Transaction]
    explorer_url: str | None = field(_explorer_url)
    mined_at: datetime | None = field(_mined_at)
    confirmed_at: datetime | None = field(_confirmed_at)
    attempts: list[TransactionAttemptType] = field(_attempts)
    live_attempt: TransactionAttemptType | None = field(_live_attempt)
    replaced_by_cancel: bool = field(_replaced_by_cancel)
    token_transfer: TokenTransferType | None = field(_token_transfer)
    hashes: list[Hex] = field(_hashes)
    confirmations: int | None = field(_confirmations)
    events: list[TransactionEventType] = field(_events)

    async def _attempts(self, info: Info) -> list[TransactionAttempt]:
        return await info.context.loaders.attempts.load(self._model.id)

    async def _live(self, info: Info) -> TransactionAttempt | None:
        return next((a for a in await self._attempts(info) if a.hash == self._model.hash), None)

    async def _events(self, info: Info) -> list[TransactionEvent]:
        """Its events as of the row this object was read from: the events are read by a
        later statement, and a change committed in between (a fee bump, say) would show
        its event beside the row's older hash and status. A transaction's events are
        numbered 1 to its ``last_seq`` in the transaction that writes them."""
        events = await info.context.loaders.events.load(self._model.id)
        return [e for e in events if e.seq <= self._model.last_seq]

    @classmethod
    def from_model(cls, m: Transaction) -> "TransactionType":
        error = None
        if m.error_code:
            error = TransactionErrorType(
                code=TransactionErrorCode(m.error_code), message=m.error_message or ""
            )
        fee = None
        if m.gas_used is not None and m.effective_gas_price is not None:
            fee = BigInt(int(m.gas_used) * int(m.effective_gas_price))
        return cls(
            id=strawberry.ID(str(m.id)),
            status=m.status,
            chain_id=ChainId(m.chain_id),
            from_=Address(m.from_address),
            to=Address(m.to_address) if m.to_address else None,
            value=BigInt(int(m.value)),
            data=Hex("0x" + bytes(m.data).hex()),
            nonce=BigInt(m.nonce),
            type=TxType.of(m.tx_type),
            hash=Hex(m.hash) if m.hash else None,
            gas_limit=BigInt(int(m.gas_limit)),
            block_number=optional_big(m.block_number),
            block_hash=Hex(m.block_hash) if m.block_hash else None,
            fee=fee,
            gas_used=optional_big(m.gas_used),
            effective_gas_price=optional_big(m.effective_gas_price),
            error=error,
            created_at=m.created_at,
            updated_at=m.updated_at,
            _model=m,
        )
