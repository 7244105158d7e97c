"""What one ``Debugger.step("batch")`` costs over a plain NumPy training step.

The network is the glyphs one: 784 → Dense(64, relu) → Dense(10, softmax),
categorical cross-entropy, Adam, batch 32, with accuracy as its metric. The
plain step, written out below, does the same arithmetic and nothing else:
gather the batch, forward, a log-sum-exp softmax cross-entropy, the batch's
accuracy, backward, and Keras' Adam update. It starts from the debugger's
weights and visits the same batches, so both do identical work.

The two are timed step by step in alternating blocks within one run, by the
wall clock and by the CPU time of the main thread, and the ratios of the
medians are printed:

    .venv/bin/python bench/bench_engine.py [--steps 600] [--block 25] [--profile]
        [--blas-threads 1|N|default]

BLAS runs on one thread unless told otherwise: at these sizes (32×784 by
784×64) threads save little, and on a busy machine waking them can take
milliseconds, which swamps both sides. ``--blas-threads default`` leaves the
environment as it is.

Target: the debugger's step at most 1.5× the plain step, while it keeps every
intermediate (z, a, dL/da, dL/dz, gradients, Adam's terms) for the app.
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from backprop_tui.core import Debugger, Scenario
from backprop_tui.core.run.debugger import epoch_order
from backprop_tui.core.spec.scenario import parse_scenario
from backprop_tui.core.spec.yamlio import load_yaml
from backprop_tui.core.system.allocator import keep_freed_memory

TARGET_RATIO = 1.5
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# The bundled glyphs network, without the validation split: validation runs once
# an epoch, not once a step, and the steady step is what is measured here.
GLYPHS = """
name: bench-glyphs
seed: 0
data: {generator: glyphs, size: 28, n: 2000, noise: 0.1}
model:
  inputs: 784
  layers:
    - {name: hidden, units: 64, activation: relu, kernel_initializer: he_uniform}
    - {name: output, units: 10, activation: softmax}
