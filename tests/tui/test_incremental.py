"""What the live panes keep between frames gives what reading everything again gives."""

from __future__ import annotations

import math

import pytest
from backprop_tui.core import EpochStats, LogEntry
from backprop_tui.core.records import EpochLog
from backprop_tui.tui.runner import MIN_FPS, UI_SHARE, FramePacer
from backprop_tui.tui.session import LogMerge, ValidationEpochs
from hypothesis import given
from hypothesis import strategies as st


def _reference(*sources: list[LogEntry]) -> list[LogEntry]:
    """The merge written out: take the next line of the source whose next line has the
    lowest step (the earlier source on a tie), until every source is used up."""
    heads = [0] * len(sources)
    out: list[LogEntry] = []
    while True:
        waiting = [
            (src[i].step, k)
            for k, (src, i) in enumerate(zip(sources, heads, strict=True))
            if i < len(src)
        ]
        if not waiting:
            return out
        _, k = min(waiting)
        out.append(sources[k][heads[k]])
        heads[k] += 1


OPS = st.lists(
    st.tuples(
        st.sampled_from(["log", "events", "epochs", "cut", "new epochs", "read"]),
        st.integers(0, 4),  # how far a step moves on (0: the same step) or back (cut)
        st.booleans(),  # a step that goes back (a line at an older step)
    ),
    max_size=60,
)


@given(OPS)
def test_the_merged_log_is_the_merge_written_out(ops: list[tuple[str, int, bool]]) -> None:
    log: list[LogEntry] = []
    events: list[LogEntry] = []
    epochs: list[LogEntry] = []
    merge = LogMerge()
    step = 0
    for what, by, back in ops:
        step = max(0, step - by) if back else step + by
        entry = LogEntry(step, "info", f"{what} {step}")
        if what == "log":
            log.append(entry)
        elif what == "events":
            events.append(entry)
        elif what == "epochs":
            epochs.append(entry)
        elif what == "cut":
            del log[max(len(log) - by, 0) :]
        elif what == "new epochs":  # the epochs' lines are written again after a cut
            epochs = list(epochs[: max(len(epochs) - by, 0)])
        got = merge.merge((log, events, epochs))
        assert [id(e) for e in got] == [id(e) for e in _reference(log, events, epochs)]


def test_a_source_keeps_its_own_order() -> None:
    """Going back logs lower steps after higher ones: they stay in the order they came,
    among lines of other sources in step order (sorting by step reversed them)."""
    epochs = [LogEntry(900, "info", "epoch 9 done")]
    log = [LogEntry(step, "info", f"went back to step {step}") for step in (999, 998, 997)]
    merged = LogMerge().merge((log, [], epochs))
    assert [e.text for e in merged] == [
        "epoch 9 done",
        "went back to step 999",
        "went back to step 998",
        "went back to step 997",
    ]
    assert [e.step for e in sorted(merged, key=lambda e: e.step)] != [e.step for e in merged]


def test_the_merged_log_is_kept_while_lines_only_come_later() -> None:
    log = [LogEntry(i, "info", "x") for i in range(50)]
    merge = LogMerge()
    first = merge.merge((log, [], []))
    log.append(LogEntry(60, "info", "later"))
    assert merge.merge((log, [], [])) is first  # grown, not built again
    assert first[-1].text == "later"


def test_validation_series_and_lines_follow_the_epochs() -> None:
    log, seen = EpochLog(), ValidationEpochs()
    for i in range(30):
        val = {"accuracy": i / 30} if i >= 10 else {}  # a metric measured from epoch 10 on
        log.append(EpochStats(i, 1.0, {"accuracy": 0.5}, 0.5 + i if i % 3 else None, val))
        seen.sync(log)
        epochs = [e for e in log if e.val_loss is not None]
        series = seen.series
        if not epochs:
            assert series == {}
            continue
        assert list(series["val_loss"]) == [e.val_loss for e in epochs]
        if epochs[-1].val_metrics:
            got, expected = (
                list(series["val_accuracy"]),
                [e.val_metrics.get("accuracy", math.nan) for e in epochs],
            )
            assert [repr(v) for v in got] == [repr(v) for v in expected]
        lines = seen.lines(steps_per_epoch=4)
        assert [line.step for line in lines] == [(e.epoch + 1) * 4 for e in epochs]
        assert lines[-1].text.startswith(f"epoch {epochs[-1].epoch + 1} done: loss 1")
    del log[12:]  # going back: everything read again
    seen.sync(log)
    assert len(seen.lines(steps_per_epoch=4)) == len([e for e in log if e.val_loss is not None])


@pytest.mark.parametrize(
    ("rate", "cost", "period"),
    [
        (50.0, 0.030, 0.1),  # slow steps (a big network): the GIL is free while they run
        (5000.0, 0.002, 0.1),  # fast steps, cheap frames: as often as asked
        (5000.0, 0.008, 0.008 / UI_SHARE),  # dearer frames: fewer of them
        (5000.0, 0.200, 1 / MIN_FPS),  # never fewer than MIN_FPS a second
    ],
)
def test_frames_are_paced_by_what_they_cost(rate: float, cost: float, period: float) -> None:
    pacer = FramePacer(fps=10)
    cpu = 0.0
    assert pacer.frame(cpu, rate) == pytest.approx(0.1)  # not timed yet: as often as asked
    for _ in range(40):
        cpu += cost
        got = pacer.frame(cpu, rate)
    assert got == pytest.approx(period, rel=0.01)
    pacer.start()  # the next run of the same session starts at the pace found
    assert pacer.period == pytest.approx(period, rel=0.01)
    assert pacer.frame(cpu + 1.0, rate) == pytest.approx(period, rel=0.01)  # not timed
