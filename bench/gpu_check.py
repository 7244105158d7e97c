"""On a CUDA machine: the parity checks on the GPU in float64 and float32, and the step benchmark.

Runs the cases of tests/core/test_parity.py — every bundled scenario and the
generated networks — with the torch backend on the GPU against the NumPy
reference on the host, then times the debugger's step against a plain
PyTorch step there, and prints a short table. Then the attached path
(bench/gpu_attach.py): the user's own model through ``attach`` against the
plain PyTorch loop on the GPU, bit for bit with torch's deterministic mode on,
going back, and the overhead of stepping it. Takes well under a minute on a
recent GPU. The exit status is 1 when a parity check fails, else 0; on a
machine without a visible CUDA device it says so and exits 0.

    .venv/bin/python bench/gpu_check.py                 # cuda, or cuda:N with --device
    .venv/bin/python bench/gpu_check.py --device cpu    # the same checks on the cpu: a dry run
    .venv/bin/python bench/gpu_check.py --attach-only   # the attached path alone
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

# cuBLAS is deterministic only with a fixed workspace, which must be chosen before CUDA
# starts; it changes no result, only makes the attached path's parity exact.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

ROOT = Path(__file__).resolve().parents[1]
PARITY_TESTS = ROOT / "tests" / "core" / "test_parity.py"


def load_parity_cases() -> ModuleType:
    """The parity test module, loaded from its file: its cases and comparison, not its tests."""
    spec = importlib.util.spec_from_file_location("backprop_tui_parity_cases", PARITY_TESTS)
    assert spec is not None and spec.loader is not None, f"cannot load {PARITY_TESTS}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class ParityRow:
    dtype: str
    cases: int
    worst: float
    where: str
    failed: list[str]
    seconds: float


def run_parity(parity: ModuleType, device: str, dtype: str) -> ParityRow:
    """Every bundled scenario and generated case on ``device`` in ``dtype``, against NumPy."""
    start = time.perf_counter()
    limit, steps = parity.LIMIT[dtype], parity.STEPS[dtype]
    named = [(name, parity.bundled_scenario(name)) for name in parity.BUNDLED]
    named += [(case.id, parity.case_scenario(case)) for case in parity.CASES]
    overflow = parity.parse_scenario(parity.load_yaml(parity.OVERFLOW, "overflow.yaml"), ROOT)
    worst, where, failed = 0.0, "", []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the overflow cases overflow on purpose
        for name, scenario in [*named, ("overflow", overflow)]:
            result = parity.compare_runs(scenario, dtype, steps, device=device)
            if result.error > limit:
                failed.append(f"{name}: {result.error:.3g} at {result.where}")
            if result.error >= worst:
                worst, where = result.error, f"{name}, {result.where}"
    return ParityRow(dtype, len(named) + 1, worst, where, failed, time.perf_counter() - start)


def describe_device(torch: ModuleType, device: str) -> str:
    if not device.startswith("cuda"):
        return f"{device}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    index = torch.device(device).index or 0
    tf32 = torch.backends.cuda.matmul.allow_tf32
    return (
        f"{device} ({torch.cuda.get_device_name(index)}), torch {torch.__version__}, "
        f"CUDA {torch.version.cuda}, TF32 matmul {'on' if tf32 else 'off'}"
    )


def check_scenarios(torch: ModuleType, device: str, bench: bool) -> bool:
    """The scenarios' parity table (and the step benchmark); True when every case passed."""
    parity = load_parity_cases()
    rows = [run_parity(parity, device, dtype) for dtype in ("float64", "float32")]
    print(
        f"{'parity vs numpy':<22}{'cases':>6}{'worst rel. error':>18}{'limit':>8}  result{'s':>7}"
    )
    for row in rows:
        limit = parity.LIMIT[row.dtype]
        verdict = "pass" if not row.failed else f"FAIL {len(row.failed)}"
        steps = parity.STEPS[row.dtype]
        label = f"{row.dtype}, {steps} step{'s' if steps > 1 else ''}"
        print(
            f"{label:<22}{row.cases:>6}{row.worst:>18.2e}{limit:>8.0e}  {verdict:<6}"
            f"{row.seconds:>6.1f}"
        )
        print(f"  worst at {row.where}")
        for line in row.failed[:10]:
            print(f"  failed: {line}")

    if bench:
        import bench_torch

        for dtype in ("float32", "float64"):
            timings = [
                bench_torch.time_network(label, text, device, dtype, steps=20, repeats=5)
                for label, text in bench_torch.NETWORKS.items()
            ]
            bench_torch.print_table(timings, device, dtype)
    return not any(row.failed for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--device", default=None, help="cuda (default), cuda:N, or cpu for a dry run"
    )
    parser.add_argument("--no-bench", action="store_true", help="the parity checks only")
    parser.add_argument(
        "--attach-only", action="store_true", help="only the attached path (attach vs plain loop)"
    )
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("gpu_check: PyTorch is not installed; pip install 'torch==2.13.0' or a CUDA build")
        return 2
    from backprop_tui.core import BackendUnavailable
    from backprop_tui.core.backends.torch_backend import resolve_device, visible_devices

    requested = args.device or "cuda"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        build = "" if torch.version.cuda else " (this PyTorch is a CPU-only build)"
        print(
            f"gpu_check: no CUDA device is visible{build}; visible devices: "
            f"{', '.join(visible_devices())}. Nothing to check on a GPU here, neither the "
            "scenarios' parity nor the attached path's (attach against the plain loop); "
            "--device cpu runs the same checks on the cpu."
        )
        return 0
    try:
        device = resolve_device(requested)
    except BackendUnavailable as err:
        print(f"gpu_check: {err}")
        return 2

    began = time.perf_counter()
    print(f"gpu_check on {describe_device(torch, device)}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    failed = False
    if not args.attach_only:
        failed = not check_scenarios(torch, device, bench=not args.no_bench)
    import gpu_attach

    failed = not gpu_attach.run_attach_checks(torch, device, bench=not args.no_bench) or failed
    print(f"gpu_check took {time.perf_counter() - began:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
