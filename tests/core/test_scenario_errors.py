"""Broken scenario files: each gives one ScenarioError naming the file, the line, the key path.

Every case is a scenario written to a temporary folder (with any data files it
names). The line an error must point at is marked in the case's text with
``#<``; the test finds the marker, so the expected line is part of the case.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from backprop_tui.core import ScenarioError, load_scenario
from backprop_tui.tui.cli import main
from click.testing import CliRunner

HIDDEN = "    - {name: hidden, units: 3, activation: tanh}"
OUTPUT = "    - {name: output, units: 1, activation: sigmoid}"
SLOTS = {
    "data": "  generator: xor",
    "model": f"  inputs: 2\n  layers:\n{HIDDEN}\n{OUTPUT}",
    "loss": "binary_crossentropy",
    "optimizer": "{name: sgd, learning_rate: 0.5}",
    "metrics": "[accuracy]",
    "training": "{epochs: 2, batch_size: 4}",
    "extra": "",
}
BASE = """\
name: broken
seed: 0
data:
{data}
model:
{model}
loss: {loss}
optimizer: {optimizer}
metrics: {metrics}
training: {training}
{extra}"""


def layers(hidden: str = HIDDEN, output: str = OUTPUT, inputs: int = 2) -> str:
    return f"  inputs: {inputs}\n  layers:\n{hidden}\n{output}"


def softmax_head(units: int = 2, marker: str = "") -> str:
    return layers(output=f"    - {{name: output, units: {units}, activation: softmax}}{marker}")


class _Evil:
    """Unpickling this would create a file: proof that nothing was unpickled."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.target, "w"))


def _pickled_npy(folder: Path) -> None:
    objects = np.empty(2, dtype=object)
    objects[0] = _Evil(str(folder / "UNPICKLED"))
    objects[1] = 1.0
    np.save(folder / "x.npy", objects, allow_pickle=True)
    np.save(folder / "y.npy", np.zeros(2))


def _pickled_npz(folder: Path) -> None:
    objects = np.empty(2, dtype=object)
    objects[:] = [_Evil(str(folder / "UNPICKLED")), 1.0]
    np.savez(folder / "data.npz", x=objects, y=np.zeros(2))


def _raw_pickle(folder: Path) -> None:
    (folder / "x.npy").write_bytes(pickle.dumps(_Evil(str(folder / "UNPICKLED"))))
    np.save(folder / "y.npy", np.zeros(2))


