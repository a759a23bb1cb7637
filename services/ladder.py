"""The pre-signed fee ladder: the original, its fee bumps and a cancel per rung.

Nodes replace a pending transaction only when both fee caps rise by at least ~10%; each
rung raises them by 12.5% (rounded up), and each cancel outbids the rung it replaces the
same way. So the worker can escalate, or free the nonce, without the user's password.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.domain import AttemptKind
from services.transactions_build import sign_transaction
from services.tx_signing import KnownShapeSigner

CANCEL_GAS = 21_000


def bump(fee: int) -> int:
    """At least +12.5%, and at least +1 wei."""
    return fee + max(1, -(-fee // 8))


@dataclass(frozen=True)
class Rung:
    kind: AttemptKind
    rung: int
    raw: bytes
    hash: str
    fields: dict[str, Any]


def _fees(tx: dict[str, Any]) -> dict[str, int]:
    if "maxFeePerGas" in tx:
        return {
            "maxFeePerGas": tx["maxFeePerGas"],
            "maxPriorityFeePerGas": tx["maxPriorityFeePerGas"],
        }
    return {"gasPrice": tx["gasPrice"]}


def _bumped(fees: dict[str, int]) -> dict[str, int]:
    return {name: bump(value) for name, value in fees.items()}


def build_ladder(tx: dict[str, Any], key: bytes, sender: str, rungs: int) -> list[Rung]:
    """Sign rung 0 (``tx`` as given), ``rungs`` fee bumps and one cancel per rung."""
    ladder: list[Rung] = []
    signer = KnownShapeSigner(key)
    fees = _fees(tx)
    for index in range(rungs + 1):
        if index:
            fees = _bumped(fees)
        send = {**tx, **fees}
        cancel = {
            **send, **_bumped(fees), "to": sender, "value": 0, "data": b"", "gas": CANCEL_GAS,
        }  # fmt: skip
        for kind, fields in ((AttemptKind.SEND, send), (AttemptKind.CANCEL, cancel)):
            signed = sign_transaction(fields, key, sender, signer)
            ladder.append(Rung(kind, index, signed.raw, signed.hash, fields))
    return ladder
