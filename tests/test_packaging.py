"""The wheel installs under the backprop_tui namespace only, with its data files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_the_namespace_and_its_data(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("backprop_tui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    code = [n for n in names if ".dist-info/" not in n]
    assert all(n.startswith("backprop_tui/") for n in code), [
        n for n in code if not n.startswith("backprop_tui/")
    ]
    assert "backprop_tui/__init__.py" not in names  # an implicit namespace package
    # Every module of the source tree, however deep, is in the wheel: a package
    # missing from pyproject's list would install without it.
    for source in [*(ROOT / "core").rglob("*.py"), *(ROOT / "tui").rglob("*.py")]:
        assert f"backprop_tui/{source.relative_to(ROOT).as_posix()}" in names
    assert "backprop_tui/scenarios/xor.yaml" in names
    bundled = {Path(n).name for n in names if n.startswith("backprop_tui/scenarios/")}
    assert {p.name for p in (ROOT / "scenarios").glob("*.yaml")} <= bundled
    for tcss in (ROOT / "tui").glob("*.tcss"):
        assert f"backprop_tui/tui/{tcss.name}" in names
    for widget in (ROOT / "tui" / "widgets").glob("*.py"):
        assert f"backprop_tui/tui/widgets/{widget.name}" in names
