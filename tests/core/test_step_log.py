"""The step log keeps numbers in columns and reads as a list of StepStats."""

from __future__ import annotations

import math

import pytest
from backprop_tui.core import Debugger, StepStats, load_scenario
from backprop_tui.core.records import StepLog


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
