"""Transaction queries and mutations: unpack the context, call one service, map the result."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.transaction_types import (
    PageInfo,
    SubmitTransactionInput,
    TransactionConnection,
    TransactionEdge,
    TransactionType,
)
from services.domain import TransactionStatus
from services.errors import BadUserInput
from services.transactions import SubmitRequest, encode_cursor
from services.validation import check_text


async def submit_transaction(info: Info, input: SubmitTransactionInput) -> TransactionType:
    ctx = info.context
    if input.idempotency_key is not None and not 1 <= len(input.idempotency_key) <= 255:
        raise BadUserInput("idempotencyKey must have 1 to 255 characters", field="idempotencyKey")
    if input.idempotency_key is not None:
        check_text(input.idempotency_key, field="idempotencyKey")
    request = SubmitRequest(
        to=input.to,
        chain_id=input.chain_id,
        value=input.value or 0,
        data=bytes.fromhex(input.data[2:]) if input.data else b"",
        gas=input.gas,
        max_fee_per_gas=input.max_fee_per_gas,
        max_priority_fee_per_gas=input.max_priority_fee_per_gas,
        idempotency_key=input.idempotency_key,
    )
    principal = await ctx.principal()
    async with ctx.unit_of_work() as uow:
        tx = await ctx.services.transactions.submit(uow, principal, request, input.password)
    return TransactionType.from_model(tx)


async def transaction(info: Info, id: strawberry.ID) -> TransactionType:
    ctx = info.context
    async with ctx.read() as uow:
        tx = await ctx.services.transactions.get(uow, await ctx.principal(), str(id))
    return TransactionType.from_model(tx)


async def transactions(
    info: Info,
    first: int = 20,
    after: str | None = None,
    status: TransactionStatus | None = None,
) -> TransactionConnection:
    ctx = info.context
    async with ctx.read() as uow:
        rows, has_next = await ctx.services.transactions.page(
            uow, await ctx.principal(), first=first, after=after,
            status=status,
        )  # fmt: skip
    edges = [
        TransactionEdge(cursor=encode_cursor(t), node=TransactionType.from_model(t)) for t in rows
    ]
    end = edges[-1].cursor if edges else None
    return TransactionConnection(
        edges=edges, page_info=PageInfo(has_next_page=has_next, end_cursor=end)
    )


async def speed_up_transaction(info: Info, id: strawberry.ID) -> TransactionType:
    ctx = info.context
    async with ctx.unit_of_work() as uow:
        tx = await ctx.services.transactions.speed_up(uow, await ctx.principal(), str(id))
    return TransactionType.from_model(tx)


async def cancel_transaction(info: Info, id: strawberry.ID) -> TransactionType:
    ctx = info.context
    async with ctx.unit_of_work() as uow:
        tx = await ctx.services.transactions.cancel(uow, await ctx.principal(), str(id))
    return TransactionType.from_model(tx)
