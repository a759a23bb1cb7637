"""Transaction queries and mutations: unpack the context, call one service, map the result."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.scalars import BigInt, ChainId
from schema.transaction_types import (
    PageInfo,
    SubmitTransactionInput,
    TransactionConnection,
    TransactionEdge,
    TransactionType,
    TransferTokenInput,
)
from schema.wallet_types import FeeEstimateType
from services.domain import TransactionStatus
from services.errors import BadUserInput
from services.transactions import SubmitRequest, TokenTransferRequest, encode_cursor
from services.transactions_build import MIN_GAS
from services.validation import check_text


def _check_idempotency_key(key: str | None) -> None:
    if key is None:
        return
    if not 1 <= len(key) <= 255:
        raise BadUserInput("idempotencyKey must have 1 to 255 characters", field="idempotencyKey")
    check_text(key, field="idempotencyKey")


async def submit_transaction(info: Info, input: SubmitTransactionInput) -> TransactionType:
    ctx = info.context
    _check_idempotency_key(input.idempotency_key)
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


async def transfer_token(info: Info, input: TransferTokenInput) -> TransactionType:
    ctx = info.context
    _check_idempotency_key(input.idempotency_key)
    request = TokenTransferRequest(
        token=input.token, to=input.to, amount=input.amount, chain_id=input.chain_id,
        idempotency_key=input.idempotency_key,
    )  # fmt: skip
    principal = await ctx.principal()
    async with ctx.unit_of_work() as uow:
        tx = await ctx.services.transactions.transfer_token(uow, principal, request, input.password)
    return TransactionType.from_model(tx)


async def estimate_fees(
    info: Info, chain_id: ChainId | None = None, gas: BigInt | None = None
) -> FeeEstimateType:
    ctx = info.context
    await ctx.principal()
    estimate = await ctx.services.transactions.estimate_fees(chain_id, gas or MIN_GAS)
    return FeeEstimateType.from_model(estimate)


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
