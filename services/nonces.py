"""One nonce source per wallet and chain, for both signTransaction and submitTransaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from db.submissions import lock_nonce, set_next_nonce


@dataclass(frozen=True)
class NonceLock:
    """A wallet's nonce row on one chain, locked until commit: ``next_nonce`` is the nonce
    to use (at least the chain's pending count), ``stored`` what the row held."""

    driver: Any
    wallet_id: uuid.UUID
    chain_id: int
    stored: int
    next_nonce: int

    async def take(self, nonce: int) -> None:
        """``nonce`` is used: the next reservation starts after it."""
        await set_next_nonce(self.driver, self.wallet_id, self.chain_id, nonce + 1)

    async def keep(self) -> None:
        """Nothing is used; the row still catches up with the chain's count."""
        if self.next_nonce != self.stored:
            await set_next_nonce(self.driver, self.wallet_id, self.chain_id, self.next_nonce)


async def lock_next_nonce(
    driver: Any, wallet_id: uuid.UUID, chain_id: int, chain_next: int
) -> NonceLock:
    """The wallet's nonce row, locked until commit (``driver``: the unit's transaction), with
    ``next_nonce`` at least the chain's pending count ``chain_next`` (read by the caller
    before the lock: no RPC under it). The lock serialises every signer of this wallet on
    this chain."""
    stored = await lock_nonce(driver, wallet_id, chain_id, chain_next)
    # A transaction broadcast elsewhere (another wallet app with the exported key) moves the
    # chain ahead of the reservation; never hand out a nonce the chain already counts.
    return NonceLock(driver, wallet_id, chain_id, stored, max(stored, chain_next))
