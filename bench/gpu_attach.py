"""The attached path on a device: parity of ``attach`` against the plain loop, and its cost.

For each model (an MLP with Adam; a CNN with dropout, SGD with momentum, clipping
and a step schedule) the plain loop ``zero_grad(); loss_fn(model(x), y).backward();
[clip;] step(); [scheduler.step()]`` and the same model stepped by batch through
``attach`` start from the same weights, data and random state. Compared after
``STEPS`` steps: every parameter and every optimizer state tensor, bit for bit
(``torch.equal``), with the largest absolute difference where they differ. Then
the attached run goes back three steps and forward again, which must give the
same numbers bit for bit.

On cuda this runs with torch's deterministic mode on (``use_deterministic_algorithms``,
cuDNN deterministic, ``CUBLAS_WORKSPACE_CONFIG`` set before CUDA starts): then the
two loops must agree bit for bit and the run says it goes back exactly. A second
pass with the deterministic mode off checks that the run labels going back as
approximate. The cost is the MLP stepped by batch with diagnostics on against the
plain loop, best of three, with the device synchronized before each clock read.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

STEPS = 12
BENCH_STEPS = 100


@dataclass(frozen=True)
class AttachRow:
    model: str
    steps: int
    equal: bool  # every parameter and optimizer state tensor bit for bit
    worst: float  # largest |difference| where they differ (0.0 when equal)
    where: str
    back_equal: bool  # back three steps and forward again: the same numbers
    exact_label: bool  # what the run says of going back (goes_back_exactly)
    seconds: float


@contextmanager
def deterministic(torch: Any, on: bool) -> Iterator[None]:
    """torch's deterministic mode (and cuDNN's) on or off for the block, put back after."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic = before[1]
        torch.backends.cudnn.benchmark = before[2]


def _cases(torch: Any, device: str) -> dict[str, Callable[[], tuple[Any, ...]]]:
    """name → a function making (model, loss_fn, optimizer, data, scheduler, clip)."""
    nn = torch.nn

    def data(shape: tuple[int, ...], classes: int, batches: int, seed: int) -> list[Any]:
        g = torch.Generator().manual_seed(seed)
        return [
            (
                torch.randn(32, *shape, generator=g).to(device),
                torch.randint(0, classes, (32,), generator=g).to(device),
            )
            for _ in range(batches)
        ]

    def mlp() -> tuple[Any, ...]:
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
        ).to(device)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        return model, nn.CrossEntropyLoss(), opt, data((784,), 10, STEPS, 1), None, None

    def cnn() -> tuple[Any, ...]:
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 8, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
            nn.Flatten(),
            nn.Linear(8 * 13 * 13, 10),
        ).to(device)
        opt = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
        return model, nn.CrossEntropyLoss(), opt, data((1, 28, 28), 10, STEPS, 2), sched, 0.5

    return {"mlp, Adam": mlp, "cnn, dropout, SGD+momentum, clip, StepLR": cnn}


def _plain(torch: Any, made: tuple[Any, ...]) -> None:
    model, loss_fn, opt, data, sched, clip = made
    for x, y in data:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(list(model.parameters()), clip)
        opt.step()
        if sched is not None:
            sched.step()


def _tensors(model: Any, opt: Any) -> dict[str, Any]:
    found = {f"param {k}": v.detach() for k, v in model.named_parameters()}
    names = {id(p): n for n, p in model.named_parameters()}
    for p, state in opt.state.items():
        for key, value in state.items():
            if hasattr(value, "shape"):
                found[f"{key} of {names.get(id(p), '?')}"] = value.detach()
    return found


def _compare(torch: Any, a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, float, str]:
    equal, worst, where = set(a) == set(b), 0.0, "" if set(a) == set(b) else "different state"
    for key in sorted(set(a) & set(b)):
        if torch.equal(a[key], b[key]):
            continue
        equal = False
        diff = float((a[key].double() - b[key].double()).abs().max())
        if diff >= worst:
            worst, where = diff, key
    return equal, worst, where


