"""Data sets: inline arrays, files (.csv, .npy, .npz without pickle) and generators."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ScenarioError
from ..safetext import clip, quote
from . import glyphs
from .arrayfile import ArrayFileError, Cap, data_cap, human, load_npy, load_npz, npz_members
from .csvfile import CsvError, read_csv
from .reader import Reader
from .types import Dataset
from .yamlio import Located

__all__ = ["GENERATORS", "Dataset", "load_dataset"]

F64 = NDArray[np.float64]

DATA_KEYS = (
    "generator",
    "inline",
    "file",
    "labels",
    "target",
    "features",
    "n",
    "noise",
    "classes",
    "size",
    "factor",
    "validation_split",
)
# What each generator accepts besides validation_split.
GENERATOR_KEYS: dict[str, tuple[str, ...]] = {
    "xor": ("n", "noise"),
    "and": ("n", "noise"),
    "or": ("n", "noise"),
    "circles": ("n", "noise", "factor"),
    "moons": ("n", "noise"),
    "spirals": ("n", "noise", "classes"),
    "blobs": ("n", "noise", "classes"),
    "sine": ("n", "noise"),
    "glyphs": ("n", "noise", "size"),
}
# 5·10⁷ pixels are 400 MB of float64 (drawing, chunk by chunk, adds a few MB):
# 63,775 glyphs of 28×28, more than MNIST's 60,000 training images.
MAX_GLYPH_VALUES = 50_000_000
CLASSIFICATION_LOSSES = (
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)


def _truth_table(op: Callable[[Any, Any], Any]) -> Callable[..., tuple[F64, F64]]:
    def make(rng: np.random.Generator, n: int | None = None, noise: float = 0.0) -> tuple[F64, F64]:
        corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
        if n is None:
            x = corners
        else:
            x = corners[rng.integers(0, 4, n)]
        y = op(x[:, 0] > 0.5, x[:, 1] > 0.5).astype(np.float64)[:, None]
        if noise:
            x = x + noise * rng.standard_normal(x.shape)
        return x, y

    return make


def _circles(
    rng: np.random.Generator, n: int = 200, noise: float = 0.05, factor: float = 0.5
) -> tuple[F64, F64]:
    labels = rng.integers(0, 2, n)
    angle = rng.uniform(0, 2 * math.pi, n)
    radius = np.where(labels == 1, factor, 1.0)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    x += noise * rng.standard_normal(x.shape)
    return x, labels.astype(np.float64)[:, None]


def _moons(rng: np.random.Generator, n: int = 200, noise: float = 0.1) -> tuple[F64, F64]:
    labels = rng.integers(0, 2, n)
    t = rng.uniform(0, math.pi, n)
    x = np.where(
        labels[:, None] == 0,
        np.stack([np.cos(t), np.sin(t)], axis=1),
        np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1),
    )
    x += noise * rng.standard_normal(x.shape)
    return x, labels.astype(np.float64)[:, None]


def _spirals(
    rng: np.random.Generator, n: int = 300, noise: float = 0.1, classes: int = 2
) -> tuple[F64, F64]:
    labels = rng.integers(0, classes, n)
    t = rng.uniform(0.0, 1.0, n)
    angle = 4.0 * t + labels * (2 * math.pi / classes)
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    x += noise * 0.2 * rng.standard_normal(x.shape)
    ids = labels.astype(np.float64)
    return x, ids[:, None] if classes == 2 else ids


def _blobs(
    rng: np.random.Generator, n: int = 300, noise: float = 1.0, classes: int = 3
) -> tuple[F64, F64]:
    centres = rng.uniform(-5, 5, (classes, 2))
    labels = rng.integers(0, classes, n)
    x = centres[labels] + noise * rng.standard_normal((n, 2))
    ids = labels.astype(np.float64)
    return x, ids[:, None] if classes == 2 else ids


def _sine(rng: np.random.Generator, n: int = 200, noise: float = 0.05) -> tuple[F64, F64]:
    x = rng.uniform(-math.pi, math.pi, (n, 1))
    return x, np.sin(x) + noise * rng.standard_normal(x.shape)


def _glyphs(
    rng: np.random.Generator, n: int = 2000, noise: float = 0.1, size: int = 28
) -> tuple[F64, F64]:
    x, labels = glyphs.draw(rng, n, size=size, noise=noise)
    return x.reshape(n, -1), labels.astype(np.float64)


GENERATORS: dict[str, Callable[..., tuple[F64, F64]]] = {
    "xor": _truth_table(np.logical_xor),
    "and": _truth_table(np.logical_and),
    "or": _truth_table(np.logical_or),
    "circles": _circles,
    "moons": _moons,
    "spirals": _spirals,
    "blobs": _blobs,
    "sine": _sine,
    "glyphs": _glyphs,
}


def _fail(doc: Located, path: str, message: str) -> ScenarioError:
    return doc.error(path, message)


def _generate(doc: Located, spec: dict[str, Any], seed: int) -> tuple[F64, F64, str]:
    r = Reader(doc)
    name = r.choice(spec["generator"], "data.generator", tuple(GENERATORS))
    allowed = GENERATOR_KEYS[name]
    kwargs: dict[str, Any] = {}
    for key in ("n", "noise", "classes", "size", "factor"):
        if key not in spec:
            continue
        path = f"data.{key}"
        if key not in allowed:
            raise _fail(
                doc, path, f"the {name} generator takes no '{key}'; it takes {', '.join(allowed)}"
            )
        if key == "n":
            kwargs[key] = r.integer(spec[key], path, minimum=1)
            if kwargs[key] > 1_000_000:
                raise _fail(doc, path, "at most 1,000,000 samples can be generated")
        elif key == "classes":
            kwargs[key] = r.integer(spec[key], path, minimum=2)
        elif key == "size":
            kwargs[key] = r.integer(spec[key], path)
            if kwargs[key] not in glyphs.SIZES:
                raise _fail(
                    doc, path, f"glyphs come in sizes {' and '.join(map(str, glyphs.SIZES))}"
                )
        else:
            kwargs[key] = r.number(spec[key], path, low=0.0)
    if name == "glyphs" and "n" in kwargs:
        pixels = kwargs.get("size", 28) ** 2
        if kwargs["n"] * pixels > MAX_GLYPH_VALUES:
            raise _fail(
                doc,
                "data.n",
                f"at most {MAX_GLYPH_VALUES // pixels:,} glyphs of {pixels} pixels can be drawn",
            )
    with np.errstate(over="ignore", invalid="ignore"):  # noise: 1e308 → inf, refused below
        x, y = GENERATORS[name](np.random.default_rng([seed, 1]), **kwargs)
    return x, y, f"generator {name}"


def _numeric(array: Any, doc: Located, key: str, what: str, cap: Cap | None = None) -> F64:
    """``array`` as float64; bytes or float32 on disk grow 8 or 2 times: that counts too."""
    if array.dtype.kind not in "biuf":
        kind = "text" if array.dtype.kind in "SU" else f"values of type {array.dtype}"
        raise _fail(doc, key, f"{what} holds {kind}; it must hold numbers only")
    if cap is not None and array.size * 8 > cap.nbytes and array.dtype != np.float64:
        raise _fail(
            doc,
            key,
            f"{what} would take {human(array.size * 8)} as float64, over the "
            f"{human(cap.nbytes)} cap on data; {cap.how_to_raise()}",
        )
    return np.asarray(array, dtype=np.float64)


def _file_path(r: Reader, spec: dict[str, Any], key: str, base_dir: Path) -> tuple[str, Path]:
    r.text(spec[key], f"data.{key}")
    name = clip(spec[key])
    try:
        path = (base_dir / spec[key]).resolve()
        found = path.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long for the system
        raise r.fail(f"data.{key}", f"{quote(spec[key])} is not a usable file name") from None
    if not found:
        raise r.fail(
            f"data.{key}",
            f"{clip(name)} does not exist next to the scenario ({clip(str(path), 200)}); "
            "check the path",
        )
    return name, path


def _names(r: Reader, value: object, key: str) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(t, str) for t in names):
        raise r.fail(key, "expected a column name or a list of column names")
    return names


def _load_file(
    r: Reader, spec: dict[str, Any], base_dir: Path
) -> tuple[F64, F64, str, tuple[str, ...] | None]:
    """(inputs, labels, source, class names) from ``data.file``."""
    name, path = _file_path(r, spec, "file", base_dir)
    suffix = path.suffix.lower()
    if suffix != ".csv":
        for key in ("target", "features"):
            if key in spec:
                raise r.fail(f"data.{key}", f"'{key}' applies to .csv files only; remove it")
    if suffix != ".npy" and "labels" in spec:
        raise r.fail("data.labels", "labels: goes with a .npy file of inputs; remove it")
    try:
        cap = data_cap()
        if suffix == ".csv":
            if "target" not in spec:
                raise r.fail("data", "a .csv file needs target: naming the label column or columns")
            targets = _names(r, spec["target"], "data.target")
            features = _names(r, spec["features"], "data.features") if "features" in spec else None
            try:
                table = read_csv(path, name, targets, features, cap)
            except CsvError as err:
                raise r.fail(err.key, err.message) from None
            return table.x, table.y, name, table.class_names
        if suffix == ".npz":
            members = npz_members(path, name)
            if not {"x", "y"} <= set(members):
                held = ", ".join(quote(m, 20) for m in sorted(members)[:10]) or "none"
                raise r.fail("data.file", f"{name} must hold arrays named x and y; it holds {held}")
            arrays = load_npz(path, name, ["x", "y"], cap)
            x = _numeric(arrays["x"], r.doc, "data.file", f"{name}: x", cap)
            y = _numeric(arrays["y"], r.doc, "data.file", f"{name}: y", cap)
            return x, y, name, None
        if suffix == ".npy":
            if "labels" not in spec:
                raise r.fail(
                    "data", "a .npy file holds the inputs only; add labels: with the .npy of labels"
                )
            x = _numeric(load_npy(path, name, cap), r.doc, "data.file", name, cap)
            label_name, label_path = _file_path(r, spec, "labels", base_dir)
            try:
                raw = load_npy(label_path, label_name, cap)
            except ArrayFileError as err:
                raise r.fail("data.labels", str(err)) from None
            return x, _numeric(raw, r.doc, "data.labels", label_name, cap), name, None
    except ArrayFileError as err:
        raise r.fail("data.file", str(err)) from None
    raise r.fail(
        "data.file",
        f"cannot read {quote(suffix, 12) if suffix else 'files without a suffix'}; "
        "use .csv, .npy or .npz",
    )


def _word_classes(doc: Located, names: tuple[str, ...], units: int) -> None:
    """Refuse a last layer too narrow for the classes a label column of words names."""
    if len(names) <= units or (units == 1 and len(names) == 2):
        return
    listed = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    fix = (
        f"give it {len(names)} units with activation: softmax and "
        "loss: sparse_categorical_crossentropy"
        if units == 1
        else f"give it {len(names)} units"
    )
    raise _fail(
        doc,
        "model.layers",
        f"the labels name {len(names)} classes ({listed}) but the last layer has "
        f"{units} unit{'s' if units > 1 else ''}; {fix}",
    )


def _labels(
    doc: Located,
    y: F64,
    n: int,
    units: int,
    loss: str,
    where: str,
    class_names: tuple[str, ...] | None = None,
) -> tuple[F64, int | None]:
    """Shape labels as (samples, units): class ids become one-hot rows.

    ``where`` is the key path the labels came from, for errors; ``class_names``
    are the names of the ids when the labels were words.
    """
    if class_names is not None:
        _word_classes(doc, class_names, units)
    if y.ndim == 2 and y.shape[1] == 1 and units > 1:
        y = y[:, 0]
    if y.ndim == 1:
        if units == 1:
            return y[:, None], None
        if loss in CLASSIFICATION_LOSSES or class_names is not None:
            ids = y
            if not np.all(ids == np.round(ids)) or ids.min() < 0:
                raise _fail(doc, where, "class labels must be whole numbers from 0 up")
            top = int(ids.max())
            if top >= units:
                raise _fail(
                    doc,
                    "model.layers",
                    f"the labels go up to class {top} but the last layer has {units} units; "
                    f"give it {top + 1} units",
                )
            one_hot = np.zeros((n, units))
            one_hot[np.arange(n), ids.astype(int)] = 1.0
            return one_hot, units
        raise _fail(
            doc,
            where,
            f"the labels have 1 column but the last layer has {units} units; make them match",
        )
    if y.ndim != 2:
        raise _fail(doc, where, f"labels must be a list or a table, got {y.ndim} dimensions")
    if y.shape[1] != units:
        raise _fail(
            doc,
            where,
            f"the labels have {y.shape[1]} columns but the last layer has {units} units; make them match",
        )
    return y, None


def load_dataset(
    doc: Located,
    raw: Any,
    base_dir: Path,
    seed: int,
    inputs: int,
    units: int,
    loss: str,
    inputs_key: str = "model.inputs",
) -> Dataset:
    """Read the ``data:`` block and fit its arrays to the model's input and output widths."""
    r = Reader(doc)
    spec = r.mapping(raw, "data", DATA_KEYS)
    sources = [k for k in ("generator", "inline", "file") if k in spec]
    if len(sources) != 1:
        raise _fail(doc, "data", "give exactly one of generator:, inline: or file:")
    if sources[0] != "generator":
        for key in ("n", "noise", "classes", "size", "factor"):
            if key in spec:
                raise _fail(doc, f"data.{key}", f"'{key}' applies to generators only; remove it")
    if sources[0] != "file":
        for key in ("target", "labels", "features"):
            if key in spec:
                raise _fail(doc, f"data.{key}", f"'{key}' applies to file: only; remove it")
    class_names: tuple[str, ...] | None = None
    if sources[0] == "generator":
        x, y, source = _generate(doc, spec, seed)
    elif sources[0] == "inline":
        block = r.mapping(spec["inline"], "data.inline", ("x", "y"), ("x", "y"))
        x = _numeric_list(doc, block["x"], "data.inline.x")
        y = _numeric_list(doc, block["y"], "data.inline.y")
        source = "inline"
    else:
        x, y, source, class_names = _load_file(r, spec, base_dir)
    # the key paths errors about the inputs and the labels point at
    x_path = {"inline": "data.inline.x", "file": "data.file"}.get(sources[0], "data")
    y_path = {"inline": "data.inline.y", "file": "data.file"}.get(sources[0], "data")
    if "labels" in spec:
        y_path = "data.labels"
    elif class_names is not None:
        y_path = "data.target"
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise _fail(
            doc, x_path, f"inputs must be a table of samples × features, got {x.ndim} dimensions"
        )
    n = x.shape[0]
    if n == 0:
        raise _fail(doc, x_path, "the data set is empty; give at least one sample")
    if x.shape[1] != inputs:
        if inputs_key == "model.inputs":
            said = f"model.inputs is {inputs}"
        else:
            said = f"model.input_shape holds {inputs} numbers a sample"
        raise _fail(
            doc,
            inputs_key,
            f"the data has {x.shape[1]} input features but {said}; make them match",
        )
    if y.shape[0] != n:
        raise _fail(
            doc, x_path, f"there are {n} input rows but {y.shape[0]} labels; give one label per row"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise _fail(doc, x_path, "the data holds NaN or infinite values; clean them out")
    y, classes = _labels(doc, y, n, units, loss, y_path, class_names)
    if loss in CLASSIFICATION_LOSSES and (y.min() < 0 or y.max() > 1):
        raise _fail(
            doc,
            "loss",
            f"{loss} needs labels between 0 and 1; use mean_squared_error for other targets",
        )
    split = r.number(spec.get("validation_split", 0.0), "data.validation_split", low=0.0, high=0.9)
    n_val = int(n * split)
    if split and n_val == 0:
        raise _fail(doc, "data.validation_split", f"{split} of {n} samples is less than one sample")
    cut = n - n_val
    return Dataset(
        x_train=np.ascontiguousarray(x[:cut]),
        y_train=np.ascontiguousarray(y[:cut]),
        x_val=np.ascontiguousarray(x[cut:]),
        y_val=np.ascontiguousarray(y[cut:]),
        source=source,
        classes=classes,
        class_names=class_names,
    )


def _numeric_list(doc: Located, value: Any, path: str) -> F64:
    if not isinstance(value, list) or not value:
        raise _fail(doc, path, "expected a non-empty list of rows of numbers")
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(doc, path, "expected rows of numbers, all of the same length") from None
    return array
