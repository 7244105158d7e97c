"""The headless commands: check, run (text and --json), list, and bundled names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from backprop_tui.core import Debugger, load_scenario
from backprop_tui.core.spec.scenario import bundled_dir
from backprop_tui.tui.cli import main
from click.testing import CliRunner, Result

SCENARIO = """
name: cli-probe
description: A probe for the command line. It has two sentences.
seed: 2
data: {generator: circles, n: 50, validation_split: 0.2}
model:
  inputs: 2
  layers:
    - {name: hidden, units: 6, activation: tanh}
    - {name: output, units: 1, activation: sigmoid}
loss: binary_crossentropy
optimizer: {name: adam, learning_rate: 0.05}
metrics: [accuracy]
training: {epochs: 3, batch_size: 16}
"""
# 40 training samples in batches of 16: 3 steps per epoch


def _strict_json(text: str) -> Any:
    """JSON as any other tool reads it: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    return json.loads(text, parse_constant=refuse)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    path = tmp_path / "probe.yaml"
    path.write_text(SCENARIO)
    return path


def test_check_prints_the_summary(probe: Path) -> None:
    result = invoke("check", str(probe))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "cli-probe" in out
    lines = out.splitlines()
    hidden = next(line for line in lines if line.startswith("hidden"))
    output = next(line for line in lines if line.startswith("output"))
    total = next(line for line in lines if line.startswith("total"))
    # Keras' summary: output shapes with a free batch size, weights plus biases
    assert "(None, 6)" in hidden and "tanh" in hidden and hidden.split()[-1] == str(2 * 6 + 6)
    assert "(None, 1)" in output and "sigmoid" in output and output.split()[-1] == str(6 + 1)
    assert total.split()[-1] == str(2 * 6 + 6 + 6 + 1)
    assert "40 training" in out and "10 validation" in out
    assert "binary_crossentropy" in out and "adam" in out
    assert result.stderr == ""


def test_check_counts_thousands_readably(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text(
        "data: {generator: glyphs, n: 20}\nloss: categorical_crossentropy\n"
        "model: {inputs: 784, layers: [{units: 64, activation: relu},"
        " {units: 10, activation: softmax}]}\n"
    )
    result = invoke("check", str(path))
    assert result.exit_code == 0, result.output
    counts = {line.split()[0]: line.split()[-1] for line in result.stdout.splitlines() if line}
    assert counts["dense_1"].replace(",", "") == str(784 * 64 + 64)
    assert counts["dense_2"].replace(",", "") == str(64 * 10 + 10)
    assert counts["total"].replace(",", "") == str(784 * 64 + 64 + 64 * 10 + 10)


@pytest.mark.parametrize("steps", [2, 5])
def test_run_json_gives_the_documented_keys(probe: Path, steps: int) -> None:
    result = invoke("run", str(probe), "--steps", str(steps), "--json")
    assert result.exit_code == 0, result.output
    report = _strict_json(result.stdout)
    assert set(report) == {
        "steps",
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "stopped_by",
        "warnings",
    }
    assert report["steps"] == steps
    assert report["epoch"] == -(-steps // 3)  # the 1-based epoch of the last step
    assert report["stopped_by"] == "steps"
    assert isinstance(report["warnings"], list)
    # the same numbers as driving the engine directly
    dbg = Debugger(load_scenario(probe))
    dbg.run(steps)
    assert report["loss"] == dbg.loss
    assert report["accuracy"] == dbg.metrics["accuracy"]
    assert 0.0 <= report["val_accuracy"] <= 1.0
    assert report["val_loss"] > 0.0


def test_run_json_without_validation_has_no_val_keys(tmp_path: Path) -> None:
    path = tmp_path / "noval.yaml"
    path.write_text(SCENARIO.replace(", validation_split: 0.2", ""))
    report = _strict_json(invoke("run", str(path), "--steps", "4", "--json").stdout)
    assert "val_loss" not in report and "val_accuracy" not in report
    assert report["steps"] == 4 and report["epoch"] == 1  # 50 samples: 4 steps of 16


def test_run_without_steps_trains_every_epoch(probe: Path) -> None:
    report = _strict_json(invoke("run", str(probe), "--json").stdout)
    assert report["steps"] == 9 and report["epoch"] == 3


def test_run_prints_text_and_keeps_progress_off_stdout(probe: Path) -> None:
    result = invoke("run", str(probe), "--steps", "4")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("steps 4  epoch 2  loss ")  # step 4 is the first of epoch 2
    assert "val_loss" in out and "accuracy" in out
    assert out.rstrip().endswith("stopped by steps")
    assert "training cli-probe" in result.stderr  # what runs, said once without a terminal


def test_run_options_reach_the_engine(probe: Path) -> None:
    base = _strict_json(invoke("run", str(probe), "--steps", "3", "--json").stdout)
    again = _strict_json(invoke("run", str(probe), "--steps", "3", "--json").stdout)
    reseeded = _strict_json(
        invoke("run", str(probe), "--steps", "3", "--json", "--seed", "9").stdout
    )
    single = _strict_json(
        invoke("run", str(probe), "--steps", "3", "--json", "--dtype", "float32").stdout
    )
    assert again == base
    assert reseeded["loss"] != base["loss"]
    assert single["loss"] == pytest.approx(base["loss"], rel=1e-4)
    assert single["loss"] != base["loss"]


# NumPy warns about the overflow on its way to NaN; what matters here is the JSON
@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_a_run_that_blows_up_still_prints_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "boom.yaml"
    path.write_text(
        "data: {generator: sine, n: 20}\nloss: mse\n"
        "model: {inputs: 1, layers: [{units: 8, activation: linear},"
        " {units: 1, activation: linear}]}\n"
        "optimizer: {name: sgd, learning_rate: 1000000}\n"
        "training: {epochs: 50, batch_size: 20}\n"
    )
    result = invoke("run", str(path), "--json")
    assert result.exit_code == 1, result.output  # stopped on NaN/Inf
    report = _strict_json(result.stdout)
    assert report["stopped_by"] in ("nan", "inf")
    assert report["steps"] < 50


def test_list_names_every_bundled_scenario() -> None:
    result = invoke("list")
    assert result.exit_code == 0, result.output
    listed = {line.split()[0]: line for line in result.stdout.splitlines()}
    bundled = {path.stem for path in bundled_dir().glob("*.yaml")}
    assert set(listed) == bundled
    assert "xor" in listed
    description = load_scenario("xor").description
    assert description.split(". ")[0].rstrip(".") in listed["xor"]


def test_bundled_scenarios_are_found_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # nowhere near the scenarios folder
    result = invoke("run", "xor", "--steps", "3", "--json")
    assert result.exit_code == 0, result.output
    assert _strict_json(result.stdout)["steps"] == 3
    path_result = invoke("run", str(bundled_dir() / "xor.yaml"), "--steps", "3", "--json")
    assert path_result.stdout == result.stdout


def test_an_unknown_name_lists_the_bundled_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "xro", "--steps", "1")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert "xor" in result.stderr and "Traceback" not in result.stderr


def test_a_local_file_wins_over_a_bundled_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("xor").write_text(SCENARIO)
    result = invoke("check", "xor")
    assert result.exit_code == 0, result.output
    assert "cli-probe" in result.stdout


def test_unknown_backend_options_are_refused(probe: Path) -> None:
    result = invoke("run", str(probe), "--steps", "1", "--device", "cuda:0")
    assert result.exit_code == 2
    assert "Traceback" not in result.output + result.stderr
    assert len(result.stderr.splitlines()) == 1
