"""Time travel: back() returns to the start of an earlier step, and stepping again is bit for bit.

The scenario shuffles 40 samples in batches of 16 — three steps an epoch, the
last one short — so runs cross epoch boundaries, reshuffles and partial batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import Debugger, load_scenario

OPTIMIZERS = {
    "sgd_momentum": "{name: sgd, learning_rate: 0.1, momentum: 0.9}",
    "sgd_nesterov": "{name: sgd, learning_rate: 0.05, momentum: 0.8, nesterov: true}",
    "adam": "{name: adam, learning_rate: 0.01}",
    "rmsprop": "{name: rmsprop, learning_rate: 0.01, momentum: 0.5, centered: true}",
}


def _scenario(tmp_path: Path, optimizer: str) -> Any:
    path = tmp_path / "travel.yaml"
    path.write_text(
        f"""
name: travel
seed: 5
data: {{generator: moons, n: 50, noise: 0.2, validation_split: 0.2}}
model:
  inputs: 2
  layers:
    - {{name: hidden, units: 6, activation: tanh}}
    - {{name: output, units: 1, activation: sigmoid}}
loss: binary_crossentropy
optimizer: {optimizer}
metrics: [accuracy]
training: {{epochs: 100, batch_size: 16, shuffle: true}}
"""
    )
    return load_scenario(path)


@dataclass(frozen=True)
class State:
    """Everything a step leaves behind, as raw bytes so that equality is bit for bit."""

    position: tuple[int, int, int]
    params: dict[str, bytes]
    grads: dict[str, bytes]
    loss: float | None
    metrics: tuple[tuple[str, float], ...]
    opt_step: int
    opt_slots: dict[str, bytes]
    steps: tuple[tuple[int, int, float], ...]
    epochs: tuple[tuple[tuple[str, float], ...], ...]


def _state(dbg: Debugger) -> State:
    slots = {
        f"{param}.{slot}": np.asarray(value).tobytes()
        for param, by_slot in dbg.opt_state.slots.items()
        for slot, value in by_slot.items()
    }
    return State(
        position=(dbg.step_index, dbg.epoch, dbg.batch_in_epoch),
        params={k: v.tobytes() for k, v in dbg.params.items()},
        grads={k: v.tobytes() for k, v in dbg.grads.items()},
        loss=dbg.loss,
        metrics=tuple(sorted(dbg.metrics.items())),
        opt_step=dbg.opt_state.step,
        opt_slots=slots,
        steps=tuple((s.step, s.epoch, s.loss) for s in dbg.step_history),
        epochs=tuple(tuple(sorted(e.as_dict().items())) for e in dbg.epoch_history),
    )


def _at_start(state: State) -> State:
    """A step's start as back() leaves it: no loss, gradients or metrics of a step yet."""
    return State(
        state.position,
        state.params,
        {},
        None,
        (),
        state.opt_step,
        state.opt_slots,
        state.steps,
        state.epochs,
    )


def _forward(dbg: Debugger, steps: int) -> list[State]:
    states = []
    for _ in range(steps):
        dbg.step("batch")
        states.append(_state(dbg))
    return states


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_hundred_forward_hundred_back_forward_again(tmp_path: Path, optimizer: str) -> None:
    dbg = Debugger(_scenario(tmp_path, OPTIMIZERS[optimizer]))
    assert dbg.scenario.steps_per_epoch() == 3
    assert dbg.opt_state.slots["hidden.kernel"] or optimizer == "sgd"  # the state is exercised
    start = _state(dbg)
    dbg.run(5)  # begin mid-epoch (step 5 of 3-step epochs)
    origin = _state(dbg)
    first = _forward(dbg, 100)
    assert dbg.epoch == 35 and dbg.batch_in_epoch == 0
    assert first[-1].params != origin.params

    starts = [_at_start(origin)] + [_at_start(s) for s in first[:-1]]
    for expected in reversed(starts):
        assert dbg.back()
        assert _state(dbg) == expected
        assert dbg.phase == "update"
    again = _forward(dbg, 100)
    assert again == first

    # all the way back to the start, and no further
    for _ in range(105):
        assert dbg.back()
    assert _state(dbg) == _at_start(start)
    assert not dbg.back()
    assert _forward(dbg, 105)[-1] == first[-1]


