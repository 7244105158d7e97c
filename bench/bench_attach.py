"""The cost of debugging your own model: stepping by batch through ``attach`` against the
plain loop, on a 784→256→256→10 MLP, batch 64, Adam, on the CPU, diagnostics on.

Both take turns (``--rounds`` rounds of ``--steps`` steps each, one torch thread on
both sides), so a change in the machine's load hurts both alike; the best round of
each is compared. Target: attached within 1.5× of the plain loop in wall-clock
time. The same ratio in the thread's CPU time is printed beside it: on a box
shared with other work it is the steadier of the two, as waiting for a core does
not count in it (a busy neighbour still slows both through the caches).

    .venv/bin/python bench/bench_attach.py [--steps 100] [--rounds 8] [--quick]
    .venv/bin/python bench/spread.py --runs 3 bench/bench_attach.py
    .venv/bin/python bench/bench_attach.py --breakdown   # where the extra time goes

``--breakdown`` times the attached run again with parts of its work taken out, one
more each time (the diagnostics after each step; then the random states kept per
batch; then the forward hooks as well), in thread CPU time: the differences say
what each part costs. Runs without those parts are not debuggable runs; they are
only for finding where to look.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from collections.abc import Callable

import torch
from backprop_tui.core import attach
from backprop_tui.core.attach.batches import RngState
from backprop_tui.core.system.allocator import keep_freed_memory
from backprop_tui.core.watch.watcher import Watch
from loadgen import Report, machine
from torch import nn

TARGET = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 50 steps")
    parser.add_argument("--breakdown", action="store_true", help="the cost of each part")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 50, 3
    keep_freed_memory()  # as the command line does, for both sides
    torch.set_num_threads(1)
    torch.manual_seed(0)
    base = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )
    g = torch.Generator().manual_seed(0)
    data = [
        (torch.randn(64, 784, generator=g), torch.randint(0, 10, (64,), generator=g))
        for _ in range(args.steps)
    ]

    def plain() -> tuple[float, float]:
        model = copy.deepcopy(base)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        loss_fn = nn.CrossEntropyLoss()
        start, cpu = time.perf_counter(), time.thread_time()
        for x, y in data[: args.steps]:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
        return time.perf_counter() - start, time.thread_time() - cpu

    def attached(without: int = 0) -> tuple[float, float]:
        model = copy.deepcopy(base)
        run = attach(model, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), 1e-3), data)
        assert run.watch.diagnostics.enabled  # the cost measured includes the diagnostics
        if without >= 3:
            run.tracer.remove()
        start, cpu = time.perf_counter(), time.thread_time()
        run.run_until(max_steps=args.steps)
        elapsed = time.perf_counter() - start, time.thread_time() - cpu
        run.close()
        return elapsed

    print(f"bench_attach: {machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread")
    if args.breakdown:
        breakdown(plain, attached, args.rounds, args.steps)
        return
    plains, attacheds = [], []
    for _ in range(args.rounds):
        plains.append(plain())
        attacheds.append(attached())
    report = Report()
    n = args.steps
    for i, clock in enumerate(("wall", "cpu")):
        best_plain = min(p[i] for p in plains)
        best_attached = min(a[i] for a in attacheds)
        ratio = best_attached / best_plain
        report.figure(f"plain_ms_{clock}", 1000 * best_plain / n)
        report.figure(f"attach_ms_{clock}", 1000 * best_attached / n)
        print(
            f"{clock:<5} plain {1000 * best_plain / n:6.2f} ms/step, attach "
            f"{1000 * best_attached / n:6.2f} ms/step (best of {args.rounds})"
        )
        if clock == "wall":
            verdict = report.at_most("ratio_wall", ratio, TARGET)
            print(f"      ratio {ratio:5.2f}×   target ≤ {TARGET}×  {verdict}")
        else:
            report.figure("ratio_cpu", ratio)
            print(f"      ratio {ratio:5.2f}×   (thread CPU time; no target, for comparison)")
    print(f"load average {os.getloadavg()[0]:.1f}")
    report.finish()


PARTS = ("everything", "without diagnostics", "and without random states", "and without hooks")


def breakdown(
    plain: Callable[[], tuple[float, float]],
    attached: Callable[[int], tuple[float, float]],
    rounds: int,
    steps: int,
) -> None:
    """Thread CPU time per step of the attached run with parts taken out, cumulatively."""
    observe, capture = Watch.__dict__["observe"], RngState.__dict__["capture"]
    best = {name: float("inf") for name in ("plain", *PARTS)}
    try:
        for _ in range(rounds):
            best["plain"] = min(best["plain"], plain()[1])
            for without, name in enumerate(PARTS):
                if without >= 1:
                    Watch.observe = lambda self, stats: None  # type: ignore[method-assign]
                if without >= 2:
                    kept = RngState.capture()
                    RngState.capture = classmethod(lambda cls, last=None, k=kept: k)  # type: ignore[assignment]
                best[name] = min(best[name], attached(without)[1])
                Watch.observe, RngState.capture = observe, capture  # type: ignore[method-assign]
    finally:
        Watch.observe, RngState.capture = observe, capture  # type: ignore[method-assign]
    figures = {}
    last = None
    for name, seconds in best.items():
        ms = 1000 * seconds / steps
        cost = "" if last is None or name == "plain" else f"   (that part: {last - ms:+.2f} ms)"
        print(f"{name:<28} {ms:6.2f} ms/step CPU{cost}")
        figures[name.replace(" ", "_")] = ms
        last = ms if name != "plain" else None
    print("FIGURES " + json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
