"""TransactionProcessor, table-driven: one stored transaction, one look by the worker, with a
fake chain (the node's answers are set per case) and a fixed clock, over real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.models import Transaction, TransactionAttempt, TransactionEvent, User, Wallet
from db.unit_of_work import UnitsOfWork
from services.chains import Chain, ChainConfig, Chains, NodeRejected
from services.domain import AttemptKind, CancelReason, TransactionStatus
from services.events import CHANNEL, record_event
from services.pipeline import TransactionProcessor

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
INTERVAL = 2.0
CONFIG = ChainConfig(
    chain_id=31337, name="fake", rpc_url="http://fake.invalid", confirmations=2,
    deadline_seconds=300, bump_interval_seconds=60,
)  # fmt: skip
S = TransactionStatus


class FakeChain(Chain):
    """A fake node: answers what the case sets, records what is broadcast."""

    def __init__(self, config: ChainConfig, timeout: float) -> None:
        super().__init__(config, timeout)
        self.sent: list[bytes] = []
        self.send_error: str | None = None
        self.receipts: dict[str, dict[str, Any]] = {}
        self.head = 100

    async def send_raw_transaction(self, raw: bytes) -> str:
        if self.send_error is not None:
            raise NodeRejected(self.send_error)
        self.sent.append(raw)
        return "0x" + raw.hex()

    async def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        return self.receipts.get(tx_hash)

    async def block_number(self) -> int:
        return self.head


def _hash(kind: AttemptKind, rung: int) -> str:
    return "0x" + f"{kind.value}{rung}".encode().hex().rjust(64, "0")


def _raw(kind: AttemptKind, rung: int) -> bytes:
    return f"raw-{kind.value}-{rung}".encode()


@dataclass
class Case:
    status: TransactionStatus
    row: dict[str, Any] = field(default_factory=dict)
    send_error: str | None = None
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    told: list[str] = field(default_factory=list)  # events recorded before this look
    # What the user would see afterwards:
    want_status: TransactionStatus = S.SUBMITTED
    want_reasons: list[str | None] = field(default_factory=list)  # new events, in order
    want_sent: list[bytes] = field(default_factory=list)
    want_delay: float | None = INTERVAL
    want_row: dict[str, Any] = field(default_factory=dict)


SEND0, CANCEL0 = (AttemptKind.SEND, 0), (AttemptKind.CANCEL, 0)
SENT_AGO = NOW - timedelta(seconds=10)  # the bump interval (60 s) has not passed
MINED = {"submitted_at": SENT_AGO, "block_number": 90, "block_hash": "0x" + "ab" * 32}
BUMP_DUE = NOW - timedelta(seconds=61)
PENDING = {"submitted_at": SENT_AGO}
NO_FUNDS = "insufficient funds for gas * price + value: balance 0"
# A node's message with a line break, a URL with a key, and more than the 300 characters kept.
NOISY = "insufficient funds\nsee https://key@node.example/abc " + "x" * 400
NOISY_WORDS = ("insufficient funds\\x0asee https://node.example/… " + "x" * 400)[:299] + "…"
CONFLICT = (
    "NONCE_CONFLICT: nonce 0 was used by a transaction walletql did not send "
    "(the node said: nonce too low: next nonce 3, tx nonce 0)"
)
OUR_RECEIPT = {
    _hash(*SEND0): {
        "blockNumber": 100,
        "blockHash": "0x" + "cd" * 32,
        "gasUsed": 21_000,
        "status": 1,
        "effectiveGasPrice": 7,
    },
}

CASES = {
    "reorg: the block holding it was replaced, MINED goes back to SUBMITTED": Case(
        S.MINED, row=MINED,
        want_reasons=["REORG: the block holding it was replaced"],
        want_row={"block_number": None, "block_hash": None},
    ),
    "nonce conflict: another transaction took the nonce, it fails in the node's words": Case(
        S.QUEUED, send_error="nonce too low: next nonce 3, tx nonce 0",
        want_status=S.FAILED, want_reasons=[None, CONFLICT], want_delay=None,
        want_row={"error_code": "NONCE_CONFLICT", "error_message": CONFLICT.partition(": ")[2],
                  "tracking": False},
    ),
    "nonce conflict while pending: the node refuses the resend, none of our hashes is mined": Case(
        S.SUBMITTED, row=PENDING, send_error="nonce too low: next nonce 3, tx nonce 0",
        want_status=S.FAILED, want_reasons=[CONFLICT], want_delay=None,
        want_row={"error_code": "NONCE_CONFLICT", "tracking": False},
    ),
    "nonce too low because our own hash was mined: it is ours, no conflict": Case(
        S.QUEUED, send_error="nonce too low", receipts=OUR_RECEIPT,
        want_status=S.MINED, want_reasons=[None, None],
        want_row={"error_code": None, "block_number": 100, "tracking": True},
    ),
    "the node refuses the resend: its words are the error and an event, the look comes again": Case(
        S.SUBMITTED, row=PENDING, send_error=NO_FUNDS,
        want_reasons=[f"REJECTED: {NO_FUNDS}"],
        want_row={"error_code": "REJECTED", "error_message": NO_FUNDS, "tracking": True},
    ),
    "the same refusal at the next look is not told again": Case(
        S.SUBMITTED, row={**PENDING, "error_code": "REJECTED", "error_message": NO_FUNDS},
        told=[f"REJECTED: {NO_FUNDS}"], send_error=NO_FUNDS, want_reasons=[],
        want_row={"error_code": "REJECTED", "error_message": NO_FUNDS},
    ),
    "a node's words are one line, without credentials, at most 300 characters": Case(
        S.SUBMITTED, row=PENDING, send_error=NOISY,
        want_reasons=[f"REJECTED: {NOISY_WORDS}"],
        want_row={"error_code": "REJECTED", "error_message": NOISY_WORDS},
    ),
    "an accepted resend clears the earlier refusal": Case(
        S.SUBMITTED, row={**PENDING, "error_code": "REJECTED", "error_message": NO_FUNDS},
        want_sent=[_raw(*SEND0)], want_row={"error_code": None, "error_message": None},
    ),
    "a look that gets through clears RETRYING": Case(
        S.QUEUED, row={"error_code": "RETRYING", "error_message": "delivery 1 of 5 failed"},
        want_reasons=[None], want_sent=[_raw(*SEND0)], want_delay=0.0,
        want_row={"error_code": None, "error_message": None},
    ),
    "a cancel mined after a refused resend: the final transaction keeps no live error": Case(
        S.SUBMITTED,
        row={**PENDING, "cancel_rung": 0, "cancel_reason": CancelReason.USER,
             "error_code": "REJECTED", "error_message": NO_FUNDS},
        send_error="nonce too low", receipts={_hash(*CANCEL0): OUR_RECEIPT[_hash(*SEND0)]},
        want_status=S.CANCELLED, want_reasons=["USER: the cancel was mined"], want_delay=None,
        want_row={"error_code": None, "error_message": None, "hash": _hash(*CANCEL0)},
    ),
    "a refused fee bump is an event; the rung stays": Case(
        S.SUBMITTED, row={"submitted_at": BUMP_DUE},
        send_error="replacement transaction underpriced",
        want_reasons=["FEE_BUMP_REFUSED: rung 1: replacement transaction underpriced"],
        want_row={"current_rung": 0, "error_code": None},
    ),
    "a refused deadline cancel is an event; the look comes again": Case(
        S.SUBMITTED, row={**PENDING, "deadline_at": NOW}, send_error=NO_FUNDS,
        want_reasons=[f"CANCEL_REFUSED: DEADLINE: {NO_FUNDS}"],
        want_row={"cancel_rung": None, "tracking": True},
    ),
    "just before the deadline: the latest bytes are sent again, no cancel": Case(
        S.SUBMITTED,
        row={"submitted_at": SENT_AGO, "deadline_at": NOW + timedelta(microseconds=1)},
        want_sent=[_raw(*SEND0)], want_row={"cancel_rung": None, "cancel_reason": None},
    ),
    "at the deadline: the cancel is sent": Case(
        S.SUBMITTED, row={"submitted_at": SENT_AGO, "deadline_at": NOW},
        want_reasons=["DEADLINE: cancel sent"], want_sent=[_raw(*CANCEL0)],
        want_row={"cancel_rung": 0, "cancel_reason": "DEADLINE"},
    ),
    "after the deadline: the cancel is sent": Case(
        S.SUBMITTED, row={"submitted_at": SENT_AGO, "deadline_at": NOW - timedelta(seconds=1)},
        want_reasons=["DEADLINE: cancel sent"], want_sent=[_raw(*CANCEL0)],
        want_row={"cancel_rung": 0, "cancel_reason": "DEADLINE"},
    ),
}  # fmt: skip


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


async def _store(units: UnitsOfWork, case: Case) -> uuid.UUID:
    user, wallet, tx_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    address = "0x" + "11" * 20
    row: dict[str, Any] = {
        "deadline_at": NOW + timedelta(seconds=300), "hash": _hash(*SEND0), **case.row,
    }  # fmt: skip
    async with units.begin() as uow:
        uow.session.add(User(id=user, sub="alice"))
        uow.session.add(
            Wallet(
                id=wallet, user_id=user, address=address, ciphertext=b"c", nonce=b"n",
                salt=b"s", kdf="argon2id", kdf_memory_kib=8, kdf_iterations=1, kdf_lanes=1,
                version=1,
            )
        )  # fmt: skip
        await uow.session.flush()
        uow.session.add(
            Transaction(
                id=tx_id, user_id=user, wallet_id=wallet, chain_id=CONFIG.chain_id,
                status=case.status, from_address=address, to_address="0x" + "22" * 20,
                value=1000, data=b"", nonce=0, tx_type=2, gas_limit=21_000,
                max_fee_per_gas=10, max_priority_fee_per_gas=1, next_check_at=NOW, **row,
            )
        )  # fmt: skip
        await uow.session.flush()
        sent_at = row.get("submitted_at")
        for kind in AttemptKind:
            for rung in (0, 1):
                uow.session.add(
                    TransactionAttempt(
                        transaction_id=tx_id, kind=kind, rung=rung, raw=_raw(kind, rung),
                        hash=_hash(kind, rung), max_fee_per_gas=10 + rung,
                        max_priority_fee_per_gas=1 + rung,
                        sent_at=sent_at if (kind, rung) == SEND0 else None,
                    )
                )  # fmt: skip
        tx = await uow.session.get_one(Transaction, tx_id)
        for reason in case.told:
            await record_event(uow, tx, case.status, reason)
    return tx_id


@pytest.mark.parametrize("name", list(CASES))
async def test_one_look_by_the_worker(name: str, engine: AsyncEngine, database_url: str) -> None:
    case = CASES[name]
    units = UnitsOfWork(engine)
    tx_id = await _store(units, case)
    fake = FakeChain(CONFIG, 1.0)
    fake.send_error, fake.receipts = case.send_error, case.receipts
    processor = TransactionProcessor(
        Chains([CONFIG], 1.0, client=lambda config, timeout: fake),
        check_interval=INTERVAL,
        clock=lambda: NOW,
    )
    pushed: list[dict[str, Any]] = []
    listener = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    await listener.add_listener(CHANNEL, lambda *args: pushed.append(json.loads(args[3])))
    try:
        async with units.begin() as uow:
            delay = await processor.process(uow, tx_id)
        async with units.begin() as uow:
            tx = (
                await uow.session.scalars(select(Transaction).where(Transaction.id == tx_id))
            ).one()
            events = list(
                await uow.session.scalars(
                    select(TransactionEvent)
                    .where(TransactionEvent.transaction_id == tx_id)
                    .order_by(TransactionEvent.seq)
                )
            )
        await listener.execute("SELECT 1")  # notifications committed before this arrive first
        await asyncio.sleep(0)
    finally:
        await listener.close()

    assert tx.status is case.want_status
    assert [e.reason for e in events] == case.told + case.want_reasons
    assert [p["reason"] for p in pushed] == case.want_reasons
    assert [p["status"] for p in pushed] == [e.status.value for e in events[len(case.told) :]]
    if case.want_reasons:
        assert pushed[-1]["status"] == case.want_status.value
    assert fake.sent == case.want_sent
    assert delay == case.want_delay
    assert {k: getattr(tx, k) for k in case.want_row} == case.want_row
