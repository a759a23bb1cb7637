"""Failed password attempts, limited per user and counted in the database."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from db.models import PasswordFailure
from db.unit_of_work import UnitOfWork
from services.errors import RateLimited


class PasswordGuard:
    def __init__(
        self,
        *,
        max_failures: int,
        window_seconds: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._max = max_failures
        self._window = timedelta(seconds=window_seconds)
        self._clock = clock

    def window_start(self) -> datetime:
        """Failures after this moment count against the limit."""
        return self._clock() - self._window

    def check(self, count: int, oldest: datetime | None) -> int:
        """RATE_LIMITED (with retryAfter seconds) once the window holds too many failures
        (``count``, the oldest at ``oldest``, read since ``window_start()``); else ``count``."""
        if count >= self._max:
            since = oldest or self._clock()
            retry_after = max(1, int((since + self._window - self._clock()).total_seconds()))
            raise RateLimited(
                f"too many wrong passwords; try again in {retry_after} s", retryAfter=retry_after
            )
        return count

    async def record_failure(self, uow: UnitOfWork, user_id: uuid.UUID) -> None:
        """Record a failure in its own transaction: the failing request itself rolls back."""
        async with uow.independent() as session:
            session.add(PasswordFailure(user_id=user_id))

    async def clear(self, uow: UnitOfWork, user_id: uuid.UUID) -> None:
        """A correct password resets the count, in its own short transaction: no connection
        is held through the work that follows (more KDF, RPC calls)."""
        async with uow.independent() as session:
            await session.execute(delete(PasswordFailure).where(PasswordFailure.user_id == user_id))
