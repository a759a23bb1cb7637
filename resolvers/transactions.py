"""Transaction queries and mutations: unpack the context, call one service, map the result.
A mutation's unit of work is opened around it (schema/unit_of_work.py)."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

import strawberry

from schema.context import Info
from schema.scalars import BigInt, ChainId
from schema.transaction_connection import TransactionConnection
from schema.transaction_types import TransactionType
from schema.tx_inputs import SubmitTransactionInput, TransferTokenInput, tx_request
from schema.wallet_types import FeeEstimateType
from services.domain import TransactionStatus
from services.transactions import TokenTransferRequest
from services.transactions_build import MIN_GAS


async def submit_transaction(info: Info, input: SubmitTransactionInput) -> TransactionType:
    """Sign and queue a transaction; the worker broadcasts it and follows it."""
    ctx = info.context
    tx = await ctx.services.transactions.submit(
        ctx.uow, await ctx.principal(), tx_request(input), input.password
    )
    return TransactionType.from_model(tx)


async def transfer_token(info: Info, input: TransferTokenInput) -> TransactionType:
    """Send ERC-20 tokens: an ERC-20 transfer(to, amount) call to the token, through the same
    pipeline as submitTransaction."""
    ctx = info.context
    request = TokenTransferRequest(
        token=input.token, to=input.to, amount=input.amount, chain_id=input.chain_id,
        idempotency_key=input.idempotency_key,
    )  # fmt: skip
    tx = await ctx.services.transactions.transfer_token(
        ctx.uow, await ctx.principal(), request, input.password
    )
    return TransactionType.from_model(tx)


async def estimate_fees(
    info: Info, chain_id: ChainId | None = None, gas: BigInt | None = None
) -> FeeEstimateType:
    """The fee caps a submitTransaction without fee fields would use now, and the most `gas`
    (default 21000) could cost at them."""
    ctx = info.context
    await ctx.principal()
    estimate = await ctx.services.transactions.estimate_fees(chain_id, gas or MIN_GAS)
    return FeeEstimateType.from_model(estimate)


async def transaction(info: Info, id: strawberry.ID) -> TransactionType:
    """One of the caller's transactions."""
    ctx = info.context
    tx = await ctx.services.transaction_queries.get(ctx.uow, await ctx.principal(), str(id))
    return TransactionType.from_model(tx)


async def transactions(
    info: Info,
    first: int = 20,
    after: str | None = None,
    status: TransactionStatus | None = None,
) -> TransactionConnection:
    """The caller's transactions, newest first (cursor pagination, first ≤ 100)."""
    ctx = info.context
    rows, has_next = await ctx.services.transaction_queries.page(
        ctx.uow, await ctx.principal(), first=first, after=after, status=status
    )
    return TransactionConnection.from_page(rows, has_next)


async def speed_up_transaction(info: Info, id: strawberry.ID) -> TransactionType:
    """Broadcast the next pre-signed fee bump now."""
    ctx = info.context
    tx = await ctx.services.transactions.speed_up(ctx.uow, await ctx.principal(), str(id))
    return TransactionType.from_model(tx)


async def cancel_transaction(info: Info, id: strawberry.ID) -> TransactionType:
    """Broadcast the pre-signed cancel; CANCELLED once the cancel is mined."""
    ctx = info.context
    tx = await ctx.services.transactions.cancel(ctx.uow, await ctx.principal(), str(id))
    return TransactionType.from_model(tx)
