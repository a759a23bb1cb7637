"""The one mapping between a stored wallet row and the sealed key it holds."""

from __future__ import annotations

import uuid

from db.models import Wallet
from services.keys import KdfParams, SealedKey


def sealed_of(wallet: Wallet) -> SealedKey:
    kdf = KdfParams(wallet.kdf_memory_kib, wallet.kdf_iterations, wallet.kdf_lanes, wallet.kdf)
    return SealedKey(wallet.ciphertext, wallet.nonce, wallet.salt, kdf, wallet.version)


def store_sealed(wallet: Wallet, sealed: SealedKey) -> None:
    """Put ``sealed`` into the wallet row (a new row, or a re-seal under a new password)."""
    wallet.ciphertext, wallet.nonce, wallet.salt = sealed.ciphertext, sealed.nonce, sealed.salt
    wallet.kdf, wallet.kdf_memory_kib = sealed.kdf.name, sealed.kdf.memory_kib
    wallet.kdf_iterations, wallet.kdf_lanes = sealed.kdf.iterations, sealed.kdf.lanes
    wallet.version = sealed.version


def new_wallet(user_id: uuid.UUID, address: str, sealed: SealedKey) -> Wallet:
    wallet = Wallet(user_id=user_id, address=address)
    store_sealed(wallet, sealed)
    return wallet
