"""bench/gpu_check.py's attached path runs on a box without a GPU: as a dry run on the
cpu (``--device cpu``), and, asked for cuda where there is none, it says so and exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "gpu_check.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )


def test_the_attached_path_checks_pass_on_the_cpu() -> None:
    done = _run("--device", "cpu", "--attach-only", "--no-bench")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if "(cpu)" in line]
    assert len(rows) == 2 and all(" yes " in r and "pass" in r for r in rows), done.stdout
    assert "FAIL" not in done.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the checks would run")
def test_without_a_gpu_cuda_is_skipped_with_one_clear_line() -> None:
    done = _run("--attach-only")
    assert done.returncode == 0
    assert "no CUDA device is visible" in done.stdout and "attached path" in done.stdout
