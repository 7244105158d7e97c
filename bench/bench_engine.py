"""The engine's figures, measured in one run, quiet and with one competing CPU-bound process.

1. What one ``Debugger.step("batch")`` costs over a plain NumPy training step,
   on the seed network: 784 → Dense(64, relu) → Dense(10, softmax), categorical
   cross-entropy, Adam, batch 32, accuracy as its metric. The plain step,
   written out below, does the same arithmetic and nothing else (gather the
   batch, forward, a log-sum-exp softmax cross-entropy, the batch's accuracy,
   backward, Keras' Adam) from the debugger's weights over the same batches.
   Both are timed in alternating blocks, by the wall clock and by the CPU time
   of the main thread. Target: at most 1.3×.

2. A step of 784→512→512→10 (batch 32) on a quiet machine and with one other
   process spinning a core, in three processes that differ only in their BLAS
   threads: the thread count the command line chooses (core/system/threads.py),
   one thread forced with ``OPENBLAS_NUM_THREADS=1``, and OpenBLAS's default
   (what ran before the choice existed). They take turns five steps at a time,
   so a change in the machine's load hurts all three alike. On a shared machine
   the load of others comes on top of the bench's own competing process: the
   load average printed beside the figures says how quiet "quiet" was. Targets with the
   competing process: the chosen threads within 2.5× of their quiet time, and
   within 1.25× of one thread forced — threads never cost more than they bring.

3. How long refusing an alias bomb takes (the billion-laughs scenario of
   tests/core/test_scenario_errors.py). Target: under 2 s.

    .venv/bin/python bench/bench_engine.py [--quick] [--profile] [--threads policy|default|N]

``--threads`` sets the threads of part 1 (both sides run under it): ``policy``,
the default, is what ``backprop-tui`` chooses; ``default`` leaves OpenBLAS as it
starts. Part 2 always times all three. ``--quick`` takes well under a minute.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import numpy as np
from backprop_tui.core import Debugger, Scenario, ScenarioError, load_scenario
from backprop_tui.core.run.debugger import epoch_order
from backprop_tui.core.spec.scenario import parse_scenario
from backprop_tui.core.spec.yamlio import load_yaml
from backprop_tui.core.system.allocator import keep_freed_memory
from backprop_tui.core.system.threads import apply_threads, configure_threads
from loadgen import Report, competing_process, machine

SEED_TARGET = 1.3  # Debugger.step over the plain step, seed network
BUSY_OVER_QUIET = 2.5  # chosen threads, busy over quiet
OVER_ONE_THREAD = 1.25  # chosen threads over one thread forced, busy
BOMB_TARGET_S = 2.0
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

BIG = """
name: bench-big
seed: 0
data: {generator: glyphs, size: 28, n: 640}
model:
  inputs: 784
  layers:
    - {name: hidden1, units: 512, activation: relu, kernel_initializer: he_uniform}
    - {name: hidden2, units: 512, activation: relu, kernel_initializer: he_uniform}
    - {name: output, units: 10, activation: softmax}
loss: categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.001}
metrics: [accuracy]
training: {epochs: 100000, batch_size: 32, shuffle: true}
"""

# The alias bomb of tests/core/test_scenario_errors.py: 9**9 values if expanded.
BOMB = "\n".join(
    [
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)

Array = np.ndarray[Any, np.dtype[np.float64]]


def scenario_of(text: str) -> Scenario:
    return parse_scenario(load_yaml(text, "<bench>"), Path.cwd())


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


def set_threads(threads: str) -> str:
    """Part 1's threads, set in this process; says what they are."""
    if threads == "policy":
        choice = configure_threads()
        return f"{choice.threads} ({choice.reason})"
    if threads == "default":
        return "OpenBLAS's default"
    apply_threads(int(threads))
    return threads


# ------------------------------------------------------------ 1. seed network
def seed_network(report: Report, steps: int, block: int, profile: bool) -> None:
    scenario = scenario_of(GLYPHS)
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
    while len(debugger_wall) < steps:
        timed(debugger_step, block, debugger_wall, debugger_cpu)
        timed(plain.step, block, plain_wall, plain_cpu)

    print("1. seed network 784-64-10 relu/softmax, adam, batch 32, float64")
    print(f"   {len(debugger_wall)} steps each, alternating blocks of {block}")
    print(f"   {'':24}{'wall median':>14}{'cpu median':>14}")
    for label, wall, cpu in (
        ("Debugger.step('batch')", debugger_wall, debugger_cpu),
        ("plain NumPy step", plain_wall, plain_cpu),
    ):
        print(
            f"   {label:24}{statistics.median(wall) * 1e6:11.1f} µs"
            f"{statistics.median(cpu) * 1e6:11.1f} µs"
        )
    ratio = statistics.median(debugger_wall) / statistics.median(plain_wall)
    cpu_ratio = statistics.median(debugger_cpu) / statistics.median(plain_cpu)
    verdict = report.at_most("seed_step_over_plain", ratio, SEED_TARGET)
    report.figure("seed_step_over_plain_cpu", cpu_ratio)
    print(
        f"   Debugger.step over the plain step: {ratio:.2f}× wall, {cpu_ratio:.2f}× cpu"
        f"   target ≤ {SEED_TARGET}×  {verdict}"
    )

    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        timed(debugger_step, steps, [], [])
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


# ------------------------------------------------- 2. the big network, busy
MODES = {
    "chosen": "the threads backprop-tui chooses",
    "one": "OPENBLAS_NUM_THREADS=1 forced",
    "default": "OpenBLAS's default threads",
}


