"""Subscriptions: async generators over LiveService streams."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from schema.context import Info
from schema.scalars import BigInt
from schema.transaction_types import TransactionEventType
from services import metrics


async def transaction_status(
    info: Info, id: strawberry.ID, after_seq: BigInt | None = None
) -> AsyncGenerator[TransactionEventType, None]:
    ctx = info.context
    principal = await ctx.principal()
    async for event in ctx.services.live.transaction_events(ctx.uow, principal, str(id), after_seq):
        metrics.TRANSACTION_STATUS_EVENTS.inc()
        yield TransactionEventType.from_model(event)


async def my_transactions(
    info: Info, after_seq: BigInt | None = None
) -> AsyncGenerator[TransactionEventType, None]:
    ctx = info.context
    principal = await ctx.principal()
    async for event in ctx.services.live.user_events(ctx.uow, principal, after_seq):
        metrics.MY_TRANSACTIONS_EVENTS.inc()
        yield TransactionEventType.from_model(event)
