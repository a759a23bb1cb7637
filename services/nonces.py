"""One nonce source per wallet and chain, for both signTransaction and submitTransaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import NonceState, Wallet
from db.transactions_repo import TransactionRepository


async def lock_next_nonce(
    session: AsyncSession, wallet: Wallet, chain_id: int, chain_next: int
) -> NonceState:
    """The wallet's nonce row, locked until commit, with ``next_nonce`` at least the chain's
    pending count ``chain_next`` (read by the caller before the lock: no RPC under it). The
    lock serialises every signer of this wallet on this chain."""
    row = await TransactionRepository.from_session(session).lock_nonce(
        wallet.id, chain_id, chain_next
    )
    # A transaction broadcast elsewhere (another wallet app with the exported key) moves the
    # chain ahead of the reservation; never hand out a nonce the chain already counts.
    row.next_nonce = max(row.next_nonce, chain_next)
    return row
