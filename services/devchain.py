"""The in-process EVM (services/embedded_evm.py, a child process of the server) made durable.

py-evm keeps its state in memory only. Every raw transaction it accepts is appended to a
journal under the data directory (and fsynced) before the send returns; at start the journal
is replayed in order. The EVM auto-mines one block per transaction, so the replay gives the
same blocks, balances, nonces and receipts (transaction hashes are those of the raw bytes).
The faucet signs its transfers with the tester's funded account, so they are raw
transactions in the journal like any other.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_PYEVM_NONCE = re.compile(r"Invalid transaction nonce: Expected (\d+), but got (\d+)")

# eth-tester's first default account: private key 1, funded in its genesis block.
_FUNDER_KEY = (1).to_bytes(32, "big")
FUNDER = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"


class ChainJournal:
    """An append-only file of raw transactions, one 0x-hex line each."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[bytes]:
        """Every complete line; a line torn by a crash mid-write is cut off the file."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        if end < len(data):
            log.warning("dropping a torn last line of %s", self.path)
            with self.path.open("r+b") as handle:
                handle.truncate(end)
        return [bytes.fromhex(line[2:].decode()) for line in data[:end].splitlines() if line]

    def hashes(self) -> set[str]:
        """The 0x-hex hashes of the journaled transactions (a hash is that of the raw bytes)."""
        from eth_hash.auto import keccak

        return {"0x" + keccak(raw).hex() for raw in self.load()}

    def append(self, raw: bytes) -> None:
        """Durable before it returns: the caller reports the send only after this."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"0x" + raw.hex().encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)


def replay(ethereum_tester: Any, journal: ChainJournal) -> None:
    """Mine the journal's transactions again, in order, into a fresh in-process EVM."""
    raws = journal.load()
    refused = 0
    for raw in raws:
        try:
            ethereum_tester.send_raw_transaction("0x" + raw.hex())
        except Exception as exc:  # a journal from another build of the chain
            refused += 1
            log.warning("embedded chain: a journaled transaction was refused: %s", exc)
    if raws:
        log.info(
            "embedded chain: replayed %d transactions from %s (%d refused)",
            len(raws) - refused, journal.path, refused,
        )  # fmt: skip


def funding_transaction(
    chain_id: int, nonce: int, base_fee: int | None, address: str, wei: int
) -> bytes:
    """A transfer from the tester's funded account, signed here so it can be journaled."""
    from eth_account import Account

    tx = {
        "chainId": chain_id, "to": address, "value": wei, "gas": 21_000, "nonce": nonce,
        "maxFeePerGas": 2 * (base_fee or 0) + 10**9, "maxPriorityFeePerGas": 10**9, "type": 2,
    }  # fmt: skip
    return bytes(Account.sign_transaction(tx, _FUNDER_KEY).raw_transaction)


def refusal_message(message: str) -> str:
    """py-evm's refusal in the words JSON-RPC nodes use, so one set of rules reads both."""
    if match := _PYEVM_NONCE.search(message):
        expected, got = int(match[1]), int(match[2])
        words = "nonce too low" if got < expected else "nonce too high"
        return f"{words}: the chain's next nonce is {expected}, the transaction has {got}"
    return message