def worker(mode: str) -> None:
    """One side of part 2: steps the big network in blocks the parent asks for on stdin."""
    keep_freed_memory()
    if mode == "chosen":
        configure_threads()
    from threadpoolctl import threadpool_info

    pools = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    dbg = Debugger(scenario_of(BIG), dtype="float64")
    for _ in range(20):
        dbg.step("batch")
    print(json.dumps({"blas_threads": pools}), flush=True)
    for line in sys.stdin:
        times = []
        for _ in range(int(line)):
            start = time.perf_counter()
            dbg.step("batch")
            times.append(time.perf_counter() - start)
        print(json.dumps(times), flush=True)


class Worker:
    def __init__(self, mode: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES}
        env.pop("BACKPROP_TUI_THREADS", None)
        if mode == "one":
            env.update(dict.fromkeys(BLAS_THREAD_VARIABLES, "1"))
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.blas_threads = json.loads(self._read())["blas_threads"]

    def _read(self) -> str:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise RuntimeError("a bench worker stopped")
        return line

    def steps(self, count: int) -> list[float]:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(f"{count}\n")
        stdin.flush()
        return [float(t) for t in json.loads(self._read())]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(10)


# OpenBLAS's idle threads spin for about a tenth of a second after a call before
# they sleep: a worker that runs right after one with several threads would pay
# for that spin, which is the other worker's cost. Seen: a one-thread worker that
# always ran right after the default-threads one came out 1.2-1.7x slower than an
# identical one-thread worker; without the default-threads worker the two were equal.
SPIN_SETTLE_S = 0.25


def take_turns(workers: dict[str, Worker], rounds: int, block: int) -> dict[str, float]:
    """Median step of each worker over ``rounds`` turns of ``block`` steps, in seconds.

    The order rotates every round, so no worker always follows the same one."""
    times: dict[str, list[float]] = {mode: [] for mode in workers}
    modes = list(workers)
    for n in range(rounds):
        for mode in modes[n % len(modes) :] + modes[: n % len(modes)]:
            times[mode] += workers[mode].steps(block)
            if len(workers[mode].blas_threads) and max(workers[mode].blas_threads) > 1:
                time.sleep(SPIN_SETTLE_S)
    return {mode: statistics.median(t) for mode, t in times.items()}


def big_network(report: Report, rounds: int, block: int) -> None:
    workers = {mode: Worker(mode) for mode in MODES}
    try:
        loads = [machine()]
        quiet = take_turns(workers, rounds, block)
        with competing_process():
            loads.append(machine())
            busy = take_turns(workers, rounds, block)
    finally:
        for w in workers.values():
            w.close()
    print("2. 784-512-512-10 relu/softmax, adam, batch 32, float64: median step")
    print(f"   {rounds} turns of {block} steps each; the competing process spins one core")
    print(f"   quiet: {loads[0]}; busy: {loads[1]}")
    print(f"   {'':40}{'BLAS threads':>13}{'quiet':>10}{'busy':>10}{'steps/s busy':>14}")
    for mode, label in MODES.items():
        threads = ",".join(str(t) for t in workers[mode].blas_threads)
        print(
            f"   {label:40}{threads:>13}{quiet[mode] * 1e3:7.1f} ms{busy[mode] * 1e3:7.1f} ms"
            f"{1 / busy[mode]:14.0f}"
        )
        report.figure(f"big_step_ms_quiet_{mode}", quiet[mode] * 1e3)
        report.figure(f"big_step_ms_busy_{mode}", busy[mode] * 1e3)
    over_quiet = busy["chosen"] / quiet["chosen"]
    over_one = busy["chosen"] / busy["one"]
    default_over_one = busy["default"] / busy["one"]
    print(
        f"   chosen threads, busy over quiet:           {over_quiet:5.2f}×"
        f"   target ≤ {BUSY_OVER_QUIET}×   "
        + report.at_most("big_busy_over_quiet", over_quiet, BUSY_OVER_QUIET)
    )
    print(
        f"   chosen threads over one forced, busy:      {over_one:5.2f}×"
        f"   target ≤ {OVER_ONE_THREAD}×  "
        + report.at_most("big_chosen_over_one_busy", over_one, OVER_ONE_THREAD)
    )
    report.figure("big_default_over_one_busy", default_over_one)
    print(f"   (before: OpenBLAS's default over one forced, busy: {default_over_one:5.2f}×)")


# --------------------------------------------------------- 3. the alias bomb
def alias_bomb(report: Report) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bomb.yaml"
        path.write_text(BOMB)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            try:
                load_scenario(path)
            except ScenarioError:
                pass
            else:
                raise AssertionError("the alias bomb loaded")
            times.append(time.perf_counter() - start)
    worst = max(times)
    verdict = report.at_most("alias_bomb_s", worst, BOMB_TARGET_S)
    print(f"3. refusing an alias bomb: {worst * 1e3:.1f} ms at most   target < 2 s  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps: well under a minute")
    parser.add_argument("--steps", type=int, default=None, help="part 1: timed steps of each kind")
    parser.add_argument("--block", type=int, default=25, help="part 1: steps per block")
    parser.add_argument("--profile", action="store_true", help="cProfile the debugger's steps")
    parser.add_argument(
        "--threads", default="policy", help="part 1's BLAS threads: policy, default or a number"
    )
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    # As the command line does; both sides of every comparison run under it.
    print(f"{machine()}; allocator tuned as backprop-tui runs: {keep_freed_memory()}")
    print(f"part 1's BLAS threads: {set_threads(args.threads)}")
    report = Report()
    steps = args.steps or (300 if args.quick else 600)
    seed_network(report, steps, args.block, args.profile)
    big_network(report, rounds=12 if args.quick else 40, block=5)
    alias_bomb(report)
    report.finish()


if __name__ == "__main__":
    main()
