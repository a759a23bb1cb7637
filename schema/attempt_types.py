"""GraphQL types for what a transaction sent to the chain: its attempts (the original, fee
bumps, the cancel) and the ERC-20 transfer it calls."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

from datetime import datetime

import strawberry

from schema.enums import AttemptKind
from schema.scalars import Address, BigInt, Hex, optional_big
from services.records import TransactionAttempt


@strawberry.type(name="TransactionAttempt")
class TransactionAttemptType:
    kind: AttemptKind
    rung: int = strawberry.field(
        description="0 is the original; k is the k-th fee bump (for a CANCEL: the bump it outbids)."
    )
    hash: Hex
    max_fee_per_gas: BigInt | None
    max_priority_fee_per_gas: BigInt | None
    gas_price: BigInt | None
    sent_at: datetime | None = strawberry.field(description="Null until broadcast.")

    @classmethod
    def from_model(cls, m: TransactionAttempt) -> "TransactionAttemptType":
        return cls(
            kind=AttemptKind(m.kind),
            rung=m.rung,
            hash=Hex(m.hash),
            max_fee_per_gas=optional_big(m.max_fee_per_gas),
            max_priority_fee_per_gas=optional_big(m.max_priority_fee_per_gas),
            gas_price=optional_big(m.gas_price),
            sent_at=m.sent_at,
        )


@strawberry.type(name="TokenTransfer")
class TokenTransferType:
    token: Address
    symbol: str | None = strawberry.field(description="Null if the token does not say.")
    decimals: int | None = strawberry.field(description="Null if the token does not say.")
    amount: BigInt = strawberry.field(description="In the token's base units.")
    to: Address = strawberry.field(description="The recipient of the tokens.")
