"""Users and their embedded wallets."""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User
from db.repositories import UserProfile, UserRepository, WalletRepository, profile_by_sub
from db.unit_of_work import UnitOfWork
from services.auth import Principal
from services.errors import BadUserInput, UserExists, WeakPassword
from services.keys import KeyVault
from services.sealing import new_wallet
from services.validation import check_text, parse_address

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{2,31}")


def check_password_strength(password: str, field: str = "password") -> None:
    check_text(password, field=field)
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"password must have at least {MIN_PASSWORD} characters", field=field)
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"password must have at most {MAX_PASSWORD} characters", field=field)


WalletCreated = Callable[[str], Awaitable[None]]


async def user_id_of(session: AsyncSession, principal: Principal) -> uuid.UUID | None:
    """The caller's user id, or None before createUser: the one principal → user lookup."""
    return await UserRepository.from_session(session).id_by_sub(principal.sub)


class UserService:
    def __init__(self, vault: KeyVault, on_wallet_created: WalletCreated | None = None) -> None:
        self._vault = vault
        self._on_wallet_created = on_wallet_created

    async def me(self, uow: UnitOfWork, principal: Principal) -> UserProfile | None:
        """The caller's profile, or None before createUser."""
        async with uow.driver() as driver:
            return await profile_by_sub(driver, principal.sub)

    async def public_profile(self, uow: UnitOfWork, user_id: str) -> UserProfile | None:
        """Another user's public profile, by id; None when there is none."""
        try:
            parsed = uuid.UUID(user_id)
        except ValueError as exc:
            raise BadUserInput("id is not a valid user id", field="id") from exc
        async with uow.read() as session:
            return await UserRepository.from_session(session).profile_by_id(parsed)

    async def public_profile_by_address(self, uow: UnitOfWork, address: str) -> UserProfile | None:
        """Another user's public profile, by wallet address; None when no user has it."""
        checksummed = parse_address(address, field="address")
        async with uow.read() as session:
            return await UserRepository.from_session(session).profile_by_address(checksummed)

    async def create_user(
        self, uow: UnitOfWork, principal: Principal, password: str, username: str | None
    ) -> UserProfile:
        """Create the caller's user and a wallet whose key is sealed by ``password``."""
        check_password_strength(password)
        if username is not None:
            # Compared and stored after NFKC (fullwidth and compatibility forms fold to ASCII);
            # the result must be ASCII, so lower() in the unique index is full case folding.
            username = unicodedata.normalize("NFKC", username)
        if username is not None and not _USERNAME.fullmatch(username):
            raise BadUserInput(
                "username must be 3-32 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit",
                field="username",
            )
        async with uow.read() as session:
            users = UserRepository.from_session(session)
            if await users.sub_exists(principal.sub):
                raise UserExists("a user already exists for this account")
            if username is not None and await users.username_taken(username):
                raise UserExists("this username is taken", field="username")

        from eth_account import Account

        # The KDF runs before the transaction begins: no connection waits through it.
        account = Account.from_key(secrets.token_bytes(32))
        user = User(id=uuid.uuid4(), sub=principal.sub, username=username)
        sealed = await self._vault.seal(
            bytes(account.key), password, user_id=user.id, address=account.address
        )
        users = UserRepository.from_session(uow.session)
        try:
            async with uow.session.begin_nested():
                await users.add(user)
                await WalletRepository.from_session(uow.session).add(
                    new_wallet(user.id, account.address, sealed)
                )
        except IntegrityError as exc:  # a concurrent createUser for the same sub or name
            raise UserExists("a user already exists for this account or username") from exc
        if self._on_wallet_created is not None:
            hook, address = self._on_wallet_created, account.address
            uow.after_commit(lambda: hook(address))
        profile = await users.profile_by_id(user.id)
        assert profile is not None
        return profile