def check_case(torch: Any, name: str, make: Callable[[], tuple[Any, ...]]) -> AttachRow:
    from backprop_tui.core import attach

    start = time.perf_counter()
    plain = make()  # seeds every generator (dropout's too), so both start alike
    _plain(torch, plain)
    expected = {k: v.clone() for k, v in _tensors(plain[0], plain[2]).items()}
    model, loss_fn, opt, data, sched, clip = make()
    device = next(model.parameters()).device
    run = attach(model, loss_fn, opt, data, scheduler=sched, clip_grad_norm=clip)
    run.run_until(max_steps=STEPS)
    assert next(model.parameters()).device == device, "attach moved the model"
    got = {k: v.clone() for k, v in _tensors(model, opt).items()}
    equal, worst, where = _compare(torch, expected, got)
    for _ in range(3):
        run.back()
    run.run_until(max_steps=3)
    again, _, _ = _compare(torch, got, _tensors(model, opt))
    exact = bool(run.goes_back_exactly)
    run.close()
    return AttachRow(name, STEPS, equal, worst, where, again, exact, time.perf_counter() - start)


def overhead(torch: Any, device: str) -> tuple[float, float]:
    """(plain ms/step, attached ms/step) of the MLP, best of three, diagnostics on."""
    from backprop_tui.core import attach

    make = _cases(torch, device)["mlp, Adam"]
    model, loss_fn, _, _, _, _ = make()
    g = torch.Generator().manual_seed(3)
    data = [
        (
            torch.randn(64, 784, generator=g).to(device),
            torch.randint(0, 10, (64,), generator=g).to(device),
        )
        for _ in range(BENCH_STEPS)
    ]

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    plains, attacheds = [], []
    for _ in range(3):
        net = copy.deepcopy(model)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        sync()
        start = time.perf_counter()
        for x, y in data:
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
        sync()
        plains.append(time.perf_counter() - start)
        net = copy.deepcopy(model)
        run = attach(net, loss_fn, torch.optim.Adam(net.parameters(), 1e-3), data)
        sync()
        start = time.perf_counter()
        run.run_until(max_steps=BENCH_STEPS)
        sync()
        attacheds.append(time.perf_counter() - start)
        run.close()
    return 1000 * min(plains) / BENCH_STEPS, 1000 * min(attacheds) / BENCH_STEPS


def run_attach_checks(torch: Any, device: str, bench: bool) -> bool:
    """Print the attached path's table; True when every parity check passed."""
    cases = _cases(torch, device)
    on_gpu = device.startswith("cuda")
    passed = True
    print(f"{'attach vs plain loop':<48}{'steps':>6}  {'bit for bit':<12}{'back()':<8}goes back")
    modes = [True, False] if on_gpu else [False]
    for mode in modes:
        label = "deterministic on" if mode else ("deterministic off" if on_gpu else "cpu")
        with deterministic(torch, mode):
            for name, make in cases.items():
                row = check_case(torch, name, make)
                must_match = mode or not on_gpu
                ok = (
                    (row.equal and row.back_equal and row.exact_label)
                    if must_match
                    else (not row.exact_label)
                )
                passed = passed and ok
                same = "yes" if row.equal else f"no, {row.worst:.2e}"
                said = "exactly" if row.exact_label else "approximately"
                print(
                    f"{name + ' (' + label + ')':<48}{row.steps:>6}  {same:<12}"
                    f"{'same' if row.back_equal else 'differs':<8}{said:<14}"
                    f"{'pass' if ok else 'FAIL'} {row.seconds:5.1f}s"
                )
                if not row.equal:
                    print(f"  largest difference at {row.where}")
    if not on_gpu:
        print("  (on a cpu the two loops must agree bit for bit; deterministic mode is for cuda)")
    if bench:
        plain_ms, attached_ms = overhead(torch, device)
        print(
            f"attach overhead, MLP 784→256→256→10, batch 64, Adam, by batch, diagnostics on: "
            f"plain {plain_ms:.2f} ms/step, attached {attached_ms:.2f} ms/step, "
            f"{attached_ms / plain_ms:.2f}×"
        )
    return passed
