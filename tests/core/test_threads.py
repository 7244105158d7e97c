"""The BLAS thread count: chosen from the cores and the load, overridden by --threads or the env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from backprop_tui.core.system.threads import (
    MAX_THREADS,
    SMALL_MACHINE,
    _cgroup_cpu_quota,
    choose_threads,
    override_from,
    usable_cores,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cores", [1, 2, 3, SMALL_MACHINE])
@pytest.mark.parametrize("load", [None, 0.0, 0.4, 3.0])
def test_a_small_machine_gets_one_thread_whatever_its_load(cores: int, load: float | None) -> None:
    assert choose_threads(cores, load).threads == 1


def test_a_big_idle_machine_leaves_a_core_to_the_ui_and_half_the_rest_free() -> None:
    assert choose_threads(SMALL_MACHINE + 1, 0.0).threads == 2  # (5 - 1) // 2
    assert choose_threads(6, 0.0).threads == 2
    assert choose_threads(6, None).threads == 2  # no load average: taken as idle
    assert choose_threads(16, 0.2).threads == 7
    assert choose_threads(2 * MAX_THREADS + 1, 0.0).threads == MAX_THREADS
    assert choose_threads(64, 0.0).threads == MAX_THREADS


def test_each_busy_process_in_the_load_takes_a_core() -> None:
    assert choose_threads(16, 0.0).threads == 7
    assert choose_threads(16, 1.0).threads == 7  # 14 // 2
    assert choose_threads(16, 2.6).threads == 6  # 12 // 2
    assert choose_threads(16, 13.0).threads == 1
    assert choose_threads(16, 40.0).threads == 1  # never none
    assert "busy" in choose_threads(16, 2.0).reason
    assert "busy" not in choose_threads(16, 0.2).reason


def test_an_override_wins_on_any_machine() -> None:
    assert choose_threads(2, 5.0, override=3) == choose_threads(64, 0.0, override=3)
    assert choose_threads(2, 5.0, override=3).threads == 3
    with pytest.raises(ValueError, match="at least 1"):
        choose_threads(8, 0.0, override=0)


def test_the_environment_override_is_read_strictly() -> None:
    assert override_from(None) is None
    assert override_from("  ") is None
    assert override_from("4") == 4
    with pytest.raises(ValueError, match="whole number"):
        override_from("four")
    with pytest.raises(ValueError, match="at least 1"):
        override_from("0")


def test_a_cgroup_quota_caps_the_cores(tmp_path: Path) -> None:
    assert _cgroup_cpu_quota(tmp_path) is None  # no cpu.max: unknown
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _cgroup_cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _cgroup_cpu_quota(tmp_path) == 1.5
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


# The command line sets the pools of the process it runs in: checked in a fresh one.
PROBE = """
import json, sys
from threadpoolctl import threadpool_info
from backprop_tui.tui.cli import main
main(sys.argv[1:], standalone_mode=False)
pools = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
torch = sys.modules.get("torch")
print(json.dumps({"blas": pools, "torch": torch.get_num_threads() if torch else None}))
"""


def _pools(*args: str, **env: str) -> dict[str, object]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
        and k != "BACKPROP_TUI_THREADS"
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **env},
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_threads_option_sets_the_blas_pool() -> None:
    assert _pools("run", "xor", "--steps", "1", "--threads", "1")["blas"] == [1]
    assert _pools("run", "xor", "--steps", "1", "--threads", "2")["blas"] == [2]


def test_the_environment_variable_sets_the_blas_pool() -> None:
    assert _pools("run", "xor", "--steps", "1", BACKPROP_TUI_THREADS="2")["blas"] == [2]
    assert _pools("check", "xor", "--no-expect", BACKPROP_TUI_THREADS="1")["blas"] == [1]


def test_without_an_override_the_machine_decides() -> None:
    before = choose_threads(usable_cores(), os.getloadavg()[0]).threads
    found = _pools("run", "xor", "--steps", "1")["blas"]
    after = choose_threads(usable_cores(), os.getloadavg()[0]).threads
    assert found in ([before], [after])  # the load average may move in between


def test_threads_option_sets_torch_too() -> None:
    pytest.importorskip("torch")
    pools = _pools("run", "xor", "--steps", "1", "--backend", "torch", "--threads", "1")
    assert pools["torch"] == 1
    assert pools["blas"] and set(pools["blas"]) == {1}  # type: ignore[arg-type]
