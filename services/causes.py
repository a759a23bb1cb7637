"""Why a transaction is stuck or failed, in words its owner can read: a node's refusal, a look
by the worker that failed and will be retried, a dead letter.

A cause lands in an event ``reason`` (pushed to subscribers at commit) and, for the
transaction's own bytes, in its ``error``, in the unit of work of the look that met it: the
owner hears of it within one check interval. While the cause stays the same, the event is not
repeated at every look. A "live" error (on a transaction that is not final) is cleared once
the node takes the transaction.
"""

from __future__ import annotations

import logging

from db.models import Transaction
from db.transactions_repo import TransactionRepository
from db.unit_of_work import UnitOfWork
from services.errors import DomainError
from services.events import record_event
from services.logs import escape_controls, redact
from services.rpc import RpcError

# Error codes a transaction carries while the worker keeps trying (TransactionErrorCode).
REJECTED = "REJECTED"  # the node refused the bytes; FAILED when the refusal is final
RETRYING = "RETRYING"  # a look failed (an error, the chain not answering); it is tried again
LIVE_ERRORS = frozenset({REJECTED, RETRYING})
# Event reasons that are notes only (the transaction's error is unchanged).
FEE_BUMP_REFUSED = "FEE_BUMP_REFUSED"
CANCEL_REFUSED = "CANCEL_REFUSED"
NONCE_GAP = "NONCE_GAP"

MAX_WORDS = 300

log = logging.getLogger(__name__)


def words(text: str) -> str:
    """A node's or an error's message as its owner may read it: one line, no credentials in
    URLs, no SQL, at most ``MAX_WORDS`` characters."""
    text = escape_controls(redact(text)).strip() or "no message"
    return text if len(text) <= MAX_WORDS else text[: MAX_WORDS - 1] + "…"


def public_cause(exc: BaseException) -> str:
    """An exception met while processing, as its owner may read it. Our own errors and a
    node's answers say what happened; anything else is named by its class only (its message
    may hold SQL or values), and the worker's log has the rest."""
    if isinstance(exc, DomainError):
        return words(exc.message)
    if isinstance(exc, RpcError):
        return words(f"the node answered: {exc.message}")
    return f"{type(exc).__name__} (the worker's log has the details)"


async def note(
    uow: UnitOfWork, tx: Transaction, kind: str, message: str, *, error: bool = False
) -> None:
    """Tell the owner ``kind: message`` at the transaction's current status: an event, unless
    the last one says the same and the error is unchanged; with ``error``, also its error
    (``kind`` is then a TransactionErrorCode)."""
    message = words(message)
    reason = f"{kind}: {message}"
    changed = False
    if error:
        changed = (tx.error_code, tx.error_message) != (kind, message)
        tx.error_code, tx.error_message = kind, message
    if not changed:
        last = await TransactionRepository.from_session(uow.session).events(
            tx.id, after_seq=tx.last_seq - 1
        )
        if last and last[-1].reason == reason:
            return
    log.info("transaction %s: %s", tx.id, reason)
    await record_event(uow, tx, tx.status, reason)


def clear_live_error(tx: Transaction, codes: frozenset[str] = LIVE_ERRORS) -> None:
    """The node took the transaction (or, for RETRYING, a look went through): an earlier
    refusal or failed look no longer describes it."""
    if tx.error_code in codes and not tx.status.is_final:
        tx.error_code = tx.error_message = None


def last_error(tx: Transaction) -> str | None:
    """The live error's message, which a dead letter carries on."""
    return tx.error_message if tx.error_code in LIVE_ERRORS else None
