"""Peak memory of what users feed in and of long runs (issue: memory that scales).

1. glyphs at n 60000 (28×28): load time and peak (tracemalloc) against the
   data set's own size; target: peak within 2× of it, in seconds.
2. a 100,000-step headless run of xor: memory grown beyond the time-travel
   history's budget (tracemalloc, after the history's own bytes are taken
   off); target: under 5 MB.

Run: .venv/bin/python bench/bench_memory.py [--steps N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

from backprop_tui.core import Debugger, load_scenario

GLYPHS_60K = """
name: glyphs-60k
description: The glyphs at MNIST's size.
seed: 0
data: {generator: glyphs, size: 28, n: 60000}
model:
  inputs: 784
  layers:
    - {name: hidden, type: dense, units: 64, activation: relu}
    - {name: output, type: dense, units: 10, activation: softmax}
loss: categorical_crossentropy
optimizer: {name: adam}
training: {epochs: 1, batch_size: 32}
"""


def glyphs_load() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "g.yaml"
        path.write_text(GLYPHS_60K)
        tracemalloc.start()
        start = time.perf_counter()
        scenario = load_scenario(path)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    data = scenario.data
    size = sum(a.nbytes for a in (data.x_train, data.y_train, data.x_val, data.y_val))
    ratio = peak / size
    verdict = "PASS" if ratio <= 2.0 else "MISS"
    print(f"1. glyphs n 60000: {size / 2**20:.0f} MB of data, loaded in {seconds:.1f} s,")
    print(f"   peak {peak / 2**20:.0f} MB = {ratio:.2f}× the data   target ≤ 2×  {verdict}")


def long_run(steps: int, history_mb: float) -> None:
    dbg = Debugger(load_scenario("xor"), history_mb=history_mb, epochs=steps)
    for _ in range(100):  # the first steps fill caches that stay
        dbg.step("batch")
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    history_before = dbg.history.nbytes
    for _ in range(steps - 100):
        dbg.step("batch")
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    history_grown = dbg.history.nbytes - history_before
    beyond = grown - history_grown
    verdict = "PASS" if beyond < 5 * 2**20 else "MISS"
    print(f"2. {steps:,} headless steps of xor (history budget {history_mb:g} MB):")
    print(
        f"   grew {grown / 2**20:.2f} MB, of which the history {history_grown / 2**20:.2f} MB;"
        f" beyond it {beyond / 2**20:.2f} MB   target < 5 MB  {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--history-mb", type=float, default=8.0)
    args = parser.parse_args()
    glyphs_load()
    long_run(args.steps, args.history_mb)


if __name__ == "__main__":
    main()
