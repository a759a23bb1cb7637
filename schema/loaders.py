"""DataLoaders for the per-row fields of a transaction: a page of 100 transactions costs
one query per field, and one block-number read per chain, whatever the page size.

They batch and cache for one scope: an operation (``LoadersPerOperation``), a mutation field's
result (schema/unit_of_work.py), or one item a subscription pushes (``LoadersPerItem``). A
websocket's context lives as long as the connection, and each scope must see the rows as they
are now; within one, every field that reads a transaction's attempts or events shares one
load."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Iterator, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar

from strawberry.dataloader import DataLoader
from strawberry.extensions import FieldExtension, SchemaExtension
from strawberry.extensions.field_extension import AsyncExtensionResolver

from services.records import TransactionAttempt, TransactionEvent, UnitOfWork
from services.transaction_queries import TransactionQueries

if TYPE_CHECKING:
    from schema.context import Context, Info

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _batched(fetch: Callable[[list[K]], Awaitable[dict[K, V]]]) -> DataLoader[K, V]:
    async def load(keys: Sequence[K]) -> list[V]:
        found = await fetch(list(keys))
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)


class Loaders:
    def __init__(self, transactions: TransactionQueries, uow: UnitOfWork) -> None:
        async def attempts(ids: list[uuid.UUID]) -> dict[uuid.UUID, list[TransactionAttempt]]:
            return await transactions.attempts_of(uow, ids)

        async def events(ids: list[uuid.UUID]) -> dict[uuid.UUID, list[TransactionEvent]]:
            return await transactions.events_of(uow, ids)

        self.attempts = _batched(attempts)
        self.events = _batched(events)
        self.block_numbers = _batched(transactions.block_numbers)


class LoadersPerOperation(SchemaExtension):
    """Each operation starts with empty loaders (over a websocket, operations share one
    context)."""

    def on_execute(self) -> Iterator[None]:
        context: Context = self.execution_context.context
        context.new_scope()
        yield


class LoadersPerItem(FieldExtension):
    """Each item a subscription pushes starts with empty loaders."""

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:
        items = next_(source, info, **kwargs)  # the resolver's generator, or an awaitable of it
        if inspect.isawaitable(items):
            items = await items
        return _fresh_per_item(items, info.context)


async def _fresh_per_item(
    items: AsyncGenerator[Any, None], context: Context
) -> AsyncGenerator[Any, None]:
    async with aclosing(items):
        async for item in items:
            context.new_scope()
            yield item