loss: categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.001}
metrics: [accuracy]
training: {epochs: 1000, batch_size: 32, shuffle: true}
"""

Array = np.ndarray[Any, np.dtype[np.float64]]


def glyphs_scenario() -> Scenario:
    return parse_scenario(load_yaml(GLYPHS, "<bench>"), Path.cwd())


class PlainStep:
    """A textbook NumPy training step of the same network, from the same weights and batches."""

    def __init__(self, scenario: Scenario, params: dict[str, Array]) -> None:
        self.scenario = scenario
        self.x = scenario.data.x_train
        self.y = scenario.data.y_train
        self.batch = scenario.training.batch_size
        self.w1 = params["hidden.kernel"].copy()
        self.b1 = params["hidden.bias"].copy()
        self.w2 = params["output.kernel"].copy()
        self.b2 = params["output.bias"].copy()
        opt = scenario.optimizer.options
        self.lr = float(opt["learning_rate"])
        self.beta_1, self.beta_2 = float(opt["beta_1"]), float(opt["beta_2"])
        self.eps = float(opt["epsilon"])
        self.m = [np.zeros_like(p) for p in (self.w1, self.b1, self.w2, self.b2)]
        self.v = [np.zeros_like(p) for p in (self.w1, self.b1, self.w2, self.b2)]
        self.t = 0
        self.epoch = 0
        self.position = 0
        self.order = epoch_order(scenario, 0)
        self.loss = math.nan
        self.accuracy = math.nan

    def step(self) -> None:
        # the batch
        indices = self.order[self.position : self.position + self.batch]
        x, y = self.x[indices], self.y[indices]
        n = len(indices)
        # forward
        z1 = x @ self.w1 + self.b1
        a1 = np.maximum(z1, 0.0)
        z2 = a1 @ self.w2 + self.b2
        shifted = z2 - z2.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        p = exp / total
        # loss: sum over classes, mean over the batch; and accuracy
        self.loss = float(np.mean(-(y * (shifted - np.log(total))).sum(axis=1)))
        self.accuracy = float(np.mean(p.argmax(axis=1) == y.argmax(axis=1)))
        # backward
        dz2 = (p - y) / n
        dw2 = a1.T @ dz2
        db2 = dz2.sum(axis=0)
        da1 = dz2 @ self.w2.T
        dz1 = da1 * (z1 > 0)
        dw1 = x.T @ dz1
        db1 = dz1.sum(axis=0)
        # Keras' Adam
        self.t += 1
        alpha = self.lr * math.sqrt(1 - self.beta_2**self.t) / (1 - self.beta_1**self.t)
        params = [self.w1, self.b1, self.w2, self.b2]
        for i, g in enumerate((dw1, db1, dw2, db2)):
            self.m[i] = self.m[i] + (g - self.m[i]) * (1 - self.beta_1)
            self.v[i] = self.v[i] + (g * g - self.v[i]) * (1 - self.beta_2)
            params[i] = params[i] - alpha * self.m[i] / (np.sqrt(self.v[i]) + self.eps)
        self.w1, self.b1, self.w2, self.b2 = params
        # the next batch, reshuffled each epoch
        self.position += self.batch
        if self.position >= len(self.order):
            self.epoch += 1
            self.position = 0
            self.order = epoch_order(self.scenario, self.epoch)


def timed(step: Any, count: int, wall: list[float], cpu: list[float]) -> None:
    for _ in range(count):
        start, start_cpu = time.perf_counter(), time.thread_time()
        step()
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)


def use_blas_threads(threads: str) -> None:
    """Rerun this script with BLAS limited to ``threads`` (it reads the setting at start-up)."""
    if threads == "default" or all(os.environ.get(v) == threads for v in BLAS_THREAD_VARIABLES):
        return
    os.environ.update(dict.fromkeys(BLAS_THREAD_VARIABLES, threads))
    os.execv(sys.executable, [sys.executable, *sys.argv])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="timed steps of each kind")
    parser.add_argument("--block", type=int, default=25, help="steps per alternating block")
    parser.add_argument("--profile", action="store_true", help="cProfile the debugger's steps")
    parser.add_argument(
        "--blas-threads", default="1", help="BLAS threads: a number, or 'default' (as set)"
    )
    args = parser.parse_args()
    # As the command line does; both sides of the comparison run under it.
    print(f"allocator tuned (as backprop-tui runs): {keep_freed_memory()}")
    use_blas_threads(args.blas_threads)

    scenario = glyphs_scenario()
    dbg = Debugger(scenario, dtype="float64")
    plain = PlainStep(scenario, dbg.params)

    # both sides agree before anything is timed: same loss, same weights after a step
    for _ in range(3):
        dbg.step("batch")
        plain.step()
        assert dbg.loss is not None and math.isclose(dbg.loss, plain.loss, rel_tol=1e-12)
        assert dbg.metrics["accuracy"] == plain.accuracy
    np.testing.assert_allclose(dbg.params["hidden.kernel"], plain.w1, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dbg.params["output.bias"], plain.b2, rtol=1e-10, atol=1e-13)

    def debugger_step() -> None:
        dbg.step("batch")

    debugger_wall: list[float] = []
    debugger_cpu: list[float] = []
    plain_wall: list[float] = []
    plain_cpu: list[float] = []
    timed(debugger_step, 20, [], [])  # warm-up
    timed(plain.step, 20, [], [])
    while len(debugger_wall) < args.steps:
        timed(debugger_step, args.block, debugger_wall, debugger_cpu)
        timed(plain.step, args.block, plain_wall, plain_cpu)

    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print("glyphs 784-64-10 relu/softmax, adam, categorical_crossentropy, batch 32, float64")
    print(
        f"  {len(debugger_wall)} steps each, alternating blocks of {args.block}; BLAS threads: {threads}"
    )
    print(f"  {'':24}{'wall median':>14}{'cpu median':>14}")
    for label, wall, cpu in (
        ("Debugger.step('batch')", debugger_wall, debugger_cpu),
        ("plain NumPy step", plain_wall, plain_cpu),
    ):
        print(
            f"  {label:24}{statistics.median(wall) * 1e6:11.1f} µs"
            f"{statistics.median(cpu) * 1e6:11.1f} µs"
        )
    ratio = statistics.median(debugger_wall) / statistics.median(plain_wall)
    cpu_ratio = statistics.median(debugger_cpu) / statistics.median(plain_cpu)
    verdict = "within" if ratio <= TARGET_RATIO else "over"
    print(f"  ratio {ratio:.2f}× wall, {cpu_ratio:.2f}× cpu ({verdict} the {TARGET_RATIO}× target)")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        timed(debugger_step, args.steps, [], [])
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
