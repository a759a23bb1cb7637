"""Closed sets of values, as GraphQL enums."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

from enum import Enum

import strawberry

from services.domain import AttemptKind

__all__ = ["AttemptKind", "SignedEncoding", "TokenErrorCode", "TransactionErrorCode", "TxType"]


@strawberry.enum(name="TxType", description="The transaction envelope (EIP-2718 type).")
class TxType(Enum):
    LEGACY = 0
    EIP1559 = 2

    @classmethod
    def of(cls, tx_type: int) -> "TxType":
        return cls(tx_type)


@strawberry.enum(name="SignedEncoding", description="What signMessage or signTypedData signed.")
class SignedEncoding(Enum):
    TEXT = "TEXT"
    HEX = "HEX"
    TYPED_DATA = "TYPED_DATA"


@strawberry.enum(
    name="TransactionErrorCode",
    description="Why a transaction FAILED, or, on one not final yet, what the worker is "
    "retrying past (cleared once the node takes it). REVERTED: mined, but the call reverted. "
    "REJECTED: the node refused it (say, too little balance), in the node's words. "
    "NONCE_CONFLICT: a transaction walletql did not send took its nonce. DEAD_LETTER: the "
    "queue gave up on it after repeated failures (with the last error seen). RETRYING: a look "
    "at it failed (an error, or the chain not answering) and comes again.",
)
class TransactionErrorCode(Enum):
    REVERTED = "REVERTED"
    REJECTED = "REJECTED"
    NONCE_CONFLICT = "NONCE_CONFLICT"
    DEAD_LETTER = "DEAD_LETTER"
    RETRYING = "RETRYING"


@strawberry.enum(
    name="TokenErrorCode",
    description="Why a token could not be read. NOT_ERC20: the address does not answer "
    "symbol(), decimals() and balanceOf() as an ERC-20 contract.",
)
class TokenErrorCode(Enum):
    NOT_ERC20 = "NOT_ERC20"


# The domain's enum is the GraphQL enum, as for TransactionStatus.
strawberry.enum(
    AttemptKind,
    name="AttemptKind",
    description="A pre-signed variant of a transaction. SEND: as asked (rung 0) or a fee "
    "bump of it. CANCEL: a 0-value send to yourself that takes the nonce instead.",
)
