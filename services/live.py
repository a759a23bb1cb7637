"""Live status: event streams that replay the log, then follow notifications, in order,
with nothing missed and nothing twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

from db.models import TransactionEvent
from db.repositories import UserRepository
from db.transactions_repo import TransactionRepository
from db.unit_of_work import UnitOfWork
from services.auth import Principal
from services.errors import NotFound, RateLimited
from services.hub import CATCH_UP, CatchUp, EventHub, EventView, Subscriber
from services.transaction_queries import TransactionQueries
from services.users import user_id_of

PAGE = 500
# Hands a caught-up subscriber (and the cursor it has reached) to someone who delivers its
# next events without this stream: True when taken. The stream then ends without
# unsubscribing; the taker owns the subscriber from then on.
Park = Callable[[Subscriber, int], bool]


def _view(e: TransactionEvent) -> EventView:
    return EventView(e.transaction_id, e.user_id, e.seq, e.user_seq, e.status, e.reason, e.at)


def _check_overflow(subscriber: Subscriber, last: int) -> None:
    if subscriber.overflowed:
        raise RateLimited(
            "this subscriber fell too far behind; resubscribe with afterSeq",
            reason="SLOW_CONSUMER",
            resumeAfterSeq=str(last),  # a BigInt, like the afterSeq it goes back into
        )


def _final(event: EventView) -> bool:
    return event.status.is_final


class LiveService:
    """Event streams. Each read (the backlog, a catch-up) is its own short read session of
    the subscription's read-only unit of work: nothing is held while a stream waits."""

    def __init__(self, hub: EventHub, transactions: TransactionQueries) -> None:
        self._hub = hub
        self._transactions = transactions

    async def transaction_events(
        self,
        uow: UnitOfWork,
        principal: Principal,
        tx_id: str,
        after_seq: int | None,
        park: Park | None = None,
    ) -> AsyncIterator[EventView]:
        """The current state (or every event after ``after_seq``), then each new event;
        ends after a final status (or once ``park`` takes the caught-up subscriber)."""
        tx = await self._transactions.get(uow, principal, tx_id)
        tx_uuid = tx.id
        del tx  # nothing of the row is held while the stream waits
        subscriber = self._hub.subscribe(transaction_id=tx_uuid)  # before reading: miss nothing
        parked = False
        try:
            last = after_seq or 0
            backlog = await self._events_after(uow, tx_uuid, last)
            if after_seq is None and backlog:
                backlog = backlog[-1:]  # the current state
            for event in backlog:
                yield event
                last = event.seq
                if _final(event):
                    return
            del backlog
            while True:
                if park is not None and subscriber.idle and park(subscriber, last):
                    parked = True
                    return
                item = await subscriber.next()
                _check_overflow(subscriber, last)
                if isinstance(item, CatchUp) or item.seq > last + 1:
                    missed = await self._events_after(uow, tx_uuid, last)
                elif item.seq == last + 1:
                    missed = [item]
                else:
                    missed = []  # already sent
                for event in missed:
                    yield event
                    last = event.seq
                    if _final(event):
                        return
                    _check_overflow(subscriber, last)  # fell behind while catching up
        finally:
            if not parked:
                subscriber.close()

    async def _events_after(self, uow: UnitOfWork, tx_id: uuid.UUID, seq: int) -> list[EventView]:
        async with uow.read() as session:
            events = await TransactionRepository.from_session(session).events(tx_id, seq, PAGE)
        return [_view(e) for e in events]

    async def user_events(
        self,
        uow: UnitOfWork,
        principal: Principal,
        after_seq: int | None,
        park: Park | None = None,
    ) -> AsyncIterator[EventView]:
        """Every event of every transaction of the caller, in commit order (``userSeq``):
        those after ``after_seq`` first, then each new one. Without ``after_seq``, new ones.
        Ends once ``park`` takes the caught-up subscriber."""
        async with uow.read() as session:
            user_id = await user_id_of(session, principal)
        if user_id is None:
            raise NotFound("no user yet: run createUser first")
        subscriber = self._hub.subscribe(user_id=user_id)  # before reading: miss nothing
        parked = False
        try:
            async with uow.read() as session:
                current = await UserRepository.from_session(session).event_seq(user_id)
            last = current if after_seq is None else after_seq
            pending: list[EventView | CatchUp] = [] if after_seq is None else [CATCH_UP]
            while True:
                if pending:
                    item: EventView | CatchUp = pending.pop()
                elif park is not None and subscriber.idle and park(subscriber, last):
                    parked = True
                    return
                else:
                    item = await subscriber.next()
                _check_overflow(subscriber, last)
                if isinstance(item, CatchUp) or item.user_seq > last + 1:
                    while batch := await self._user_events_after(uow, user_id, last):
                        for event in batch:
                            yield event
                            last = event.user_seq
                            _check_overflow(subscriber, last)  # fell behind meanwhile
                elif item.user_seq == last + 1:
                    yield item
                    last = item.user_seq
        finally:
            if not parked:
                subscriber.close()

    async def _user_events_after(
        self, uow: UnitOfWork, user_id: uuid.UUID, seq: int
    ) -> list[EventView]:
        async with uow.read() as session:
            events = await TransactionRepository.from_session(session).user_events(
                user_id, seq, PAGE
            )
        return [_view(e) for e in events]
