"""Helpers only the tests need, because they reach into the product: a wallet seeded with a
known key, and a worker that crashes at a chosen point."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from testkit import ROOT


async def run_crashing_worker(env: dict[str, str]) -> None:
    """Run tests.fault_worker: it broadcasts once, then dies by SIGKILL before committing."""
    crashing = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fault_worker", env=env, cwd=ROOT
    )
    assert await asyncio.wait_for(crashing.wait(), timeout=60) == -9


async def seed_wallet(
    database_url: str, data_dir: Path, sub: str, private_key: bytes, password: str
) -> str:
    """Insert a user whose wallet holds a known key (for known-answer vectors); its address."""
    import uuid

    from eth_account import Account
    from sqlalchemy.ext.asyncio import create_async_engine

    from db.models import User
    from db.unit_of_work import UnitsOfWork
    from services.keys import KdfParams, KeyVault
    from services.sealing import new_wallet
    from walletql.devauth import load_or_create_pepper

    address: str = Account.from_key(private_key).address
    user_id = uuid.uuid4()
    vault = KeyVault(load_or_create_pepper(data_dir), KdfParams())
    sealed = await vault.seal(private_key, password, user_id=user_id, address=address)
    vault.close()
    engine = create_async_engine(database_url)
    async with UnitsOfWork(engine).begin() as uow:
        uow.session.add(User(id=user_id, sub=sub))
        await uow.session.flush()
        uow.session.add(new_wallet(user_id, address, sealed))
    await engine.dispose()
    return address
