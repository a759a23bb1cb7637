"""Wallet key encryption: Argon2id(password) + HKDF(pepper) -> AES-256-GCM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services import metrics
from services.errors import DecryptionFailed

RECORD_VERSION = 1
T = TypeVar("T")
_HKDF_INFO = b"walletql/wallet-key/v1"
# The KDF threads' scheduling: Argon2id runs without the GIL, so the OS decides who gets a
# core, and under contention the event loop (every other request) should win over a KDF.
# SCHED_IDLE (Linux): any other thread that wakes up takes the core at once; a nice value
# only shifts shares, and a woken event loop could wait out a KDF's time slice. Where the
# policy is refused, the thread is niced instead.
KDF_THREAD_NICENESS = 19


def _lower_thread_priority() -> None:
    """Run this thread only when nothing else wants the core (a thread has its own policy)."""
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, tid, KDF_THREAD_NICENESS)


@dataclass(frozen=True)
class KdfParams:
    memory_kib: int = 19 * 1024
    iterations: int = 2
    lanes: int = 1
    name: str = "argon2id"


@dataclass(frozen=True)
class SealedKey:
    """What the database stores for one wallet key. It is useless without password and pepper."""

    ciphertext: bytes
    nonce: bytes
    salt: bytes
    kdf: KdfParams
    version: int = RECORD_VERSION


def _aad(user_id: uuid.UUID, address: str, version: int) -> bytes:
    return f"walletql:v{version}:{user_id}:{address.lower()}".encode()


class KeyVault:
    """Seals and opens private keys. The KDF runs in threads, at most ``concurrency`` at once."""

    def __init__(self, pepper: bytes, params: KdfParams, concurrency: int = 2) -> None:
        if len(pepper) < 32:
            raise ValueError("the pepper must be at least 32 bytes")
        self._pepper = pepper
        self.params = params
        self._executor = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="kdf", initializer=_lower_thread_priority
        )
        self._slots = asyncio.Semaphore(concurrency)

    def _derive(self, password: str, salt: bytes, params: KdfParams) -> bytes:
        if params.name != "argon2id":
            raise DecryptionFailed
        stretched = Argon2id(
            salt=salt,
            length=32,
            iterations=params.iterations,
            lanes=params.lanes,
            memory_cost=params.memory_kib,
        ).derive(password.encode())
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=self._pepper, info=_HKDF_INFO
        ).derive(stretched)

    def _seal(self, private_key: bytes, password: str, aad: bytes) -> SealedKey:
        salt, nonce = os.urandom(16), os.urandom(12)
        key = self._derive(password, salt, self.params)
        return SealedKey(AESGCM(key).encrypt(nonce, private_key, aad), nonce, salt, self.params)

    def _open(self, sealed: SealedKey, password: str, aad: bytes) -> bytes:
        key = self._derive(password, sealed.salt, sealed.kdf)
        try:
            return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, aad)
        except InvalidTag as exc:
            raise DecryptionFailed from exc

    async def run_in_pool(self, fn: Callable[..., T], *args: object) -> T:
        """Run other CPU-heavy key work (e.g. keystore scrypt) under the same cap."""
        return await self._in_pool(fn, *args)

    async def _in_pool(self, fn: Callable[..., T], *args: object) -> T:
        queued = time.perf_counter()
        async with self._slots:
            started = time.perf_counter()
            metrics.KDF_WAIT.observe(started - queued)
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._executor, fn, *args)
            finally:
                metrics.KDF_DURATION.observe(time.perf_counter() - started)

    async def seal(
        self, private_key: bytes, password: str, *, user_id: uuid.UUID, address: str
    ) -> SealedKey:
        """Encrypt a private key under the password, bound to (user, address, version)."""
        aad = _aad(user_id, address, RECORD_VERSION)
        return await self._in_pool(self._seal, private_key, password, aad)

    async def open(
        self, sealed: SealedKey, password: str, *, user_id: uuid.UUID, address: str
    ) -> bytes:
        """Decrypt a private key; raises DecryptionFailed on any mismatch."""
        aad = _aad(user_id, address, sealed.version)
        return await self._in_pool(self._open, sealed, password, aad)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
