"""The layers beyond Dense, measured in one run on ``glyphs_cnn`` (batch 32):

1. A training step on the NumPy backend (hand-written conv, pooling, dropout)
   against the torch CPU backend (torch's ops and autograd), each a
   ``Debugger.step("batch")`` over the same batches. Target: NumPy within 3×.

2. ``Debugger.step("batch")`` against a plain NumPy loop of the same network:
   the same layer objects (core/layers), a log-sum-exp softmax cross-entropy and
   the textbook Adam written out, nothing recorded, watched or kept. Target:
   within 1.5×. (Its first loss equals the debugger's; its Adam puts ε where the
   textbook does, so later losses agree to about 1e-5, not bit for bit.)

Both sides of each pair take turns, ``BLOCK`` steps at a time, under the thread
count the command line chooses (core/system/threads.py), so a change in the
machine's load hurts both alike; the medians of the per-step times are compared.

    .venv/bin/python bench/bench_layers.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np
from backprop_tui.core import Debugger, load_scenario
from backprop_tui.core.layers import draw_masks, make_layer
from backprop_tui.core.maths.activations import get_activation
from backprop_tui.core.run.debugger import epoch_order, initial_params
from backprop_tui.core.system.threads import configure_threads
from numpy.typing import NDArray

TORCH_TARGET = 3.0
PLAIN_TARGET = 1.5
BLOCK = 5


class PlainLoop:
    """glyphs_cnn trained by hand: forward, loss, backward and Adam, and nothing else."""

    def __init__(self) -> None:
        self.scenario = s = load_scenario("glyphs_cnn")
        self.layers = [make_layer(spec) for spec in s.layers]
        self.acts = [get_activation(spec.activation) for spec in s.layers]
        self.params = initial_params(s)
        self.m = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.t = 0
        self.order = epoch_order(s, 0)
        self.batch = 0

    def step(self) -> float:
        s = self.scenario
        size = s.training.batch_size
        idx = self.order[self.batch * size : (self.batch + 1) * size]
        self.batch = (self.batch + 1) % (len(self.order) // size)
        x = s.data.x_train[idx].reshape(len(idx), *s.sample_shape)
        y = s.data.y_train[idx]
        masks = draw_masks(s, self.t, len(idx))
        a: NDArray[Any] = x
        caches, zs, outs = [], [], []
        for i, layer in enumerate(self.layers):
            step = layer.forward(self.params, a, True, masks.get(i))
            caches.append(step.cache)
            zs.append(step.z)
            a = self.acts[i].forward(step.z)
            outs.append(a)
        z = zs[-1]
        shifted = z - z.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = float(-(y * log_p).sum(axis=1).mean())
        dz = (np.exp(log_p) - y) / len(y)
        grads: dict[str, NDArray[Any]] = {}
        for i in reversed(range(len(self.layers))):
            if i < len(self.layers) - 1:
                dz = self.acts[i].backward(zs[i], outs[i], dz)
            found, da = self.layers[i].backward(caches[i], dz, i > 0)
            grads.update(found)
            dz = da if da is not None else dz
        self.t += 1
        lr, b1, b2, eps = 0.003, 0.9, 0.999, 1e-7
        for name, g in grads.items():
            self.m[name] = b1 * self.m[name] + (1 - b1) * g
            self.v[name] = b2 * self.v[name] + (1 - b2) * g * g
            m_hat = self.m[name] / (1 - b1**self.t)
            v_hat = self.v[name] / (1 - b2**self.t)
            self.params[name] = self.params[name] - lr * m_hat / (np.sqrt(v_hat) + eps)
        return loss


def alternate(first: Any, second: Any, rounds: int) -> tuple[float, float]:
    """Median seconds a step of ``first`` and of ``second``, taking turns BLOCK steps at a time."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for k, step in enumerate((first, second)):
            for _ in range(BLOCK):
                start = time.perf_counter()
                step()
                times[k].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 20 s)")
    args = parser.parse_args()
    rounds = 4 if args.quick else 12
    choice = configure_threads()
    print(f"threads: {choice.threads} ({choice.reason}); load {os.getloadavg()[0]:.2f}")
    scenario = load_scenario("glyphs_cnn")
    numpy_run = Debugger(scenario)
    torch_run = Debugger(scenario, backend="torch")
    numpy_run.step("batch")  # warm up both (imports, allocator, torch's kernels)
    torch_run.step("batch")
    np_s, torch_s = alternate(
        lambda: numpy_run.step("batch"), lambda: torch_run.step("batch"), rounds
    )
    ratio = np_s / torch_s
    verdict = "PASS" if ratio <= TORCH_TARGET else "MISS"
    print(
        f"1. glyphs_cnn step: numpy {np_s * 1e3:.1f} ms, torch cpu {torch_s * 1e3:.1f} ms, "
        f"numpy/torch {ratio:.2f}× (target ≤ {TORCH_TARGET}×) {verdict}"
    )
    plain = PlainLoop()
    debugger = Debugger(scenario)
    plain.step()
    debugger.step("batch")
    dbg_s, plain_s = alternate(lambda: debugger.step("batch"), plain.step, rounds)
    ratio = dbg_s / plain_s
    verdict = "PASS" if ratio <= PLAIN_TARGET else "MISS"
    print(
        f"2. Debugger.step {dbg_s * 1e3:.1f} ms, plain NumPy loop {plain_s * 1e3:.1f} ms, "
        f"{ratio:.2f}× (target ≤ {PLAIN_TARGET}×) {verdict}"
    )


if __name__ == "__main__":
    main()
