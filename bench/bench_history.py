"""Memory per step of the step-back history for the glyphs network, and how far back the cap reaches.

The glyphs scenario is the classic 784→64 relu→10 softmax network with Adam
and batches of 32. The history keeps a snapshot (the parameters and Adam's m
and v at the start of a step) at least 8 steps apart, further apart while
steps are fast (core/run/timetravel.py), and recomputes the steps between.
For each dtype this prints:

- how far apart the snapshots stood while stepping on at full speed;
- the bytes one snapshot accounts for (what the cap is measured in) and so
  the bytes per step of history;
- the bytes per step really retained, measured with tracemalloc as the
  difference between a run whose history keeps everything and one that keeps
  a single snapshot, over the same steps (MB here is 2**20 bytes, as
  ``--history-mb`` counts them);
- how many steps back fit in the default 256 MB cap, computed and then seen
  by running past it;
- the time of one ``back()``, which recomputes the steps since the nearest snapshot.

    .venv/bin/python bench/bench_history.py [--steps 40]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import time
import tracemalloc

from backprop_tui.core import Debugger, load_scenario

MB = 1024 * 1024
DEFAULT_CAP_MB = 256.0
EPOCHS = 10_000  # the scenario's 10 would end the run before the cap is reached


def retained_bytes(dtype: str, steps: int, history_mb: float, every: int) -> int:
    """Bytes allocated and still held after ``steps`` more steps, in a steady run
    with a snapshot every ``every`` steps (tracing slows the steps, and so would
    space the snapshots closer than a run at full speed does).

    Both readings are taken with tracing on and a few steps in, so the arrays
    of the step in progress are counted in both and cancel.
    """
    dbg = Debugger(
        load_scenario("glyphs"),
        dtype=dtype,
        history_mb=history_mb,
        keyframe_every=every,
        epochs=EPOCHS,
    )
    tracemalloc.start()
    try:
        dbg.run(5)
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        dbg.run(steps)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="steps measured with tracemalloc")
    args = parser.parse_args()
    scenario = load_scenario("glyphs")
    shapes = " → ".join(
        [str(scenario.inputs)] + [f"{s.units} {s.activation}" for s in scenario.layers]
    )
    print(
        f"glyphs: {shapes}, {scenario.optimizer.name}, batch {scenario.training.batch_size}, "
        f"{scenario.param_count:,} parameters"
    )
    for dtype in ("float64", "float32"):
        dbg = Debugger(scenario, dtype=dtype, epochs=EPOCHS)
        dbg.run(600)
        steps = [snap.step_index for snap in dbg.history._snaps]
        every = statistics.median(b - a for a, b in itertools.pairwise(steps))
        per_snapshot = dbg.history.nbytes / len(dbg.history)
        accounted = per_snapshot / every
        traced = max(args.steps, 10 * round(every))
        keep_all = retained_bytes(dtype, traced, DEFAULT_CAP_MB, round(every))
        keep_one = retained_bytes(dtype, traced, per_snapshot / MB, round(every))
        measured = (keep_all - keep_one) / traced
        fits = int(DEFAULT_CAP_MB * MB // per_snapshot * every)
        dbg = Debugger(scenario, dtype=dtype, epochs=EPOCHS)
        dbg.run(fits + 50)
        reach = dbg.step_index - (dbg.oldest_reachable_step or 0)
        times = []
        for _ in range(2 * round(every)):
            start = time.perf_counter()
            dbg.back()
            times.append(time.perf_counter() - start)
        print(
            f"  {dtype}: a snapshot every {every:g} steps, {per_snapshot / MB:.3f} MB each: "
            f"{accounted / MB:.3f} MB per step of history accounted, {measured / MB:.3f} MB "
            f"measured (ratio {measured / accounted:.2f}); the default {DEFAULT_CAP_MB:.0f} MB "
            f"cap holds {fits} steps back (after {fits + 50} steps: {reach} steps reachable, "
            f"{dbg.history.nbytes / MB:.1f} MB); back() takes {statistics.median(times) * 1e3:.2f} ms "
            f"median, {max(times) * 1e3:.2f} ms at most"
        )


if __name__ == "__main__":
    main()
