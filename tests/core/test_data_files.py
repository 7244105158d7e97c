"""Data files as people have them, opened safely: real CSVs, and caps before memory is spent.

- CSV: word labels as classes (iris' species), pandas' index column dropped,
  ``features:`` chooses the inputs, ``;`` and tab separators, short error quotes;
- caps: an ``.npz`` member, a ``.npy`` header and a ``.csv`` are measured before
  they are read, so a zip bomb or a huge file is refused with memory untouched.
"""

from __future__ import annotations

import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from backprop_tui.core import Debugger, ScenarioError, load_scenario
from backprop_tui.core.spec import csvfile
from backprop_tui.core.spec.arrayfile import CAP_VARIABLE, MB

SPECIES = ("setosa", "versicolor", "virginica")
# Iris' per-species means and standard deviations (sepal length, sepal width, petal length, petal width).
MEANS = np.array([[5.01, 3.43, 1.46, 0.25], [5.94, 2.77, 4.26, 1.33], [6.59, 2.97, 5.55, 2.03]])
STDS = np.array([[0.35, 0.38, 0.17, 0.11], [0.52, 0.31, 0.47, 0.20], [0.64, 0.32, 0.55, 0.27]])
COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def _iris(seed: int = 0, per_class: int = 50) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(3), per_class)
    rng.shuffle(ids)
    x = np.round(MEANS[ids] + STDS[ids] * rng.standard_normal((len(ids), 4)), 1)
    return x, [SPECIES[i] for i in ids]


def _iris_csv(path: Path, style: str = "plain") -> None:
    x, species = _iris()
    sep = {"plain": ",", "pandas": ",", "semicolon": ";", "tab": "\t"}[style]
    head = [*COLUMNS, "species"]
    if style == "pandas":
        head = ["", *head]
    lines = [sep.join(head)]
    for i, (row, name) in enumerate(zip(x, species, strict=True)):
        cells = [f"{v:.1f}" for v in row]
        if style == "semicolon":  # decimal commas, as Excel writes them in Europe
            cells = [c.replace(".", ",") for c in cells]
        if style == "pandas":
            cells = [str(i), *cells]
        lines.append(sep.join([*cells, name]))
    path.write_text("\n".join(lines) + "\n")


def _scenario(
    folder: Path,
    data: str,
    inputs: int = 4,
    units: int = 3,
    extra: str = "",
    name: str = "s.yaml",
) -> Path:
    activation = "sigmoid" if units == 1 else "softmax"
    loss = "binary_crossentropy" if units == 1 else "sparse_categorical_crossentropy"
    path = folder / name
    path.write_text(
        f"""name: iris
seed: 1
data:
{data}
model:
  inputs: {inputs}
  layers:
    - {{name: hidden, units: 8, activation: tanh}}
    - {{name: out, units: {units}, activation: {activation}}}
loss: {loss}
optimizer: {{name: adam, learning_rate: 0.05}}
metrics: [accuracy]
training: {{epochs: 60, batch_size: 16}}
{extra}"""
    )
    return path


