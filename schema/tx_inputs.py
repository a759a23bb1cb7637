"""The transaction inputs, and the one mapper from them to the service's request."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

from dataclasses import replace

import strawberry

from schema.enums import TxType
from schema.scalars import Address, BigInt, ChainId, Hex
from services.transactions_build import TxRequest

_IDEMPOTENCY_KEY = "Retry-safe key: the same key and input return the same transaction."


@strawberry.input(name="TransactionFields")
class TransactionFields:
    """The fields that signTransaction and submitTransaction share, first in both inputs (a
    base class's fields come first: the printed schema keeps its order). Not in the schema
    itself: no field takes it."""

    password: str
    to: Address | None = strawberry.field(
        default=None, description="Leave out to deploy a contract: data is its init code."
    )
    chain_id: ChainId | None = None
    value: BigInt | None = None
    data: Hex | None = None
    gas: BigInt | None = None


@strawberry.input(name="SignTransactionInput")
class SignTransactionInput(TransactionFields):
    nonce: BigInt | None = None
    max_fee_per_gas: BigInt | None = None
    max_priority_fee_per_gas: BigInt | None = None
    gas_price: BigInt | None = None
    type: TxType | None = strawberry.field(
        default=None, description="Default: EIP1559 where the chain has a base fee."
    )


@strawberry.input(name="SubmitTransactionInput")
class SubmitTransactionInput(TransactionFields):
    max_fee_per_gas: BigInt | None = None
    max_priority_fee_per_gas: BigInt | None = None
    idempotency_key: str | None = strawberry.field(default=None, description=_IDEMPOTENCY_KEY)


@strawberry.input(name="TransferTokenInput")
class TransferTokenInput:
    token: Address = strawberry.field(description="The ERC-20 contract.")
    to: Address = strawberry.field(description="Who receives the tokens.")
    amount: BigInt = strawberry.field(description="In the token's base units (see decimals).")
    password: str
    chain_id: ChainId | None = None
    idempotency_key: str | None = strawberry.field(default=None, description=_IDEMPOTENCY_KEY)


def tx_request(input: SignTransactionInput | SubmitTransactionInput) -> TxRequest:
    """The service's request from either input (a submit leaves nonce and type to it)."""
    request = TxRequest(
        to=input.to,
        chain_id=input.chain_id,
        value=input.value or 0,
        data=bytes.fromhex(input.data[2:]) if input.data else b"",
        gas=input.gas,
        max_fee_per_gas=input.max_fee_per_gas,
        max_priority_fee_per_gas=input.max_priority_fee_per_gas,
    )
    if isinstance(input, SignTransactionInput):
        return replace(
            request,
            nonce=input.nonce,
            gas_price=input.gas_price,
            tx_type=input.type.value if input.type is not None else None,
        )
    return replace(request, idempotency_key=input.idempotency_key)
