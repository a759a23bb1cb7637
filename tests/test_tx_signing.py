"""The direct signer gives byte for byte what eth-account gives, for every shape walletql
fills, and leaves the others to eth-account."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from services.transactions_build import sign_transaction
from services.tx_signing import KnownShapeSigner

KEYS = st.binary(min_size=32, max_size=32).filter(
    lambda k: (
        0
        < int.from_bytes(k, "big")
        < 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    )
)
ADDRESSES = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))
UINT = st.integers(min_value=0, max_value=2**256 - 1)
SMALL = st.integers(min_value=0, max_value=2**64 - 1)
CHAIN_IDS = st.integers(min_value=1, max_value=2**32)


def _eth_account(tx: dict[str, Any], key: bytes) -> tuple[bytes, bytes]:
    signed = Account.sign_transaction(tx, key)
    return bytes(signed.raw_transaction), bytes(signed.hash)


@settings(max_examples=150, deadline=None)
@given(
    key=KEYS, chain_id=CHAIN_IDS, nonce=SMALL, to=ADDRESSES, value=UINT,
    data=st.binary(max_size=200), gas=st.integers(21_000, 30_000_000),
    fees=st.tuples(SMALL, SMALL).map(sorted),
)  # fmt: skip
def test_eip1559_transactions_match_eth_account(
    key: bytes, chain_id: int, nonce: int, to: str, value: int, data: bytes, gas: int,
    fees: list[int],
) -> None:  # fmt: skip
    tx = {
        "type": 2, "chainId": chain_id, "nonce": nonce, "to": to, "value": value, "data": data,
        "gas": gas, "maxPriorityFeePerGas": fees[0], "maxFeePerGas": fees[1],
    }  # fmt: skip
    assert KnownShapeSigner(key).sign(tx) == _eth_account(tx, key)


@settings(max_examples=150, deadline=None)
@given(
    key=KEYS, chain_id=CHAIN_IDS, nonce=SMALL, to=st.none() | ADDRESSES, value=UINT,
    data=st.binary(max_size=200), gas=st.integers(21_000, 30_000_000), price=SMALL,
)  # fmt: skip
def test_legacy_transactions_and_deployments_match_eth_account(
    key: bytes, chain_id: int, nonce: int, to: str | None, value: int, data: bytes, gas: int,
    price: int,
) -> None:  # fmt: skip
    tx: dict[str, Any] = {
        "chainId": chain_id, "nonce": nonce, "value": value, "data": data, "gas": gas,
        "gasPrice": price,
    }  # fmt: skip
    if to is not None:
        tx["to"] = to
    assert KnownShapeSigner(key).sign(tx) == _eth_account(tx, key)


def test_other_shapes_are_signed_by_eth_account() -> None:
    key = b"\x07" * 32
    deploy = {
        "type": 2, "chainId": 1, "nonce": 0, "value": 0, "data": b"\x60\x00", "gas": 60_000,
        "maxPriorityFeePerGas": 1, "maxFeePerGas": 2,
    }  # fmt: skip
    with_access_list = {**deploy, "to": to_checksum_address("0x" + "11" * 20), "accessList": []}
    for tx in (deploy, with_access_list):
        assert KnownShapeSigner(key).sign(tx) is None
        signed = sign_transaction(tx, key, Account.from_key(key).address)
        assert (signed.raw, signed.hash) == (
            _eth_account(tx, key)[0],
            "0x" + _eth_account(tx, key)[1].hex(),
        )
