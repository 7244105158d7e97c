"""The engine stays headless: importing it loads neither Textual, Rich nor torch."""

import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_core_imports_no_ui_and_no_torch() -> None:
    loaded = _modules_after("import backprop_tui.core")
    assert "numpy" in loaded  # the probe itself works
    for banned in ("textual", "rich", "torch", "backprop_tui.tui"):
        assert banned not in loaded, f"import backprop_tui.core loaded {banned}"


def test_numpy_run_loads_no_torch() -> None:
    loaded = _modules_after(
        "from backprop_tui.core import Debugger, load_scenario; "
        "d = Debugger(load_scenario('xor')); d.step('epoch')"
    )
    assert "torch" not in loaded
    assert "textual" not in loaded


def test_headless_cli_loads_no_textual() -> None:
    loaded = _modules_after(
        "from click.testing import CliRunner; from backprop_tui.tui.cli import main; "
        "r = CliRunner().invoke(main, ['run', 'xor', '--steps', '3']); assert r.exit_code == 0, r.output"
    )
    assert "textual" not in loaded
    assert "torch" not in loaded
