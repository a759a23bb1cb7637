"""Key sealing: Argon2id + pepper (HKDF) + AES-256-GCM bound to (user, address, version)."""

from __future__ import annotations

import uuid

import pytest
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from db.models import Wallet
from services.errors import DecryptionFailed
from services.keys import KdfParams, KeyVault, SealedKey
from testkit.server import LiveServer
from walletql.devauth import DevSigner, load_or_create_pepper
from walletql.settings import Settings

PEPPER = b"p" * 32
USER = uuid.UUID("11111111-1111-1111-1111-111111111111")
KEY = bytes(range(32))
ADDRESS = Account.from_key(KEY).address


@pytest.fixture
def vault() -> KeyVault:
    return KeyVault(PEPPER, KdfParams())


async def test_sealed_key_opens_with_the_right_password(vault: KeyVault) -> None:
    sealed = await vault.seal(KEY, "correct horse", user_id=USER, address=ADDRESS)
    assert KEY not in sealed.ciphertext
    assert await vault.open(sealed, "correct horse", user_id=USER, address=ADDRESS) == KEY


async def test_wrong_password_fails(vault: KeyVault) -> None:
    sealed = await vault.seal(KEY, "correct horse", user_id=USER, address=ADDRESS)
    with pytest.raises(DecryptionFailed):
        await vault.open(sealed, "wrong horse", user_id=USER, address=ADDRESS)


async def test_ciphertext_with_a_flipped_byte_fails(vault: KeyVault) -> None:
    sealed = await vault.seal(KEY, "correct horse", user_id=USER, address=ADDRESS)
    for index in (0, len(sealed.ciphertext) - 1):
        flipped = bytearray(sealed.ciphertext)
        flipped[index] ^= 0x01
        tampered = SealedKey(bytes(flipped), sealed.nonce, sealed.salt, sealed.kdf)
        with pytest.raises(DecryptionFailed):
            await vault.open(tampered, "correct horse", user_id=USER, address=ADDRESS)


async def test_decryption_fails_without_the_pepper(vault: KeyVault) -> None:
    sealed = await vault.seal(KEY, "correct horse", user_id=USER, address=ADDRESS)
    other = KeyVault(b"q" * 32, KdfParams())
    with pytest.raises(DecryptionFailed):
        await other.open(sealed, "correct horse", user_id=USER, address=ADDRESS)


async def test_ciphertext_is_bound_to_user_and_address(vault: KeyVault) -> None:
    sealed = await vault.seal(KEY, "correct horse", user_id=USER, address=ADDRESS)
    with pytest.raises(DecryptionFailed):
        await vault.open(sealed, "correct horse", user_id=uuid.uuid4(), address=ADDRESS)
    with pytest.raises(DecryptionFailed):
        await vault.open(sealed, "correct horse", user_id=USER, address="0x" + "00" * 20)


async def test_records_keep_their_own_kdf_parameters() -> None:
    old = KeyVault(PEPPER, KdfParams(memory_kib=19 * 1024, iterations=2))
    sealed = await old.seal(KEY, "correct horse", user_id=USER, address=ADDRESS)
    raised = KeyVault(PEPPER, KdfParams(memory_kib=32 * 1024, iterations=3))
    assert await raised.open(sealed, "correct horse", user_id=USER, address=ADDRESS) == KEY


async def test_kdf_threads_yield_the_cores_to_everything_else(vault: KeyVault) -> None:
    """A KDF thread runs under SCHED_IDLE: a woken event loop never waits out its slice."""
    import os

    def policy() -> int:
        return os.sched_getscheduler(0)  # 0: the calling thread

    assert await vault.run_in_pool(policy) == os.SCHED_IDLE
    assert policy() != os.SCHED_IDLE  # the caller's own thread is untouched


def test_kdf_below_the_minimum_is_refused_by_settings() -> None:
    with pytest.raises(ValueError, match="kdf_memory_kib"):
        Settings(_env_file=None, kdf_memory_kib=1024)


async def test_created_wallet_is_stored_sealed_with_its_parameters(
    server: LiveServer, signer: DevSigner, settings: Settings, database_url: str
) -> None:
    body = await server.graphql(
        'mutation { createUser(input: {password: "correct horse"}) { wallet { address } } }',
        token=signer.mint("alice"),
    )
    address = body["data"]["createUser"]["wallet"]["address"]
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        wallet = (await conn.execute(select(Wallet).where(Wallet.address == address))).one()
    await engine.dispose()
    assert (wallet.kdf, wallet.kdf_memory_kib, wallet.kdf_iterations) == ("argon2id", 19456, 2)
    vault = KeyVault(load_or_create_pepper(settings.data_dir), KdfParams())
    sealed = SealedKey(
        wallet.ciphertext,
        wallet.nonce,
        wallet.salt,
        KdfParams(wallet.kdf_memory_kib, wallet.kdf_iterations, wallet.kdf_lanes),
        wallet.version,
    )
    key = await vault.open(sealed, "correct horse", user_id=wallet.user_id, address=address)
    assert Account.from_key(key).address == address


def test_production_refuses_embedded_parts_and_the_api_needs_jwks_and_pepper() -> None:
    with pytest.raises(ValueError, match="requires WALLETQL_DATABASE_URL"):
        Settings(_env_file=None, env="production")
    url = "postgresql+asyncpg://walletql@db.internal/walletql"
    with pytest.raises(ValueError, match="cannot use the in-process EVM"):
        Settings(_env_file=None, env="production", database_url=url)
    chains = [{"chain_id": 1, "name": "mainnet", "rpc_url": "https://rpc.example"}]
    worker = Settings(_env_file=None, env="production", database_url=url, chains=chains)
    # The worker's settings are enough for the worker; the API also needs these two.
    assert worker.missing_for_api() == ["WALLETQL_JWKS_URL", "WALLETQL_PEPPER"]
    with pytest.raises(ValueError, match="at least 32"):
        Settings(_env_file=None, pepper="short")
