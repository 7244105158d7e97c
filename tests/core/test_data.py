"""Data sets: every generator, validation splits, files next to the scenario, label forms."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from backprop_tui.core import load_scenario
from backprop_tui.core.spec import glyphs
from backprop_tui.core.spec.data import Dataset


def _scenario(
    folder: Path,
    data: str,
    inputs: int = 2,
    units: int = 1,
    loss: str | None = None,
    name: str = "data.yaml",
) -> Path:
    if loss is None:
        loss = "binary_crossentropy" if units == 1 else "categorical_crossentropy"
    activation = "sigmoid" if units == 1 else "softmax"
    if loss in ("mse", "mean_squared_error"):
        activation = "linear"
    path = folder / name
    path.write_text(
        f"""
seed: 3
data:
{data}
model:
  inputs: {inputs}
  layers:
    - {{name: out, units: {units}, activation: {activation}}}
loss: {loss}
"""
    )
    return path


def _load(folder: Path, data: str, **kwargs: object) -> Dataset:
    return load_scenario(_scenario(folder, data, **kwargs)).data  # type: ignore[arg-type]


def _all(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([data.x_train, data.x_val]), np.concatenate([data.y_train, data.y_val])


# -------------------------------------------------------------------- generators
@pytest.mark.parametrize(
    ("name", "rule"),
    [("xor", np.logical_xor), ("and", np.logical_and), ("or", np.logical_or)],
)
def test_truth_tables(tmp_path: Path, name: str, rule: np.ufunc) -> None:
    corners = _load(tmp_path, f"  generator: {name}")
    # with no n, the four corners of the truth table
    assert corners.x_train.shape == (4, 2) and corners.y_train.shape == (4, 1)
    assert sorted(map(tuple, corners.x_train.tolist())) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    expected = rule(corners.x_train[:, 0] > 0.5, corners.x_train[:, 1] > 0.5)
    np.testing.assert_array_equal(corners.y_train[:, 0], expected.astype(float))
    many = _load(tmp_path, f"  generator: {name}\n  n: 50")
    assert many.x_train.shape == (50, 2)
    assert set(np.unique(many.x_train)) <= {0.0, 1.0}
    noisy = _load(tmp_path, f"  generator: {name}\n  n: 50\n  noise: 0.1")
    assert not set(np.unique(noisy.x_train)) <= {0.0, 1.0}
    # the labels still follow the corner each noisy point came from
    corner = np.round(noisy.x_train) > 0.5
    np.testing.assert_array_equal(noisy.y_train[:, 0], rule(corner[:, 0], corner[:, 1]))


def test_circles(tmp_path: Path) -> None:
    data = _load(tmp_path, "  generator: circles\n  n: 120\n  noise: 0\n  factor: 0.3")
    assert data.x_train.shape == (120, 2) and data.y_train.shape == (120, 1)
    radius = np.hypot(data.x_train[:, 0], data.x_train[:, 1])
    inner = data.y_train[:, 0] == 1
    np.testing.assert_allclose(radius[inner], 0.3)
    np.testing.assert_allclose(radius[~inner], 1.0)
    assert 0 < inner.sum() < 120


def test_moons(tmp_path: Path) -> None:
    data = _load(tmp_path, "  generator: moons\n  n: 100\n  noise: 0")
    assert data.x_train.shape == (100, 2)
    upper = data.y_train[:, 0] == 0
    x, y = data.x_train[:, 0], data.x_train[:, 1]
    # the upper moon lies on the unit circle, the lower one on a circle centred at (1, 0.5)
    np.testing.assert_allclose(np.hypot(x[upper], y[upper]), 1.0)
    np.testing.assert_allclose(np.hypot(x[~upper] - 1.0, y[~upper] - 0.5), 1.0)
    assert np.all(y[upper] >= 0) and np.all(y[~upper] <= 0.5)


@pytest.mark.parametrize("generator", ["spirals", "blobs"])
@pytest.mark.parametrize("classes", [2, 3, 5])
def test_multiclass_generators(tmp_path: Path, generator: str, classes: int) -> None:
    units = 1 if classes == 2 else classes
    data = _load(tmp_path, f"  generator: {generator}\n  n: 90\n  classes: {classes}", units=units)
    assert data.x_train.shape == (90, 2)
    assert data.y_train.shape == (90, units)
    if classes == 2:
        assert set(np.unique(data.y_train)) == {0.0, 1.0}
    else:
        # class ids became one-hot rows, each class present
        assert data.classes == classes
        np.testing.assert_array_equal(data.y_train.sum(axis=1), 1.0)
        assert set(np.unique(data.y_train)) == {0.0, 1.0}
        assert np.all(data.y_train.sum(axis=0) > 0)


def test_blobs_form_clusters(tmp_path: Path) -> None:
    data = _load(tmp_path, "  generator: blobs\n  n: 300\n  classes: 3\n  noise: 0.05", units=3)
    ids = data.y_train.argmax(axis=1)
    centres = np.array([data.x_train[ids == c].mean(axis=0) for c in range(3)])
    spread = max(data.x_train[ids == c].std(axis=0).max() for c in range(3))
    assert spread < 0.1
    # nearest centre recovers every label
    nearest = np.argmin(((data.x_train[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    np.testing.assert_array_equal(nearest, ids)


def test_sine_is_a_regression_set(tmp_path: Path) -> None:
    clean = _load(tmp_path, "  generator: sine\n  n: 80\n  noise: 0", inputs=1, loss="mse")
    assert clean.x_train.shape == (80, 1) and clean.y_train.shape == (80, 1)
    assert clean.classes is None
    np.testing.assert_allclose(clean.y_train, np.sin(clean.x_train), rtol=0, atol=1e-15)
    assert np.all(np.abs(clean.x_train) <= math.pi)
    noisy = _load(tmp_path, "  generator: sine\n  n: 80\n  noise: 0.2", inputs=1, loss="mse")
    residual = noisy.y_train - np.sin(noisy.x_train)
    assert 0.1 < residual.std() < 0.3


@pytest.mark.parametrize("size", [8, 28])
def test_glyphs(tmp_path: Path, size: int) -> None:
    n = 400
    data = _load(
        tmp_path, f"  generator: glyphs\n  n: {n}\n  size: {size}", inputs=size * size, units=10
    )
    x, y = data.x_train, data.y_train
    assert x.shape == (n, size * size) and y.shape == (n, 10)
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.dtype == np.float64
    np.testing.assert_array_equal(y.sum(axis=1), 1.0)
    assert data.classes == 10
    ids = y.argmax(axis=1)
    assert set(ids.tolist()) == set(range(10))
    # the images carry their labels: class means classify held-out images well
    train, test = slice(0, 300), slice(300, n)
    centres = np.array([x[train][ids[train] == c].mean(axis=0) for c in range(10)])
    distance = ((x[test][:, None, :] - centres[None]) ** 2).sum(axis=2)
    assert np.mean(distance.argmin(axis=1) == ids[test]) > 0.3  # chance is 0.1
    # no two images the same: random shifts, scales and noise
    assert len(np.unique(x.round(6), axis=0)) == n


def test_glyphs_are_drawn_in_chunks_with_the_numbers_of_one_draw() -> None:
    # drawn all at once before glyphs came in chunks of 256; these are those numbers
    images, labels = glyphs.draw(np.random.default_rng([3, 1]), 600, size=28, noise=0.1)
    assert labels[:5].tolist() == [9, 2, 5, 4, 7]
    assert images.sum() == pytest.approx(68549.77273896617, rel=1e-12)
    assert images[599].sum() == pytest.approx(110.25584664920595, rel=1e-12)
    assert images[256, 14, 14] == pytest.approx(0.422772278891277, rel=1e-12)


def test_glyphs_load_within_twice_their_size(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        data = _load(tmp_path, "  generator: glyphs\n  n: 3000", inputs=784, units=10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = data.x_train.nbytes + data.y_train.nbytes
    assert peak < 2 * size, f"peak {peak / 2**20:.0f} MB for {size / 2**20:.0f} MB of data"


def test_glyphs_default_to_mnist_shape(tmp_path: Path) -> None:
    data = _load(tmp_path, "  generator: glyphs\n  n: 20", inputs=784, units=10)
    assert data.x_train.shape == (20, 784)


# --------------------------------------------------------- determinism and splits
GENERATOR_CASES = [
    ("xor", "n: 30\n  noise: 0.1", 2, 1),
    ("circles", "n: 30", 2, 1),
    ("moons", "n: 30", 2, 1),
    ("spirals", "n: 30\n  classes: 3", 2, 3),
    ("blobs", "n: 30\n  classes: 4", 2, 4),
    ("glyphs", "n: 30\n  size: 8", 64, 10),
]


@pytest.mark.parametrize(("name", "options", "inputs", "units"), GENERATOR_CASES)
def test_generators_are_deterministic_by_seed(
    tmp_path: Path, name: str, options: str, inputs: int, units: int
) -> None:
    path = _scenario(tmp_path, f"  generator: {name}\n  {options}", inputs=inputs, units=units)
    first, again = load_scenario(path).data, load_scenario(path).data
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    other = load_scenario(path, seed=4).data
    assert not np.array_equal(first.x_train, other.x_train)


def test_validation_split_holds_out_the_last_samples(tmp_path: Path) -> None:
    whole = _load(tmp_path, "  generator: moons\n  n: 50")
    split = _load(tmp_path, "  generator: moons\n  n: 50\n  validation_split: 0.3")
    assert not whole.has_validation and split.has_validation
    assert (len(split.x_train), len(split.x_val)) == (35, 15)
    # Keras' validation_split: the last samples, before any shuffling
    np.testing.assert_array_equal(split.x_train, whole.x_train[:35])
    np.testing.assert_array_equal(split.x_val, whole.x_train[35:])
    np.testing.assert_array_equal(split.y_val, whole.y_train[35:])


def test_validation_split_rounds_down(tmp_path: Path) -> None:
    data = _load(tmp_path, "  generator: circles\n  n: 11\n  validation_split: 0.25")
    assert (len(data.x_train), len(data.x_val)) == (9, 2)


# ------------------------------------------------------------------------- files
def test_csv_with_one_target_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "scenarios"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "points.csv").write_text("label,a,b\n1,0.5,-1\n0,2.25,3\n1,-4,0.125\n")
    monkeypatch.chdir(tmp_path)  # the path is relative to the scenario, not to here
    data = _load(folder, "  file: data/points.csv\n  target: label")
    np.testing.assert_array_equal(data.x_train, [[0.5, -1], [2.25, 3], [-4, 0.125]])
    np.testing.assert_array_equal(data.y_train, [[1], [0], [1]])
    assert data.source.endswith("points.csv")


def test_csv_with_several_target_columns_and_class_ids(tmp_path: Path) -> None:
    (tmp_path / "multi.csv").write_text("x1,t1,x2,t2\n1,0,2,1\n3,1,4,0\n")
    data = _load(
        tmp_path, "  file: multi.csv\n  target: [t1, t2]", units=2, loss="mse", name="m.yaml"
    )
    np.testing.assert_array_equal(data.x_train, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(data.y_train, [[0, 1], [1, 0]])
    (tmp_path / "ids.csv").write_text("x1,x2,class\n1,2,2\n3,4,0\n5,6,1\n")
    classes = _load(tmp_path, "  file: ids.csv\n  target: class", units=3)
    np.testing.assert_array_equal(classes.y_train, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])


def test_npz_with_x_and_y(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.savez(tmp_path / "set.npz", x=x, y=np.array([0, 1, 2, 2, 1, 0]))
    data = _load(tmp_path, "  file: set.npz\n  validation_split: 0.5", units=3)
    assert data.x_train.dtype == np.float64
    np.testing.assert_array_equal(data.x_train, x[:3])
    np.testing.assert_array_equal(data.x_val, x[3:])
    np.testing.assert_array_equal(data.y_val, np.eye(3)[[2, 1, 0]])


def test_npy_with_labels(tmp_path: Path) -> None:
    (tmp_path / "arrays").mkdir()
    x = np.random.default_rng(0).normal(size=(5, 3))
    one_hot = np.eye(4)[[3, 0, 1, 1, 2]]
    np.save(tmp_path / "arrays" / "x.npy", x)
    np.save(tmp_path / "arrays" / "y.npy", one_hot)
    data = _load(tmp_path, "  file: arrays/x.npy\n  labels: arrays/y.npy", inputs=3, units=4)
    np.testing.assert_array_equal(data.x_train, x)
    np.testing.assert_array_equal(data.y_train, one_hot)
    assert data.classes is None  # they came one-hot


# ------------------------------------------------------------------ label forms
@pytest.mark.parametrize(
    "labels",
    ["[2, 0, 1, 2]", "[[2], [0], [1], [2]]", "[[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]"],
    ids=["ids", "id-column", "one-hot"],
)
def test_class_ids_and_one_hot_give_the_same_labels(tmp_path: Path, labels: str) -> None:
    x = "[[0, 1], [1, 0], [1, 1], [0, 0]]"
    for loss in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        data = _load(tmp_path, f"  inline:\n    x: {x}\n    y: {labels}", units=3, loss=loss)
        np.testing.assert_array_equal(data.y_train, np.eye(3)[[2, 0, 1, 2]])


def test_binary_labels_stay_one_column(tmp_path: Path) -> None:
    data = _load(tmp_path, "  inline: {x: [[0, 1], [1, 0]], y: [1, 0]}")
    np.testing.assert_array_equal(data.y_train, [[1], [0]])
    assert data.classes is None


def test_csv_saved_by_a_spreadsheet(tmp_path: Path) -> None:
    """A byte-order mark, CRLF line ends and spaces around the header names are all fine."""
    (tmp_path / "sheet.csv").write_bytes(b"\xef\xbb\xbfa, b ,label\r\n1,2,0\r\n3,4,1\r\n")
    data = _load(tmp_path, "  file: sheet.csv\n  target: label")
    np.testing.assert_array_equal(data.x_train, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(data.y_train, [[0], [1]])
    data = _load(tmp_path, "  file: sheet.csv\n  target: a", loss="mse")
    np.testing.assert_array_equal(data.y_train, [[1], [3]])