def _error(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message and "\x1b" not in message
    assert len(message) < 400, message
    return caught.value


# ------------------------------------------------------------------------ real CSVs
@pytest.mark.parametrize("style", ["plain", "pandas", "semicolon", "tab"])
def test_iris_as_people_save_it_trains(tmp_path: Path, style: str) -> None:
    _iris_csv(tmp_path / "iris.csv", style)
    scenario = load_scenario(
        _scenario(tmp_path, "  file: iris.csv\n  target: species\n  validation_split: 0.2")
    )
    data = scenario.data
    assert data.class_names == SPECIES
    assert data.x_train.shape == (120, 4)  # the pandas index is not a feature
    assert data.y_train.shape == (120, 3)
    x, species = _iris()
    # ids in the names' sorted order, one-hot
    assert [SPECIES[i] for i in data.y_train.argmax(axis=1)] == species[:120]
    np.testing.assert_allclose(data.x_train, x[:120])
    dbg = Debugger(scenario)
    dbg.step("epoch")
    while dbg.epoch < scenario.training.epochs:
        dbg.step("epoch")
    assert dbg.epoch_history[-1].val_metrics["accuracy"] >= 0.9


def test_features_choose_the_input_columns(tmp_path: Path) -> None:
    _iris_csv(tmp_path / "iris.csv", "pandas")
    data = load_scenario(
        _scenario(
            tmp_path,
            "  file: iris.csv\n  target: species\n  features: [petal_length, petal_width]",
            inputs=2,
        )
    ).data
    x, _ = _iris()
    np.testing.assert_allclose(data.x_train, x[:, 2:])
    err = _error(
        _scenario(tmp_path, "  file: iris.csv\n  target: species\n  features: [petal_lenght]")
    )
    assert err.path == "data.features"
    assert "no column 'petal_lenght'" in err.message and "'petal_length'" in err.message
    err = _error(_scenario(tmp_path, "  generator: xor\n  features: [a]", inputs=2, units=1))
    assert err.path == "data.features"


def test_an_unnamed_first_column_that_does_not_count_is_a_feature(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(",a,label\n5,1.5,0\n7,2.5,1\n9,3.5,0\n")
    data = load_scenario(
        _scenario(tmp_path, "  file: d.csv\n  target: label", inputs=2, units=1)
    ).data
    np.testing.assert_allclose(data.x_train, [[5, 1.5], [7, 2.5], [9, 3.5]])


def test_word_labels_need_as_many_units_as_classes(tmp_path: Path) -> None:
    _iris_csv(tmp_path / "iris.csv")
    err = _error(_scenario(tmp_path, "  file: iris.csv\n  target: species", units=2))
    assert "3 classes (setosa, versicolor, virginica)" in err.message
    assert "give it 3 units" in err.message
    err = _error(_scenario(tmp_path, "  file: iris.csv\n  target: species", units=1))
    assert "softmax" in err.message


def test_two_words_train_a_sigmoid_unit(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,b,answer\n0,1,yes\n1,0,yes\n0,0,no\n1,1,no\n")
    data = load_scenario(
        _scenario(tmp_path, "  file: d.csv\n  target: answer", inputs=2, units=1)
    ).data
    assert data.class_names == ("no", "yes")
    assert data.y_train[:, 0].tolist() == [1, 1, 0, 0]


def test_labels_that_mix_numbers_and_words_are_refused(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,label\n1,0\n2,1\n3,cat\n4,0\n")
    err = _error(_scenario(tmp_path, "  file: d.csv\n  target: label", inputs=1, units=1))
    assert "mixes numbers and words" in err.message and "'cat'" in err.message


def test_another_separator_is_named_in_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a|b|label\n1|2|0\n")
    err = _error(_scenario(tmp_path, "  file: d.csv\n  target: label", inputs=2, units=1))
    assert "separator is not a comma" in err.message


def test_a_bad_cell_is_quoted_short_and_visible(tmp_path: Path) -> None:
    cell = "\x1b]2;PWNED\x07" + "z" * 5000
    (tmp_path / "d.csv").write_text(f"a,label\n1,0\n{cell},1\n")
    err = _error(_scenario(tmp_path, "  file: d.csv\n  target: label", inputs=1, units=1))
    assert "line 3" in err.message and "column 'a'" in err.message
    assert "␛]2;PWNED␇" in err.message
    assert len(err.message) < 200


def test_rows_of_another_length_name_their_line(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,0\n1,2\n")
    err = _error(_scenario(tmp_path, "  file: d.csv\n  target: label", inputs=2, units=1))
    assert "line 3" in err.message and "3 cells" in err.message


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_every_line_ending_reads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    monkeypatch.setattr(csvfile, "CHUNK", 7)  # line ends cut between chunks too
    rows = [f"{i},{i % 3},{'ab'[i % 2]}" for i in range(40)]
    (tmp_path / "d.csv").write_bytes(ending.join(["a,b,label", *rows, ""]).encode())
    data = load_scenario(
        _scenario(tmp_path, "  file: d.csv\n  target: label", inputs=2, units=1)
    ).data
    assert data.x_train.shape == (40, 2) and data.class_names == ("a", "b")
    assert data.x_train[:, 0].tolist() == list(range(40))


# ------------------------------------------------------------------------ caps
def _zeros_npz(path: Path, megabytes: int) -> None:
    """A compressed .npz whose x is ``megabytes`` MB of zeros: a few hundred KB on disk."""
    rows = megabytes * MB // (8 * 4)
    header = {"descr": "<f8", "fortran_order": False, "shape": (rows, 4)}
    chunk = bytes(MB)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            for _ in range(megabytes):
                member.write(chunk)
        with archive.open("y.npy", "w") as member:
            np.lib.format.write_array(member, np.zeros(rows))


def _measured(path: Path) -> tuple[ScenarioError, float, int]:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        err = _error(path)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return err, time.perf_counter() - start, peak


def test_a_zip_bomb_is_refused_before_it_inflates(tmp_path: Path) -> None:
    _zeros_npz(tmp_path / "bomb.npz", 512)
    assert (tmp_path / "bomb.npz").stat().st_size < 2 * MB
    err, seconds, peak = _measured(_scenario(tmp_path, "  file: bomb.npz"))
    assert err.path == "data.file"
    assert "zip bomb" in err.message and CAP_VARIABLE in err.message
    assert seconds < 2 and peak < 20 * MB


def test_an_npz_member_over_the_cap_names_the_cap_and_how_to_raise_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _zeros_npz(tmp_path / "big.npz", 32)
    monkeypatch.setenv(CAP_VARIABLE, "16")
    err, _, peak = _measured(_scenario(tmp_path, "  file: big.npz"))
    assert "16 MB cap" in err.message and f"set {CAP_VARIABLE}" in err.message
    assert peak < 8 * MB
    monkeypatch.setenv(CAP_VARIABLE, "64")  # raised, it opens
    data = load_scenario(_scenario(tmp_path, "  file: big.npz", units=1)).data
    assert data.x_train.shape == (MB, 4)


def test_an_npy_header_cannot_claim_more_than_the_file_holds(tmp_path: Path) -> None:
    with (tmp_path / "x.npy").open("wb") as handle:
        header = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**4)}
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(bytes(64))
    np.save(tmp_path / "y.npy", np.zeros(10**6))
    err, _, peak = _measured(_scenario(tmp_path, "  file: x.npy\n  labels: y.npy"))
    assert "74.5 GB" in err.message and "cap" in err.message
    assert peak < 8 * MB
    with (tmp_path / "x.npy").open("wb") as handle:
        header = {"descr": "<f8", "fortran_order": False, "shape": (1000, 4)}
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(bytes(64))
    err = _error(_scenario(tmp_path, "  file: x.npy\n  labels: y.npy"))
    assert "cut short" in err.message


def test_a_csv_over_the_cap_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as handle:
        handle.write("a,b,c,label\n")
        handle.write("1.5,2.5,3.5,0\n" * 300_000)  # 4.2 MB of text, 9.6 MB of numbers
    monkeypatch.setenv(CAP_VARIABLE, "3")
    err, seconds, peak = _measured(_scenario(tmp_path, "  file: big.csv\n  target: label"))
    assert "over the 3 MB cap" in err.message and CAP_VARIABLE in err.message
    monkeypatch.setenv(CAP_VARIABLE, "8")  # the text fits; the array it makes does not
    err, seconds, peak = _measured(_scenario(tmp_path, "  file: big.csv\n  target: label"))
    assert "300,002 rows × 4 columns" in err.message and "8 MB cap" in err.message
    assert seconds < 2 and peak < 4 * MB


def test_bytes_on_disk_count_as_the_float64_they_become(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((MB, 4), np.uint8), y=np.zeros(MB, np.uint8))
    monkeypatch.setenv(CAP_VARIABLE, "16")  # 5 MB on disk, 40 MB as float64
    err = _error(_scenario(tmp_path, "  file: d.npz", units=1))
    assert "d.npz: x would take 32 MB as float64" in err.message


def test_a_bad_cap_setting_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 4)), y=np.zeros(4))
    monkeypatch.setenv(CAP_VARIABLE, "lots")
    err = _error(_scenario(tmp_path, "  file: d.npz"))
    assert f"{CAP_VARIABLE} must be a number of megabytes" in err.message


def test_npz_arrays_of_text_or_objects_are_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "t.npz", x=np.array([["a", "b"]]), y=np.zeros(1))
    assert "holds text" in _error(_scenario(tmp_path, "  file: t.npz", inputs=2)).message
    np.savez(tmp_path / "o.npz", x=np.array([[1, None]], dtype=object), y=np.zeros(1))
    assert "Python objects" in _error(_scenario(tmp_path, "  file: o.npz", inputs=2)).message
