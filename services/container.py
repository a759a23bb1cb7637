"""The services of one process, built once by the composition root (``walletql/app.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.auth import TokenVerifier
from services.keys import KeyVault
from services.users import UserService


@dataclass
class Services:
    session_factory: async_sessionmaker[AsyncSession]
    verifier: TokenVerifier
    vault: KeyVault
    users: UserService