def _text_file(name: str, text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_text(text)


def _npy_pair(x: np.ndarray, y: np.ndarray | None = None) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        np.save(folder / "x.npy", x)
        if y is not None:
            np.save(folder / "y.npy", y)

    return make


def _npz_without_y(folder: Path) -> None:
    np.savez(folder / "data.npz", x=np.zeros((4, 2)), labels=np.zeros(4))


def _broken_zip(folder: Path) -> None:
    (folder / "data.npz").write_bytes(b"PK\x03\x04 this is not really a zip")


BOMB = "\n".join(
    [
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


@dataclass
class Case:
    id: str
    slots: dict[str, str]
    path: str | None  # the key path the error must name
    says: str  # a piece of the message: what is wrong or what would be accepted
    files: Callable[[Path], None] | None = None
    raw: str | None = None  # the whole file, when the template cannot express it
    line: int | None = None  # when the text cannot carry a #< marker
    extra_checks: list[str] = field(default_factory=list)

    def text(self) -> str:
        if self.raw is not None:
            return self.raw
        return BASE.format(**{**SLOTS, **self.slots})


CASES = [
    # ---- unknown keys, with a suggestion
    Case(
        "unknown-top-key", {"extra": "optimiser: adam  #<"}, "optimiser", "did you mean 'optimizer'"
    ),
    Case(
        "unknown-layer-key",
        {"model": layers(hidden="    - {name: hidden, unit: 3, activation: tanh}  #<")},
        "model.layers[0].unit",
        "did you mean 'units'",
    ),
    Case(
        "unknown-training-key",
        {"training": "{epochs: 2, batchsize: 4}  #<"},
        "training.batchsize",
        "did you mean 'batch_size'",
    ),
    Case(
        "unknown-data-key",
        {"data": "  generator: xor\n  nois: 0.1  #<"},
        "data.nois",
        "did you mean 'noise'",
    ),
    Case(
        "unknown-optimizer-option",
        {"optimizer": "{name: adam, beta1: 0.9}  #<"},
        "optimizer.beta1",
        "did you mean 'beta_1'",
    ),
    Case(
        "unrelated-key-lists-choices",
        {"training": "{epochs: 2, zzz: 4}  #<"},
        "training.zzz",
        "use one of epochs, batch_size, shuffle",
    ),
    # ---- wrong types
    Case(
        "units-not-a-number",
        {"model": layers(hidden="    - {name: hidden, units: three, activation: tanh}  #<")},
        "model.layers[0].units",
        "expected a whole number, got 'three'",
    ),
    Case(
        "learning-rate-not-a-number",
        {"optimizer": "{name: sgd, learning_rate: fast}  #<"},
        "optimizer.learning_rate",
        "expected a number",
    ),
    Case(
        "shuffle-not-a-boolean",
        {"training": "{epochs: 2, shuffle: maybe}  #<"},
        "training.shuffle",
        "expected true or false",
    ),
    Case(
        "layers-not-a-list",
        {"model": "  inputs: 2\n  layers: {units: 3}  #<"},
        "model.layers",
        "expected a list",
    ),
    Case(
        "units-a-float",
        {"model": layers(output="    - {name: output, units: 1.5, activation: sigmoid}  #<")},
        "model.layers[1].units",
        "whole number",
    ),
    # ---- wrong shapes
    Case(
        "kernel-shape",
        {
            "model": layers(
                hidden="    - {name: hidden, units: 3, activation: tanh,\n"
                "       kernel: [[1, 2], [3, 4]]}  #<"
            )
        },
        "model.layers[0].kernel",
        "expected shape 2 × 3",
    ),
    Case(
        "bias-shape",
        {"model": layers(hidden="    - {name: hidden, units: 3, bias: [0, 0]}  #<")},
        "model.layers[0].bias",
        "expected shape 3",
    ),
    Case(
        "label-columns-do-not-fit",
        {
            "data": "  inline:\n    x: [[0, 0], [1, 1]]\n    y: [[0, 1], [1, 0]]  #<",
            "loss": "mse",
        },
        "data.inline.y",
        "the labels have 2 columns but the last layer has 1 units",
    ),
    Case(
        "class-ids-beyond-last-layer",
        {
            "data": "  inline: {x: [[0, 0], [1, 1]], y: [0, 3]}",
            "model": softmax_head(),
            "loss": "sparse_categorical_crossentropy",
        },
        "model.layers",
        "the labels go up to class 3 but the last layer has 2 units",
        line=7,  # layers:
    ),
    Case(
        "inputs-do-not-fit-data",
        {"model": layers(inputs=3).replace("inputs: 3", "inputs: 3  #<")},
        "model.inputs",
        "the data has 2 input features but model.inputs is 3",
    ),
    Case(
        "fewer-labels-than-rows",
        {"data": "  inline:  #<\n    x: [[0, 0], [1, 1]]\n    y: [[1]]", "loss": "mse"},
        "data.inline.x",
        "2 input rows but 1 labels",
        line=5,  # x:, the first row of the inline data
    ),
    # ---- unknown names
    Case(
        "unknown-activation",
        {"model": layers(hidden="    - {name: hidden, units: 3, activation: tanhh}  #<")},
        "model.layers[0].activation",
        "did you mean 'tanh'",
    ),
    Case(
        "unknown-loss",
        {"loss": "binary_cross_entropy  #<"},
        "loss",
        "did you mean 'binary_crossentropy'",
    ),
    Case("unknown-optimizer", {"optimizer": "{name: adamw}  #<"}, "optimizer.name", "adam"),
    Case(
        "unknown-initializer",
        {"model": layers(hidden="    - {units: 3, kernel_initializer: glorot}  #<")},
        "model.layers[0].kernel_initializer",
        "did you mean 'glorot_",
    ),
    Case(
        "unknown-generator",
        {"data": "  generator: spiral  #<"},
        "data.generator",
        "did you mean 'spirals'",
    ),
    Case("unknown-metric", {"metrics": "[acuracy]  #<"}, "metrics[0]", "did you mean 'accuracy'"),
    Case(
        "generator-option-it-does-not-take",
        {"data": "  generator: xor\n  classes: 3  #<"},
        "data.classes",
        "the xor generator takes no 'classes'",
    ),
    Case(
        "too-many-glyphs",
        {"data": "  generator: glyphs\n  n: 1000000  #<"},
        "data.n",
        "at most 63,775 glyphs of 784 pixels",
    ),
    Case(
        "file-option-on-a-generator",
        {"data": "  generator: xor\n  target: y  #<"},
        "data.target",
        "applies to file: only",
    ),
    Case(
        "glyph-size",
        {"data": "  generator: glyphs\n  size: 16  #<"},
        "data.size",
        "sizes 8 and 28",
    ),
    # ---- missing files
    Case(
        "missing-data-file",
        {"data": "  file: nowhere.csv  #<\n  target: y"},
        "data.file",
        "nowhere.csv does not exist",
    ),
    Case(
        "missing-labels-file",
        {"data": "  file: x.npy\n  labels: nowhere.npy  #<"},
        "data.labels",
        "nowhere.npy does not exist",
        files=_npy_pair(np.zeros((4, 2))),
    ),
    Case(
        "npy-without-labels",
        {"data": "  file: x.npy  #<"},
        "data",
        "add labels:",
        files=_npy_pair(np.zeros((4, 2))),
        line=3,
    ),
    # ---- non-finite numbers
    Case(
        "nan-learning-rate",
        {"optimizer": "{name: sgd, learning_rate: .nan}  #<"},
        "optimizer.learning_rate",
        "finite",
    ),
    Case(
        "infinite-kernel",
        {
            "model": layers(
                hidden="    - {units: 3, kernel: [[.inf, 0, 0], [0, 0, 0]]}  #<",
            )
        },
        "model.layers[0].kernel",
        "finite",
    ),
    Case(
        "nan-in-inline-data",
        {"data": "  inline:\n    x: [[.nan, 0], [1, 1]]  #<\n    y: [0, 1]"},
        "data.inline.x",
        "NaN or infinite",
    ),
    Case(
        "infinite-in-npy",
        {"data": "  file: x.npy  #<\n  labels: y.npy"},
        "data.file",
        "NaN or infinite",
        files=_npy_pair(np.array([[np.inf, 0.0], [0.0, 1.0]]), np.zeros(2)),
    ),
    # ---- empty data, bad sizes
    Case(
        "empty-inline-data",
        {"data": "  inline:\n    x: []  #<\n    y: []"},
        "data.inline.x",
        "non-empty",
    ),
    Case(
        "empty-npy",
        {"data": "  file: x.npy  #<\n  labels: y.npy"},
        "data.file",
        "empty",
        files=_npy_pair(np.zeros((0, 2)), np.zeros(0)),
    ),
    Case(
        "csv-header-only",
        {"data": "  file: d.csv  #<\n  target: y"},
        "data.file",
        "at least one row",
        files=_text_file("d.csv", "a,b,y\n"),
    ),
    Case(
        "batch-size-zero",
        {"training": "{epochs: 2, batch_size: 0}  #<"},
        "training.batch_size",
        "at least 1",
    ),
    Case("epochs-zero", {"training": "{epochs: 0}  #<"}, "training.epochs", "at least 1"),
    Case(
        "validation-split-too-big",
        {"data": "  generator: xor\n  validation_split: 1.5  #<"},
        "data.validation_split",
        "at most 0.9",
    ),
    Case(
        "validation-split-under-one-sample",
        {"data": "  generator: xor\n  validation_split: 0.1  #<"},
        "data.validation_split",
        "less than one sample",
    ),
    Case(
        "too-many-parameters",
        {"model": layers(hidden="    - {name: hidden, units: 100000000000}  #<")},
        "model.layers[0].units",
        "more than 100,000,000 parameters",
    ),
    Case(
        "negative-learning-rate",
        {"optimizer": "{name: sgd, learning_rate: -0.1}  #<"},
        "optimizer.learning_rate",
        "greater than 0",
    ),
    # ---- pairs that cannot train
    Case(
        "softmax-with-binary-crossentropy",
        {"model": softmax_head(marker="  #<")},
        "model.layers[1].activation",
        "use activation: sigmoid",
    ),
    Case(
        "softmax-on-one-unit",
        {"model": softmax_head(units=1, marker="  #<"), "loss": "mse"},
        "model.layers[1].activation",
        "single unit",
    ),
    Case(
        "categorical-with-sigmoid",
        {"loss": "categorical_crossentropy", "model": layers(output=OUTPUT + "  #<")},
        "model.layers[1].activation",
        "use activation: softmax",
    ),
    Case(
        "softmax-in-a-hidden-layer",
        {"model": layers(hidden="    - {units: 3, activation: softmax}  #<")},
        "model.layers[0].activation",
        "only supported on the last layer",
    ),
    Case(
        "nesterov-without-momentum",
        {"optimizer": "{name: sgd, nesterov: true}  #<"},
        "optimizer.nesterov",
        "momentum",
    ),
    Case(
        "regression-targets-with-cross-entropy",
        {"data": "  inline:\n    x: [[0, 0], [1, 1]]\n    y: [0.5, 2.0]"},
        "loss",
        "between 0 and 1",
        line=12,  # loss:
    ),
    Case(
        "duplicate-layer-names",
        {"model": layers(output="    - {name: hidden, units: 1, activation: sigmoid}  #<")},
        "model.layers[1].name",
        "used twice",
    ),
    # ---- YAML itself
    Case(
        "bad-indentation",
        {"model": "  inputs: 2\n   layers:  #<"},
        None,
        "not valid YAML",
    ),
    Case(
        "tab-indentation",
        {"model": "\tinputs: 2  #<"},
        None,
        "not valid YAML",
    ),
    Case(
        "unclosed-quote",
        {"loss": "'binary_crossentropy  #<"},
        None,
        "while scanning a quoted scalar",
    ),
    Case("duplicate-key", {"extra": "loss: mse  #<"}, "loss", "written twice"),
    Case(
        "billion-laughs",
        {},
        None,
        "alias bomb",
        raw=BOMB,
        line=7,  # g: the first value past the cap
    ),
    Case("alias-inside-itself", {}, None, "contains it", raw="a: &a [1, *a]\n", line=1),
    Case(
        "nested-too-deep",
        {},
        None,
        "nested more than",
        raw="data: " + "[" * 100 + "]" * 100 + "\n",
        line=1,
    ),
    Case("not-a-mapping", {}, None, "expected a mapping", raw="- model\n- data\n", line=1),
    Case(
        "missing-model",
        {},
        None,
        "'model' is missing",
        raw="data: {generator: xor}\nloss: mse\n",
        line=1,
    ),
    Case("empty-file", {}, None, "the file is empty", raw="# nothing here\n"),
    Case(
        "python-tag-on-a-list",
        {"extra": "diagnostics: !!python/object/apply:os.system ['touch UNPICKLED']  #<"},
        "diagnostics",
        "is not allowed",
    ),
    Case(
        "python-tag-on-a-name",
        {"loss": "!!python/name:os.system  #<"},
        "loss",
        "is not allowed",
    ),
    # ---- data files that must not be trusted
    Case(
        "pickled-npy",
        {"data": "  file: x.npy  #<\n  labels: y.npy"},
        "data.file",
        "holds Python objects",
        files=_pickled_npy,
    ),
    Case(
        "pickled-npz",
        {"data": "  file: data.npz  #<"},
        "data.file",
        "holds Python objects",
        files=_pickled_npz,
    ),
    Case(
        "raw-pickle-named-npy",
        {"data": "  file: x.npy  #<\n  labels: y.npy"},
        "data.file",
        "Python objects",
        files=_raw_pickle,
    ),
    Case(
        "npz-without-y",
        {"data": "  file: data.npz  #<"},
        "data.file",
        "must hold arrays named x and y",
        files=_npz_without_y,
    ),
    Case(
        "npz-not-a-zip",
        {"data": "  file: data.npz  #<"},
        "data.file",
        "not a readable .npz",
        files=_broken_zip,
    ),
    Case(
        "npy-of-text",
        {"data": "  file: x.npy  #<\n  labels: y.npy"},
        "data.file",
        "numbers only",
        files=_npy_pair(np.array([["a", "b"], ["c", "d"]]), np.zeros(2)),
    ),
    Case(
        "unknown-file-kind",
        {"data": "  file: data.json  #<"},
        "data.file",
        "use .csv, .npy or .npz",
        files=_text_file("data.json", "{}"),
    ),
    # ---- bad csv
    Case(
        "csv-cell-not-a-number",
        {"data": "  file: d.csv  #<\n  target: y"},
        "data.file",
        "line 3 of d.csv, column 'b': 'oops' is not a number",
        files=_text_file("d.csv", "a,b,y\n0,1,1\n1,oops,0\n"),
    ),
    Case(
        "csv-ragged-row",
        {"data": "  file: d.csv  #<\n  target: y"},
        "data.file",
        "line 3 of d.csv has 2 cells",
        files=_text_file("d.csv", "a,b,y\n0,1,1\n1,0\n"),
    ),
    Case(
        "csv-missing-target-column",
        {"data": "  file: d.csv\n  target: label  #<"},
        "data.target",
        "has no column 'label'",
        files=_text_file("d.csv", "a,b,y\n0,1,1\n"),
    ),
    Case(
        "csv-without-target",
        {"data": "  file: d.csv  #<"},
        "data",
        "needs target:",
        files=_text_file("d.csv", "a,b,y\n0,1,1\n"),
        line=3,
    ),
    Case(
        "csv-not-utf8",
        {"data": "  file: d.csv  #<\n  target: y"},
        "data.file",
        "UTF-8",
        files=lambda folder: (folder / "d.csv").write_bytes(b"a,b,y\n\xff\xfe,1,1\n"),
    ),
]


def _marked_line(text: str) -> int | None:
    lines = [i for i, line in enumerate(text.splitlines(), start=1) if "#<" in line]
    assert len(lines) <= 1, "a case marks one line at most"
    return lines[0] if lines else None


def _write(case: Case, folder: Path) -> Path:
    if case.files is not None:
        case.files(folder)
    path = folder / f"{case.id}.yaml"
    path.write_text(case.text(), encoding="utf-8")
    return path


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_scenario(case: Case, tmp_path: Path) -> None:
    path = _write(case, tmp_path)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    err = caught.value
    message = str(err)
    assert "\n" not in message, "one line"
    assert err.file == str(path)
    assert message.startswith(f"{path}:")
    assert case.says in err.message, message
    assert err.path == case.path, message
    if case.path:
        assert f": {case.path}: " in message
    expected_line = case.line if case.line is not None else _marked_line(case.text())
    if case.id == "empty-file":
        assert err.line is None
    else:
        assert expected_line is not None, "every other case says where its error is"
        assert err.line == expected_line, message
        assert isinstance(err.column, int) and err.column >= 1
        assert message.startswith(f"{path}:{err.line}:{err.column}: ")
    assert not (tmp_path / "UNPICKLED").exists(), "an object was unpickled"


def test_columns_point_at_the_key(tmp_path: Path) -> None:
    text = BASE.format(**{**SLOTS, "training": "{epochs: 2, batch_size: 0}"})
    path = tmp_path / "col.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    line = text.splitlines()[caught.value.line - 1]  # type: ignore[operator]
    assert line[caught.value.column - 1 :].startswith("batch_size")  # type: ignore[operator]


def test_missing_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "no such file" in str(caught.value)


def test_scenario_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(ScenarioError, match="UTF-8"):
        load_scenario(path)


def test_a_folder_is_not_a_scenario(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="folder"):
        load_scenario(tmp_path)


def test_data_paths_are_relative_to_the_scenario_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "here").mkdir()
    (tmp_path / "d.csv").write_text("a,b,y\n0,1,1\n")  # in the working directory only
    path = tmp_path / "here" / "s.yaml"
    path.write_text(BASE.format(**{**SLOTS, "data": "  file: d.csv\n  target: y"}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(path)


CLI_CASES = [
    "unknown-top-key",
    "kernel-shape",
    "softmax-with-binary-crossentropy",
    "billion-laughs",
    "pickled-npy",
    "bad-indentation",
    "missing-data-file",
]


@pytest.mark.parametrize("case_id", CLI_CASES)
def test_cli_check_prints_one_line_and_exits_2(case_id: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == case_id)
    path = _write(case, tmp_path)
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    expected_line = case.line if case.line is not None else _marked_line(case.text())
    assert f"{path}:{expected_line}:" in lines[0]
    assert result.stdout == ""
    assert not (tmp_path / "UNPICKLED").exists()


def test_cli_run_refuses_the_same_way(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "unknown-activation")
    path = _write(case, tmp_path)
    result = CliRunner().invoke(main, ["run", str(path), "--steps", "1"])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert "did you mean 'tanh'" in result.stderr


def test_cli_missing_scenario(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr
