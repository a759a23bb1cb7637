"""DataLoaders for the per-row fields of a transaction: a page of 100 transactions costs
one query per field, and one block-number read per chain, whatever the page size.

They batch and do not cache: a websocket's context lives as long as the connection, and
each pushed item must see the events as they are now."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

from strawberry.dataloader import DataLoader

from services.records import TransactionAttempt, TransactionEvent, UnitOfWork
from services.transaction_queries import TransactionQueries

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _batched(fetch: Callable[[list[K]], Awaitable[dict[K, V]]]) -> DataLoader[K, V]:
    async def load(keys: Sequence[K]) -> list[V]:
        found = await fetch(list(dict.fromkeys(keys)))
        return [found[key] for key in keys]

    return DataLoader(load_fn=load, cache=False)


class Loaders:
    def __init__(self, transactions: TransactionQueries, uow: UnitOfWork) -> None:
        async def attempts(ids: list[uuid.UUID]) -> dict[uuid.UUID, list[TransactionAttempt]]:
            return await transactions.attempts_of(uow, ids)

        async def events(ids: list[uuid.UUID]) -> dict[uuid.UUID, list[TransactionEvent]]:
            return await transactions.events_of(uow, ids)

        self.attempts = _batched(attempts)
        self.events = _batched(events)
        self.block_numbers = _batched(transactions.block_numbers)
