"""The fan-out holds the cyclic garbage collector off while it writes, but never for good."""

from __future__ import annotations

import gc
import time

import pytest

import walletql.fanout as fanout


def test_the_collector_is_held_during_a_drain_and_back_after_it() -> None:
    assert gc.isenabled()
    fanout._hold_gc()
    fanout._hold_gc()  # a second, overlapping drain
    assert not gc.isenabled()
    fanout._release_gc()
    assert not gc.isenabled()
    fanout._release_gc()
    assert gc.isenabled()


def test_overlapping_drains_past_the_limit_collect_the_young_generations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    collected: list[int] = []
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(gc, "collect", lambda generation=2: collected.append(generation))
    try:
        fanout._hold_gc()
        now[0] += fanout._GC_HOLD_LIMIT / 2
        fanout._hold_gc()
        assert collected == []  # within the limit: nothing runs
        fanout._release_gc()
        now[0] += fanout._GC_HOLD_LIMIT  # the first hold is now past the limit
        fanout._hold_gc()
        assert collected == [1]  # young generations only
        now[0] += fanout._GC_HOLD_LIMIT / 2
        fanout._hold_gc()
        assert collected == [1]  # the clock started again
        fanout._release_gc()
        fanout._release_gc()
    finally:
        while fanout._gc_holds:
            fanout._release_gc()
    assert gc.isenabled()
