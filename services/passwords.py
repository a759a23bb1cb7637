"""Failed password attempts, limited per user and counted in the database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import UnitOfWork, unit_of_work
from db.models import PasswordFailure
from services.errors import RateLimited


class PasswordGuard:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, max_failures: int, window_seconds: int
    ) -> None:
        self._sessions = sessions
        self._max = max_failures
        self._window = timedelta(seconds=window_seconds)

    async def check(self, uow: UnitOfWork, user_id: uuid.UUID) -> None:
        """RATE_LIMITED (with retryAfter seconds) once the window holds too many failures."""
        since = datetime.now(UTC) - self._window
        count, oldest = (
            await uow.session.execute(
                select(func.count(), func.min(PasswordFailure.failed_at)).where(
                    PasswordFailure.user_id == user_id, PasswordFailure.failed_at > since
                )
            )
        ).one()
        if count >= self._max:
            retry_after = max(1, int((oldest + self._window - datetime.now(UTC)).total_seconds()))
            raise RateLimited(
                f"too many wrong passwords; try again in {retry_after} s", retryAfter=retry_after
            )

    async def record_failure(self, user_id: uuid.UUID) -> None:
        """Record a failure in its own transaction: the failing request itself rolls back."""
        async with unit_of_work(self._sessions) as side:
            side.session.add(PasswordFailure(user_id=user_id))

    async def clear(self, uow: UnitOfWork, user_id: uuid.UUID) -> None:
        """A correct password resets the count (one indexed delete, usually of nothing)."""
        await uow.session.execute(delete(PasswordFailure).where(PasswordFailure.user_id == user_id))
