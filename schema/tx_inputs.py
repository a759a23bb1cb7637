"""The one mapper from the transaction inputs to the service's request."""

from __future__ import annotations

from dataclasses import replace

from schema.transaction_types import SubmitTransactionInput
from schema.wallet_types import SignTransactionInput
from services.transactions_build import TxRequest


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
