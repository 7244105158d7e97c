"""Memory per step of the step-back history for the glyphs network, and how far back the cap reaches.

The glyphs scenario is the classic 784→64 relu→10 softmax network with Adam
and batches of 32. One step of history holds the parameters and Adam's m and v
as they were at the start of the step. For each dtype this prints:

- the bytes per step the history accounts for (what the cap is measured in);
- the bytes per step really retained, measured with tracemalloc as the
  difference between a run whose history keeps every step and one that keeps
  a single step, over the same steps;
  (MB here is 2**20 bytes, as ``--history-mb`` counts them);
- how many steps back fit in the default 256 MB cap, computed and then seen
  by running past it.

    .venv/bin/python bench/bench_history.py [--steps 40]
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc

from backprop_tui.core import Debugger, load_scenario

MB = 1024 * 1024
DEFAULT_CAP_MB = 256.0


def retained_bytes(scenario_name: str, dtype: str, steps: int, history_mb: float) -> int:
    """Bytes allocated and still held after ``steps`` more steps, in a steady run.

    Both readings are taken with tracing on and a few steps in, so the arrays
    of the step in progress are counted in both and cancel.
    """
    dbg = Debugger(load_scenario(scenario_name), dtype=dtype, history_mb=history_mb)
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
        dbg = Debugger(scenario, dtype=dtype)
        dbg.run(10)
        accounted = dbg.history.nbytes / len(dbg.history)
        keep_all = retained_bytes("glyphs", dtype, args.steps, history_mb=DEFAULT_CAP_MB)
        keep_one = retained_bytes("glyphs", dtype, args.steps, history_mb=accounted / MB)
        measured = (keep_all - keep_one) / args.steps
        fits = int(DEFAULT_CAP_MB * MB // accounted)
        dbg = Debugger(scenario, dtype=dtype)
        dbg.run(fits + 50)
        print(
            f"  {dtype}: {accounted / MB:.3f} MB per step of history accounted, "
            f"{measured / MB:.3f} MB measured (ratio {measured / accounted:.3f}); "
            f"the default {DEFAULT_CAP_MB:.0f} MB cap holds {fits} steps back "
            f"(after {fits + 50} steps: {len(dbg.history)} held, "
            f"oldest step {dbg.history.oldest_step}, {dbg.history.nbytes / MB:.1f} MB)"
        )


if __name__ == "__main__":
    main()
