"""How much one ``Debugger.step("batch")`` on the torch backend costs over a plain PyTorch step.

The plain step is what a PyTorch user writes: ``nn.Sequential`` of Linear and
ReLU layers, ``F.cross_entropy`` and ``torch.optim.Adam``, starting from the
same weights and fed the same batches, taken from the same host arrays, with
``loss.item()`` each step as the debugger hands back its loss. Plain and
debugger steps are timed in alternating blocks in one run, so both see the
same machine; the ratio of the medians is the figure, and the ratio of the
best blocks is printed too (on a busy machine it is the steadier of the two).
The NumPy backend is timed afterwards, apart: its BLAS threads spin after each
call and would slow whatever ran next.

    .venv/bin/python bench/bench_torch.py [--device cpu] [--dtype float32] [--breakdown]

Target on CPU: the debugger step within 1.5x the plain step. "no diag." is the
debugger with its per-step diagnostics off (`diagnostics: {enabled: false}`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from backprop_tui.core import Debugger, Scenario
from backprop_tui.core.maths import optimizers
from backprop_tui.core.run.debugger import epoch_order
from backprop_tui.core.spec.scenario import parse_scenario
from backprop_tui.core.spec.yamlio import load_yaml
from backprop_tui.core.system.allocator import keep_freed_memory
from torch import nn

TARGET_RATIO = 1.5

# The data are the project's own 28×28 glyphs: 784 inputs, 10 classes. No
# metrics and no validation split, so neither side does work the other skips.
GLYPHS = """
name: bench-glyphs
seed: 0
data: {generator: glyphs, size: 28, n: 2000}
model:
  inputs: 784
  layers:
    - {name: hidden, units: 64, activation: relu, kernel_initializer: he_uniform}
    - {name: output, units: 10, activation: softmax}
loss: categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.001}
training: {epochs: 1000, batch_size: 32}
"""

WIDE = """
name: bench-wide
seed: 0
data: {generator: glyphs, size: 28, n: 2000}
model:
  inputs: 784
  layers:
    - {name: hidden_1, units: 512, activation: relu, kernel_initializer: he_uniform}
    - {name: hidden_2, units: 512, activation: relu, kernel_initializer: he_uniform}
    - {name: output, units: 10, activation: softmax}
loss: categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.001}
training: {epochs: 1000, batch_size: 128}
"""

NETWORKS = {"glyphs 784-64-10, batch 32": GLYPHS, "784-512-512-10, batch 128": WIDE}
QUIET = "diagnostics: {enabled: false}\n"


def scenario_from_text(text: str) -> Scenario:
    return parse_scenario(load_yaml(text, "<bench>"), Path.cwd())


def torch_dtype(dtype: str) -> torch.dtype:
    return torch.float32 if dtype == "float32" else torch.float64


class PlainStep:
    """A textbook PyTorch training step with the debugger's initial weights and batch order."""

    def __init__(self, dbg: Debugger, device: str, dtype: torch.dtype) -> None:
        scenario = dbg.scenario
        layers: list[nn.Module] = []
        for layer in scenario.layers:
            linear = nn.Linear(layer.inputs, layer.units)
            with torch.no_grad():
                # nn.Linear keeps (units, inputs); the project's kernel is (inputs, units).
                linear.weight.copy_(torch.tensor(dbg.params[f"{layer.name}.kernel"].T))
                linear.bias.copy_(torch.tensor(dbg.params[f"{layer.name}.bias"]))
            layers.append(linear)
            if layer.activation == "relu":
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers).to(device=device, dtype=dtype)
        o = scenario.optimizer.options
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=float(o["learning_rate"]),
            betas=(float(o["beta_1"]), float(o["beta_2"])),
            eps=float(o["epsilon"]),
        )
        self.scenario = scenario
        self.x, self.y = scenario.data.x_train, scenario.data.y_train
        self.batch = scenario.training.batch_size
        self.device, self.dtype = device, dtype
        self.epoch, self.position = 0, 0
        self.order = epoch_order(scenario, 0)
        self.loss = float("nan")

    def step(self) -> None:
        idx = self.order[self.position : self.position + self.batch]
        self.position += self.batch
        if self.position >= len(self.order):
            self.epoch, self.position = self.epoch + 1, 0
            self.order = epoch_order(self.scenario, self.epoch)
        xb = torch.tensor(self.x[idx], dtype=self.dtype, device=self.device)
        yb = torch.tensor(self.y[idx], dtype=self.dtype, device=self.device)
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(xb), yb)
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        self.loss = loss.item()


