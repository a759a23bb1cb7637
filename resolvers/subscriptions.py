"""Subscriptions: async generators over LiveService streams."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

from collections.abc import AsyncGenerator, AsyncIterator

import strawberry

from schema.context import Info
from schema.push import live_events
from schema.scalars import BigInt
from schema.transaction_types import TransactionEventType
from services import metrics
from services.hub import EventView
from services.live import Park


async def transaction_status(
    info: Info, id: strawberry.ID, after_seq: BigInt | None = None
) -> AsyncGenerator[TransactionEventType, None]:
    """The current state (or every event after afterSeq), then each new event of one of your
    transactions; completes after a final status."""
    ctx = info.context
    principal = await ctx.principal()

    def stream(after: int | None, park: Park | None) -> AsyncIterator[EventView]:
        return ctx.services.live.transaction_events(ctx.uow, principal, str(id), after, park)

    async for event in live_events(info, stream, after_seq, TransactionEventType.from_model):
        metrics.TRANSACTION_STATUS_EVENTS.inc()
        yield TransactionEventType.from_model(event)


async def my_transactions(
    info: Info, after_seq: BigInt | None = None
) -> AsyncGenerator[TransactionEventType, None]:
    """Every event of every transaction of yours, in commit order; resume with afterSeq = the last
    userSeq you saw."""
    ctx = info.context
    principal = await ctx.principal()

    def stream(after: int | None, park: Park | None) -> AsyncIterator[EventView]:
        return ctx.services.live.user_events(ctx.uow, principal, after, park)

    events = live_events(info, stream, after_seq, TransactionEventType.from_model, by_user=True)
    async for event in events:
        metrics.MY_TRANSACTIONS_EVENTS.inc()
        yield TransactionEventType.from_model(event)
