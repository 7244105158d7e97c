"""``backprop-tui run|gradcheck|open train.py``: a training script runs as code."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from backprop_tui.tui.cli import main
from click.testing import CliRunner

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

SCRIPT = """
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
g = torch.Generator().manual_seed(1)
data = [(torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(5)]
epochs = 2

if __name__ == "__main__":
    raise SystemExit("the script's own training loop must not run")
"""


def _write(tmp_path: Path, text: str, name: str = "train.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_run_a_script_headless_as_json(tmp_path: Path) -> None:
    script = _write(tmp_path, SCRIPT)
    result = CliRunner().invoke(main, ["run", script, "--steps", "3", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["steps"] == 3 and found["stopped_by"] == "steps"
    assert found["loss"] > 0 and "accuracy" in found


def test_run_a_script_to_its_end_and_until(tmp_path: Path) -> None:
    script = _write(tmp_path, SCRIPT)
    result = CliRunner().invoke(main, ["run", script, "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["steps"] == 10 and found["epoch"] == 2 and found["stopped_by"] == "end"
    result = CliRunner().invoke(main, ["run", script, "--until", "grad_norm(0) > 0", "--json"])
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["steps"] == 1 and found["stopped_by"] == "breakpoint: grad_norm(0) > 0"


def test_a_script_with_make(tmp_path: Path) -> None:
    body = SCRIPT.replace(
        "if __name__",
        "def make():\n    return dict(model=model, loss_fn=loss_fn, optimizer=optimizer, data=data)\n\nif __name__",
    )
    script = _write(tmp_path, body)
    result = CliRunner().invoke(main, ["run", script, "--steps", "2", "--json"])
    assert result.exit_code == 0, result.output


def test_gradcheck_a_script(tmp_path: Path) -> None:
    script = _write(tmp_path, SCRIPT)
    result = CliRunner().invoke(main, ["gradcheck", script, "--steps", "1"])
    assert result.exit_code == 0, result.output
    assert "gradient check passed" in result.output and "0.weight" in result.output


def test_a_nan_exits_1(tmp_path: Path) -> None:
    script = _write(tmp_path, SCRIPT.replace("lr=0.1", "lr=float('nan')"))
    result = CliRunner().invoke(main, ["run", script, "--json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["stopped_by"] == "nan"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("optimizer = ", "opt = "), "defines no optimizer"),
        (("data = ", "batches = "), "defines no data"),
        (("epochs = 2", "1 / 0"), "train.py:11: ZeroDivisionError"),
        (("model = nn.Sequential", "model = torch.jit.script(nn.Sequential"), None),
    ],
)
def test_a_bad_script_gets_one_line_and_exit_2(
    tmp_path: Path, edit: tuple[str, str], message: str | None
) -> None:
    body = SCRIPT.replace(*edit)
    if message is None:  # a TorchScript model
        body = body.replace("nn.Linear(8, 3))", "nn.Linear(8, 3)))")
        message = "TorchScript"
    script = _write(tmp_path, body)
    for command in (["run", script], ["gradcheck", script], [script]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr
        assert "Traceback" not in result.output


def test_a_missing_script_and_a_yaml_stays_data(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(tmp_path / "nope.py")])
    assert result.exit_code == 2 and "no such file" in result.stderr
    yaml = tmp_path / "x.yaml"
    yaml.write_text("import os\n")
    result = CliRunner().invoke(main, ["run", str(yaml)])
    assert result.exit_code == 2 and "Traceback" not in result.output
