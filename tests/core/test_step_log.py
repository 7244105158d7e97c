"""The step log keeps numbers in columns and reads as a list of StepStats."""

from __future__ import annotations

import gc
import math
import tracemalloc

import numpy as np
import pytest
from backprop_tui.core import Debugger, EpochStats, StepStats, load_scenario
from backprop_tui.core.records import EpochLog, StepLog


def test_it_reads_as_the_list_it_replaces() -> None:
    log, plain = StepLog(), []
    for i in range(200):  # past the first growth of its columns
        metrics = {"accuracy": i / 200} if i % 3 else {}
        stats = StepStats(i + 1, i // 7, 1.0 / (i + 1), metrics)
        log.append(stats)
        plain.append(stats)
    assert len(log) == 200 and log[-1] == plain[-1] and log[5] == plain[5]
    assert log[10:20] == plain[10:20] and list(log) == plain
    del log[150:]
    assert len(log) == 150 and log[-1] == plain[149]
    log.append(plain[0])
    assert log[150] == plain[0]
    with pytest.raises(ValueError, match="newest"):
        del log[3:5]
    with pytest.raises(IndexError):
        log[151]
    assert math.isclose(float(log.losses()[2]), 1 / 3)


def test_a_long_run_keeps_a_few_bytes_a_step() -> None:
    dbg = Debugger(load_scenario("xor"), epochs=3000)
    for _ in range(3000):
        dbg.step("batch")
    assert len(dbg.step_history) == 3000 and dbg.step_history[-1].step == 2999
    assert dbg.step_history.nbytes < 3000 * 64  # StepStats objects held ~290 bytes a step


def test_the_epoch_log_reads_as_the_list_it_replaces() -> None:
    log, plain = EpochLog(), []
    for i in range(150):
        metrics = {"accuracy": i / 4} if i % 5 else {}
        if i >= 40:  # validation figures from some epoch on
            stats = EpochStats(i, 1.0 / (i + 1), metrics, i / 3, {"accuracy": 0.5})
        else:
            stats = EpochStats(i, 1.0 / (i + 1), metrics)
        log.append(stats)
        plain.append(stats)
    assert len(log) == 150 and list(log) == plain and log[-3:] == plain[-3:]
    assert log[10].val_loss is None and log[45].val_metrics == {"accuracy": 0.5}
    del log[30:]
    assert list(log) == plain[:30] and log[-1].val_loss is None
    log.append(plain[100])  # an epoch number out of turn is kept as it is
    assert log[30] == plain[100] and log[29] == plain[29]


def test_no_figure_is_rounded_or_lost() -> None:
    """Columns start narrow (int32, float32) and widen, losslessly, when a value needs it."""
    log = StepLog()
    figures = [0.5, 0.1, math.nan, math.inf, -0.0, 1e300, 3.0]
    for i, value in enumerate(figures):
        log.append(
            StepStats(i * 2**40, i, value, {"accuracy": value, "odd": value} if i % 2 else {})
        )
    for i, value in enumerate(figures):
        got = log[i]
        assert got.step == i * 2**40 and got.epoch == i
        assert got.loss == value or (math.isnan(got.loss) and math.isnan(value))
        assert set(got.metrics) == ({"accuracy", "odd"} if i % 2 else set())
    assert math.isnan(log[2].loss) and log[5].metrics["accuracy"] == 1e300
    assert log.losses().dtype == np.float64 and log.losses()[1] == 0.1


def _traced_growth(dbg: Debugger, steps: int) -> int:
    """Bytes still held after ``steps`` more steps, as tracemalloc counts them."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(steps):
            dbg.step("batch")
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def _growth_beyond_history(steps: int, history_mb: float) -> int:
    dbg = Debugger(load_scenario("xor"), history_mb=history_mb, epochs=steps + 200)
    for _ in range(200):  # the first steps fill caches that stay
        dbg.step("batch")
    history_before = dbg.history.nbytes
    grown = _traced_growth(dbg, steps)
    return grown - (dbg.history.nbytes - history_before)


def test_a_long_run_grows_by_a_few_bytes_a_step_beyond_its_history() -> None:
    """xor ends an epoch every step: each used to keep an EpochStats object (~300 B),
    and the history counted a third of what its snapshots hold (~750 B a step in all)."""
    steps = 2500
    beyond = _growth_beyond_history(steps, history_mb=8)
    assert beyond < 100 * steps, f"{beyond / steps:.0f} bytes a step beyond the history"


def test_the_history_budget_holds_in_memory_measured() -> None:
    """A full history costs what it says it does: the run grows by its cap and the
    figures, no more (snapshots of a small network are mostly Python objects, which
    the cap used to leave out)."""
    steps = 2500
    dbg = Debugger(load_scenario("xor"), history_mb=0.05, epochs=steps)  # full after ~200 steps
    grown = _traced_growth(dbg, steps)
    cap = dbg.history.cap_bytes
    assert dbg.history.nbytes <= cap
    assert grown < cap + 100 * steps, f"grew {grown} bytes with a {cap}-byte history"


def test_a_snapshot_counts_what_holding_it_costs() -> None:
    """The history's bytes are what dropping its snapshots frees (tracemalloc), give or
    take a tenth: for a small network, the dicts and array objects around the numbers
    are most of it, and the cap counted only the numbers and 512 bytes."""
    dbg = Debugger(load_scenario("xor"), history_mb=64, epochs=2000, keyframe_every=8)
    tracemalloc.start()
    try:
        for _ in range(2000):
            dbg.step("batch")
        history = dbg.history
        count, counted = len(history), history.nbytes
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        while history.pop() is not None:
            pass
        gc.collect()
        freed = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert count == 250
    assert 0.9 * counted <= -freed <= 1.1 * counted, (counted / count, -freed / count)
