"""Repositories own the SQL. Hot reads use lean Core selects, writes use the ORM."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User, Wallet


@dataclass(frozen=True)
class UserProfile:
    """A user with their wallet address: what ``me`` and the public profile read."""

    id: uuid.UUID
    sub: str
    username: str | None
    address: str | None
    created_at: datetime


_PROFILE_COLUMNS = (User.id, User.sub, User.username, Wallet.address, User.created_at)
_PROFILE_BY_SUB = (
    "SELECT u.id, u.sub, u.username, w.address, u.created_at "
    "FROM users u LEFT JOIN wallets w ON w.user_id = u.id WHERE u.sub = $1"
)


_WALLET_COLUMNS = (
    "id", "user_id", "address", "ciphertext", "nonce", "salt", "kdf", "kdf_memory_kib",
    "kdf_iterations", "kdf_lanes", "version", "created_at", "updated_at",
)  # fmt: skip
_WALLET_TO_UNLOCK = (
    f"SELECT {', '.join(f'w.{column}' for column in _WALLET_COLUMNS)}, "  # noqa: S608 - our names
    "f.failures, f.oldest, n.next_nonce "
    "FROM users u JOIN wallets w ON w.user_id = u.id "
    "CROSS JOIN LATERAL (SELECT count(*) AS failures, min(failed_at) AS oldest "
    "FROM password_failures WHERE user_id = u.id AND failed_at > $2) f "
    "LEFT JOIN nonce_states n ON n.wallet_id = w.id AND n.chain_id = $3 "
    "WHERE u.sub = $1"
)


@dataclass(frozen=True)
class WalletToUnlock:
    """A wallet with what opening it needs: the password failures in the guard's window
    (their count and the oldest), and the nonce the wallet reserves next on one chain."""

    wallet: Wallet
    failures: int
    oldest_failure: datetime | None
    next_nonce: int | None


async def wallet_to_unlock(
    driver: Any, sub: str, failures_since: datetime, chain_id: int | None
) -> WalletToUnlock | None:
    """The caller's wallet, its recent password failures and its stored next nonce on
    ``chain_id`` (None when no nonce is stored there yet): one statement, read before a KDF."""
    row = await driver.fetchrow(_WALLET_TO_UNLOCK, sub, failures_since, chain_id)
    if row is None:
        return None
    wallet = Wallet(**{column: row[n] for n, column in enumerate(_WALLET_COLUMNS)})
    failures, oldest, next_nonce = row[len(_WALLET_COLUMNS) :]
    return WalletToUnlock(wallet, int(failures), oldest, next_nonce)


async def profile_by_sub(driver: Any, sub: str) -> UserProfile | None:
    """The hottest read (every ``me``): one prepared statement on a driver connection
    (``UnitOfWork.driver()``), with no session and none of SQLAlchemy's result machinery."""
    row = await driver.fetchrow(_PROFILE_BY_SUB, sub)
    return UserProfile(*row) if row else None


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> UserRepository:
        return cls(session)

    async def _profile(self, *where: object) -> UserProfile | None:
        stmt = select(*_PROFILE_COLUMNS).outerjoin(Wallet, Wallet.user_id == User.id).where(*where)  # type: ignore[arg-type]
        row = (await self.session.execute(stmt)).first()
        return UserProfile(*row) if row else None

    async def profile_by_id(self, user_id: uuid.UUID) -> UserProfile | None:
        return await self._profile(User.id == user_id)

    async def profile_by_address(self, address: str) -> UserProfile | None:
        return await self._profile(Wallet.address == address)

    async def id_by_sub(self, sub: str) -> uuid.UUID | None:
        return await self.session.scalar(select(User.id).where(User.sub == sub))

    async def event_seq(self, user_id: uuid.UUID) -> int:
        """The last per-user event number handed out (0 before any event)."""
        seq = await self.session.scalar(select(User.event_seq).where(User.id == user_id))
        return seq or 0

    async def sub_exists(self, sub: str) -> bool:
        return (await self.id_by_sub(sub)) is not None

    async def username_taken(self, username: str) -> bool:
        stmt = select(User.id).where(func.lower(User.username) == username.lower())
        return (await self.session.scalar(stmt)) is not None

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user


class WalletRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> WalletRepository:
        return cls(session)

    async def add(self, wallet: Wallet) -> Wallet:
        self.session.add(wallet)
        await self.session.flush()
        return wallet

    async def for_user_sub(self, sub: str, *, lock: bool = False) -> Wallet | None:
        stmt = select(Wallet).join(User, User.id == Wallet.user_id).where(User.sub == sub)
        if lock:
            stmt = stmt.with_for_update(of=Wallet)
        return (await self.session.scalars(stmt)).first()