@dataclass(frozen=True)
class Timing:
    """Milliseconds per training step: medians and best blocks of each contender."""

    network: str
    plain_ms: float
    torch_ms: float
    plain_best_ms: float
    torch_best_ms: float
    numpy_ms: float | None
    loss_gap: float  # |plain − debugger| loss after the same first steps: same arithmetic
    quiet_ms: float  # the debugger with its per-step diagnostics switched off

    @property
    def ratio(self) -> float:
        return self.torch_ms / self.plain_ms

    @property
    def best_ratio(self) -> float:
        return self.torch_best_ms / self.plain_best_ms

    @property
    def quiet_ratio(self) -> float:
        return self.quiet_ms / self.plain_ms


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _block_ms(run: Callable[[], object], steps: int, device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        run()
    _sync(device)
    return (time.perf_counter() - start) * 1000.0 / steps


def _blocks(
    contenders: dict[str, Callable[[], object]], steps: int, repeats: int, device: str
) -> dict[str, list[float]]:
    for run in contenders.values():  # warm up: first calls allocate and pick kernels
        for _ in range(3):
            run()
    samples: dict[str, list[float]] = {key: [] for key in contenders}
    for _ in range(repeats):
        for key, run in contenders.items():
            samples[key].append(_block_ms(run, steps, device))
    return samples


def time_network(
    label: str,
    text: str,
    device: str = "cpu",
    dtype: str = "float32",
    steps: int = 20,
    repeats: int = 9,
    with_numpy: bool = True,
) -> Timing:
    """Per-step milliseconds of the plain step and the debugger's, timed in alternating blocks."""
    scenario = scenario_from_text(text)
    dbg = Debugger(scenario, backend="torch", device=device, dtype=dtype)
    plain = PlainStep(dbg, dbg.backend.device, torch_dtype(dtype))
    for _ in range(5):
        dbg.step("batch")
        plain.step()
    assert dbg.loss is not None
    loss_gap = abs(dbg.loss - plain.loss)
    device = dbg.backend.device
    # The same network without the diagnostics that follow every step (norms,
    # NaN scans, dead units): what the backend and the bookkeeping cost alone.
    quiet = Debugger(scenario_from_text(text + QUIET), backend="torch", device=device, dtype=dtype)
    contenders: dict[str, Callable[[], object]] = {
        "plain": plain.step,
        "torch": lambda: dbg.step("batch"),
        "quiet": lambda: quiet.step("batch"),
    }
    samples = _blocks(contenders, steps, repeats, device)
    numpy_ms = None
    if with_numpy and device == "cpu":
        ref = Debugger(scenario, backend="numpy", dtype=dtype)
        numpy_ms = statistics.median(
            _blocks({"numpy": lambda: ref.step("batch")}, steps, repeats, device)["numpy"]
        )
    return Timing(
        label,
        statistics.median(samples["plain"]),
        statistics.median(samples["torch"]),
        min(samples["plain"]),
        min(samples["torch"]),
        numpy_ms,
        loss_gap,
        statistics.median(samples["quiet"]),
    )


def breakdown(text: str, device: str, dtype: str, steps: int = 30) -> dict[str, float]:
    """Best per-step milliseconds of the pieces of a debugger step, measured one by one."""
    scenario = scenario_from_text(text)
    dbg = Debugger(scenario, backend="torch", device=device, dtype=dtype)
    for _ in range(3):
        dbg.step("batch")
    b = dbg.backend
    size = scenario.training.batch_size
    x, y = scenario.data.x_train[:size], scenario.data.y_train[:size]
    n = len(scenario.layers)

    def backend_step() -> None:
        b.begin(x, y)
        for i in range(n):
            b.forward_layer(i)
        b.compute_loss()
        for i in reversed(range(n)):
            b.backward_layer(i)

    def optimizer_step() -> None:
        updates, _ = optimizers.update(scenario.optimizer, dbg.opt_state, dict(b.grads), b.xp)
        optimizers.apply(b.params, updates)

    best = {
        key: min(samples)
        for key, samples in _blocks(
            {
                "whole step": lambda: dbg.step("batch"),
                "backend: input, forward, loss, backward": backend_step,
                "optimizer: update and apply": optimizer_step,
            },
            steps,
            7,
            b.device,
        ).items()
    }
    best["debugger's own bookkeeping"] = (
        best["whole step"]
        - best["backend: input, forward, loss, backward"]
        - best["optimizer: update and apply"]
    )
    return best


def print_table(timings: list[Timing], device: str, dtype: str) -> None:
    print(
        f"one training step, {device} {dtype}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; ms per step (median of blocks, best block)"
    )
    print(
        f"{'network':<28}{'plain':>8}{'debugger':>10}{'ratio':>8}"
        f"{'best':>8}{'best':>8}{'ratio':>7}{'no diag.':>10}{'ratio':>7}{'numpy':>9}"
    )
    for t in timings:
        numpy_ms = f"{t.numpy_ms:9.3f}" if t.numpy_ms is not None else f"{'-':>9}"
        print(
            f"{t.network:<28}{t.plain_ms:8.3f}{t.torch_ms:10.3f}{t.ratio:7.2f}x"
            f"{t.plain_best_ms:8.3f}{t.torch_best_ms:8.3f}{t.best_ratio:6.2f}x"
            f"{t.quiet_ms:10.3f}{t.quiet_ratio:6.2f}x{numpy_ms}"
        )
    gaps = ", ".join(f"{t.loss_gap:.1e}" for t in timings)
    print(f"same start: |loss gap| after 5 steps from the same weights and batches: {gaps}")
    print("  (torch.optim.Adam adds ε to √v̂, Keras to √v; with ε = 1e-30 the gap is ~1e-9)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=9, help="timed blocks per contender")
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy backend")
    parser.add_argument("--breakdown", action="store_true", help="time a step's pieces too")
    args = parser.parse_args()
    # As the command line does; both sides of the comparison run under it.
    print(f"allocator tuned (as backprop-tui runs): {keep_freed_memory()}")
    timings = [
        time_network(
            label, text, args.device, args.dtype, args.steps, args.repeats, not args.no_numpy
        )
        for label, text in NETWORKS.items()
    ]
    print_table(timings, args.device, args.dtype)
    worst = max(t.ratio for t in timings)
    verdict = "within" if worst <= TARGET_RATIO else "above"
    print(f"worst median ratio {worst:.2f}x: {verdict} the {TARGET_RATIO}x target")
    if args.breakdown:
        for label, text in NETWORKS.items():
            pieces = breakdown(text, args.device, args.dtype)
            print(f"{label}, best ms per step:")
            for piece, ms in pieces.items():
                print(f"  {piece:<42}{ms:8.3f}")


if __name__ == "__main__":
    main()