def test_going_back_part_way_across_epochs(tmp_path: Path) -> None:
    dbg = Debugger(_scenario(tmp_path, OPTIMIZERS["adam"]))
    first = _forward(dbg, 40)
    for _ in range(17):  # to the middle of epoch 7
        assert dbg.back()
    assert dbg.step_index == 23 and (dbg.epoch, dbg.batch_in_epoch) == (7, 2)
    assert len(dbg.step_history) == 23 and len(dbg.epoch_history) == 7
    assert _forward(dbg, 17) == first[23:]
    # back and forth in small hops
    for hop in (1, 2, 3, 5):
        for _ in range(hop):
            dbg.back()
        assert _forward(dbg, hop) == first[40 - hop :]


def test_back_mid_step_returns_to_the_start_of_that_step(tmp_path: Path) -> None:
    dbg = Debugger(_scenario(tmp_path, OPTIMIZERS["sgd_momentum"]))
    dbg.run(7)
    at_start = _state(dbg)
    after = _forward(Debugger(_scenario(tmp_path, OPTIMIZERS["sgd_momentum"])), 8)[-1]
    for steps in (1, 2, 4, 6):  # input, a forward layer, loss, backward layers
        for _ in range(steps):
            dbg.step("layer")
        assert dbg.phase != "update"
        assert dbg.back()
        assert dbg.phase == "update" and dbg.step_index == 7
        assert _state(dbg) == _at_start(at_start)
        assert dbg.records == [] and dbg.record_of("update") is None
        assert dbg.update_rows("hidden.kernel") == []
    dbg.step("batch")
    assert _state(dbg) == after
    # mid-step, then back twice: the start of the step before
    dbg.step("phase")
    assert dbg.back() and dbg.back()
    assert dbg.step_index == 7


def test_the_memory_cap_drops_the_oldest_steps(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, OPTIMIZERS["adam"])
    unbounded = Debugger(scenario)
    unbounded.step("batch")
    per_snapshot = unbounded.history.nbytes
    assert per_snapshot > 3 * 8 * scenario.param_count  # params, m and v, in float64
    every, cap_snapshots = 4, 5
    dbg = Debugger(
        scenario,
        history_mb=(cap_snapshots + 0.5) * per_snapshot / (1024 * 1024),
        keyframe_every=every,
    )
    first = _forward(dbg, 40)
    assert len(dbg.history) == cap_snapshots  # snapshots at steps 0, 4, … 36, oldest dropped
    assert dbg.history.nbytes <= dbg.history.cap_bytes
    oldest = 40 - every * cap_snapshots
    assert dbg.history.oldest_step == dbg.oldest_reachable_step == oldest
    for _ in range(40 - oldest):
        assert dbg.back()
    assert dbg.step_index == oldest
    assert _state(dbg) == _at_start(first[oldest - 1])
    assert not dbg.back(), "the history held nothing further back"
    assert dbg.step_index == oldest  # a refused back() changes nothing
    assert _forward(dbg, 40 - oldest) == first[oldest:]


def test_steps_between_snapshots_are_recomputed_exactly(tmp_path: Path) -> None:
    dbg = Debugger(_scenario(tmp_path, OPTIMIZERS["adam"]), keyframe_every=8)
    first = _forward(dbg, 21)
    assert len(dbg.history) == 3  # steps 0, 8 and 16 are kept; the rest is recomputed
    for target in (20, 17, 16, 15, 9, 1):
        while dbg.step_index > target:
            assert dbg.back()
        assert _state(dbg) == _at_start(first[target - 1])
    assert [e.kind for e in dbg.log].count("warning") == 0  # recomputing logs nothing new
    assert _forward(dbg, 20) == first[1:]


def test_set_weight_then_back_restores_the_old_value(tmp_path: Path) -> None:
    dbg = Debugger(_scenario(tmp_path, OPTIMIZERS["adam"]))
    dbg.run(4)
    before = _state(dbg)
    old = dbg.set_weight("hidden.kernel", (1, 2), 3.5)
    assert dbg.params["hidden.kernel"][1, 2] == 3.5
    assert float(np.frombuffer(before.params["hidden.kernel"])[1 * 6 + 2]) == old
    assert any(e.kind == "edit" and "hidden.kernel[1, 2]" in e.text for e in dbg.log)
    assert dbg.back()
    assert dbg.params["hidden.kernel"][1, 2] == old
    assert _state(dbg) == before  # the edit alone was undone, not the step before it
    assert "undid" in dbg.log[-1].text and "hidden.kernel[1, 2]" in dbg.log[-1].text
    assert dbg.back() and dbg.step_index == 3  # then whole steps, as usual


