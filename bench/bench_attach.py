"""The cost of debugging your own model: stepping by batch through ``attach`` against the
plain loop, on a 784→256→256→10 MLP, batch 64, Adam, on the CPU, diagnostics on.

Both take turns (``--rounds`` rounds of ``--steps`` steps each, one thread), so a
change in the machine's load hurts both alike; the best round of each is compared.
Target: attached within 1.5× of the plain loop.

    .venv/bin/python bench/bench_attach.py [--steps 100] [--rounds 8]
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch
from backprop_tui.core import attach
from backprop_tui.core.system.allocator import keep_freed_memory
from torch import nn

TARGET = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
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

    def plain() -> float:
        model = copy.deepcopy(base)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        loss_fn = nn.CrossEntropyLoss()
        start = time.perf_counter()
        for x, y in data:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
        return time.perf_counter() - start

    def attached() -> float:
        model = copy.deepcopy(base)
        run = attach(model, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), 1e-3), data)
        start = time.perf_counter()
        run.run_until(max_steps=args.steps)
        elapsed = time.perf_counter() - start
        run.close()
        return elapsed

    plains, attacheds = [], []
    for _ in range(args.rounds):
        plains.append(plain())
        attacheds.append(attached())
    best_plain, best_attached = min(plains), min(attacheds)
    ratio = best_attached / best_plain
    load = os.getloadavg()[0]
    print(f"plain loop   {1000 * best_plain / args.steps:7.2f} ms/step (best of {args.rounds})")
    print(f"attach       {1000 * best_attached / args.steps:7.2f} ms/step")
    verdict = "PASS" if ratio <= TARGET else "MISS"
    print(f"ratio        {ratio:7.2f}×   target ≤ {TARGET}×  {verdict}   (load average {load:.1f})")


if __name__ == "__main__":
    main()
