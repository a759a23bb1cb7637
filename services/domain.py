"""The domain's vocabulary: the enums every layer speaks. It imports nothing of ours, so
``db/`` types its columns with it and the GraphQL schema exposes it as it is."""

from __future__ import annotations

import enum


class TransactionStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    SUBMITTED = "SUBMITTED"
    MINED = "MINED"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        """Nothing will change this transaction's status any more."""
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset(
    {
        TransactionStatus.CONFIRMED,
        TransactionStatus.FAILED,
        TransactionStatus.EXPIRED,
        TransactionStatus.CANCELLED,
    }
)


class AttemptKind(enum.StrEnum):
    """A pre-signed variant: SEND rung 0 is the original, SEND rung k a fee bump; CANCEL rung k
    (a 0-value self-send with the same nonce) outbids SEND rung k."""

    SEND = "SEND"
    CANCEL = "CANCEL"


class CancelReason(enum.StrEnum):
    """Why a cancel was sent: the user asked, the deadline passed, or the node rejected the
    transaction and its nonce had to be filled."""

    USER = "USER"
    DEADLINE = "DEADLINE"
    REJECTED = "REJECTED"