def test_an_edit_is_kept_by_the_steps_after_it_and_undone_past_them(tmp_path: Path) -> None:
    dbg = Debugger(_scenario(tmp_path, OPTIMIZERS["sgd_momentum"]))
    dbg.run(4)
    untouched = _forward(Debugger(_scenario(tmp_path, OPTIMIZERS["sgd_momentum"])), 7)
    dbg.set_weight("output.bias", (0,), -2.0)
    dbg.set_weight("output.bias", (0,), 1.0)
    edited = _forward(dbg, 3)
    assert edited[-1].params != untouched[-1].params  # the edit changed what followed
    dbg.back()
    dbg.back()
    assert _forward(dbg, 2) == edited[1:]  # stepping again keeps the edit
    for _ in range(3):
        dbg.back()
    assert dbg.step_index == 4 and dbg.params["output.bias"][0] == 1.0
    assert dbg.back() and dbg.params["output.bias"][0] == -2.0
    assert dbg.back()
    assert dbg.params["output.bias"].tobytes() == untouched[3].params["output.bias"]
    assert _forward(dbg, 3) == untouched[4:]


def test_an_edit_mid_step_is_undone_with_its_step(tmp_path: Path) -> None:
    dbg = Debugger(_scenario(tmp_path, OPTIMIZERS["adam"]))
    dbg.run(2)
    before = _state(dbg)
    for _ in range(4):
        dbg.step("phase")  # through the backward pass
    old = dbg.set_weight("hidden.bias", (0,), 9.0)
    dbg.step("phase")  # the update lands on the edited weight
    assert dbg.params["hidden.bias"][0] != old
    assert dbg.back()  # the edit was not between steps: going back undoes the whole step
    assert dbg.step_index == 2 and _state(dbg) == _at_start(before)


class _Clock:
    """A stand-in for the time-travel module's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _snapshot_steps(dbg: Debugger) -> list[int]:
    return [snap.step_index for snap in dbg.history._snaps]


def test_snapshots_follow_the_time_the_steps_take(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default snapshots stand 8 steps apart while steps are slow, further apart
    while they are fast (until the steps since the last one took the replay budget),
    and the time between steps, when the user reads the screen, does not count."""
    from backprop_tui.core.run import timetravel

    clock = _Clock()
    monkeypatch.setattr(timetravel, "perf_counter", clock)
    budget = timetravel.REPLAY_BUDGET_S

    slow = Debugger(_scenario(tmp_path, OPTIMIZERS["adam"]))
    slow.listeners.append(lambda run: setattr(clock, "now", clock.now + budget / 4))
    _forward(slow, 30)  # each step takes 7 phases · budget/4: more than the budget
    assert _snapshot_steps(slow) == [0, 8, 16, 24]

    fast = Debugger(_scenario(tmp_path, OPTIMIZERS["adam"]))
    per_step = budget / 20
    fast.listeners.append(lambda run: setattr(clock, "now", clock.now + per_step / 7))
    first = _forward(fast, 60)
    steps = _snapshot_steps(fast)
    assert steps[0] == 0 and len(steps) == 3, steps
    assert all(19 <= b - a <= 21 for a, b in pairwise(steps)), steps
    while fast.step_index > 1:  # recomputed from snapshots 20 steps apart, bit for bit
        assert fast.back()
        assert _state(fast) == _at_start(first[fast.step_index - 1])

    idle = Debugger(_scenario(tmp_path, OPTIMIZERS["adam"]))
    for _ in range(40):
        idle.step("batch")
        clock.now += 60.0  # a minute reading the screen after each step
    assert _snapshot_steps(idle) == [0], "time between steps counted as stepping"


def test_an_explicit_spacing_is_kept(tmp_path: Path) -> None:
    dbg = Debugger(_scenario(tmp_path, OPTIMIZERS["adam"]), keyframe_every=5)
    _forward(dbg, 23)
    assert _snapshot_steps(dbg) == [0, 5, 10, 15, 20]
