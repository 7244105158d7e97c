"""The input plane of a two-input network: its output over a grid of inputs.

What the decision-boundary pane draws. The grid spans the data's range (training
and validation samples) plus a margin; one batched forward pass of its points
gives the network's output there (the backend's own ``predict``), or a hidden
layer's activations (a NumPy forward of the host weights: ``predict`` stops at
the last layer). The data's points, their labels and the range are worked out
once per run; maps are cached per grid size and layer for the weights they were
computed from, so asking again for an unchanged network computes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..maths import activations
from ..runview import MAX_MAP_POINTS, InputMap, MapKind, PlanePoints
from ..spec.scenario import LayerSpec, Scenario

MARGIN = 0.1  # of the data's extent, on each side
CLASS_LOSSES = (
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)
Range = tuple[float, float]
Predict = Callable[[NDArray[np.float64]], tuple[NDArray[Any], NDArray[Any]]]


def needs_two_inputs(scenario: Scenario) -> str | None:
    """The sentence that says why a network has no input plane to draw, or None."""
    if scenario.inputs == 2:
        other = next((layer for layer in scenario.layers if layer.type != "dense"), None)
        if other is None:
            return None
        return (
            f"The input plane is drawn for Dense networks; {scenario.name}'s layer "
            f"{other.name} is {other.type}, so there is no decision boundary to draw here."
        )
    return (
        f"The input plane needs a network with two inputs; {scenario.name} has "
        f"{scenario.inputs:,}, so there is no decision boundary to draw."
    )


def plane_range(x: NDArray[np.float64], margin: float = MARGIN) -> tuple[Range, Range]:
    """The ranges of the two inputs over samples ``x`` (n, 2), widened by ``margin`` each side."""
    out: list[Range] = []
    for column in range(2):
        values = x[:, column][np.isfinite(x[:, column])] if len(x) else np.zeros(0)
        lo, hi = (float(values.min()), float(values.max())) if values.size else (-1.0, 1.0)
        pad = (hi - lo) * margin if hi > lo else 1.0
        out.append((lo - pad, hi + pad))
    return out[0], out[1]


def fit_grid(cols: int, rows: int, cap: int = MAX_MAP_POINTS) -> tuple[int, int]:
    """``cols``×``rows`` scaled down, keeping its shape, to at most ``cap`` points."""
    cols, rows = max(1, cols), max(1, rows)
    if cols * rows <= cap:
        return cols, rows
    scale = math.sqrt(cap / (cols * rows))
    return max(1, int(cols * scale)), max(1, int(rows * scale))


def grid_inputs(x_range: Range, y_range: Range, cols: int, rows: int) -> NDArray[np.float64]:
    """The grid's cell centres as inputs (rows·cols, 2), row by row from the top."""
    (x_lo, x_hi), (y_lo, y_hi) = x_range, y_range
    xs = x_lo + (np.arange(cols) + 0.5) * (x_hi - x_lo) / cols
    ys = y_hi - (np.arange(rows) + 0.5) * (y_hi - y_lo) / rows
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def output_classes(scenario: Scenario) -> int:
    """How many classes the network tells apart (2 for one sigmoid unit), 0 for regression."""
    last = scenario.layers[-1]
    classifier = scenario.loss in CLASS_LOSSES or last.activation == "softmax"
    if not classifier:
        return 0
    return 2 if last.units == 1 else last.units


def point_labels(y: NDArray[np.float64], classes: int) -> NDArray[np.float64]:
    """Each sample's class id (targets one-hot, or one 0/1 column), or its first target."""
    if len(y) == 0:
        return np.zeros(0)
    labels: NDArray[np.float64]
    if classes and y.shape[1] > 1:
        labels = np.argmax(y, axis=1).astype(np.float64)
    elif classes:
        labels = (y[:, 0] > 0.5).astype(np.float64)
    else:
        labels = np.asarray(y[:, 0], dtype=np.float64)
    return labels


def dense_forward(
    layers: Sequence[LayerSpec], params: Mapping[str, NDArray[Any]], x: NDArray[Any], upto: int
) -> NDArray[Any]:
    """Layer ``upto``'s activations ``a`` (n, units) for inputs ``x`` (n, inputs), in NumPy."""
    a = np.asarray(x, dtype=params[f"{layers[0].name}.kernel"].dtype)
    for layer in layers[: upto + 1]:
        z = a @ params[f"{layer.name}.kernel"]
        if layer.use_bias:
            z = z + params[f"{layer.name}.bias"]
        a = activations.get_activation(layer.activation).forward(z)
    return a


def value_scale(
    activation: str, values: NDArray[np.float64], targets: NDArray[np.float64] | None = None
) -> tuple[Range, float]:
    """The colour scale's ends and middle for a unit's values: the activation's own range
    where it has one, else what the values (and a regression's ``targets``) span."""
    if activation in ("sigmoid", "softmax", "hard_sigmoid"):
        return (0.0, 1.0), 0.5
    if activation in ("tanh", "softsign"):
        return (-1.0, 1.0), 0.0
    finite = values[np.isfinite(values)]
    if targets is not None and targets.size:
        finite = np.concatenate([finite, targets[np.isfinite(targets)]])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if targets is not None:  # a regression: coloured about the middle of what it spans
        if hi <= lo:
            lo, hi = lo - 1.0, hi + 1.0
        return (lo, hi), (lo + hi) / 2
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi <= lo:
        hi = lo + 1.0
    return (lo, hi), 0.0


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


class InputMaps:
    """One run's input maps: the points and the range worked out once, the maps of the
    weights held now cached by (cols, rows, layer).

    Weights are replaced, never written in place (see the backends), so the
    parameter arrays themselves say whether a cached map is still the network's.
    ``computed`` counts the forward passes of a grid (tests read it).
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        data = scenario.data
        self.classes = output_classes(scenario)
        both = np.concatenate([data.x_train, data.x_val]) if len(data.x_val) else data.x_train
        self.x_range, self.y_range = plane_range(both)
        self.train = PlanePoints(
            np.arange(len(data.x_train), dtype=np.int64),
            data.x_train,
            point_labels(data.y_train, self.classes),
        )
        self.validation = PlanePoints(
            np.arange(len(data.x_val), dtype=np.int64),
            data.x_val,
            point_labels(data.y_val, self.classes),
        )
        self.computed = 0
        self._cache: dict[tuple[int, int, int], tuple[tuple[Any, ...], InputMap]] = {}

    def get(
        self,
        step_index: int,
        params: Mapping[str, Any],
        predict: Predict,
        host_params: Callable[[], Mapping[str, NDArray[Any]]],
        cols: int,
        rows: int,
        layer: int | None = None,
    ) -> InputMap:
        """The map of ``layer`` (default the last) for the weights ``params`` (backend
        arrays, compared by identity); ``predict`` runs the network, ``host_params`` gives
        the weights as NumPy arrays for a hidden layer's forward pass."""
        last = len(self.scenario.layers) - 1
        index = last if layer is None else min(max(layer, 0), last)
        cols, rows = fit_grid(cols, rows)
        key = (cols, rows, index)
        weights = tuple(params.values())
        cached = self._cache.get(key)
        if cached is not None and _same(cached[0], weights):
            return cached[1]
        # the weights moved on: maps of the old ones are never asked for again
        self._cache = {k: v for k, v in self._cache.items() if _same(v[0], weights)}
        found = self._compute(step_index, predict, host_params, cols, rows, index)
        self._cache[key] = (weights, found)
        return found

    def _compute(
        self,
        step_index: int,
        predict: Predict,
        host_params: Callable[[], Mapping[str, NDArray[Any]]],
        cols: int,
        rows: int,
        index: int,
    ) -> InputMap:
        self.computed += 1
        layers = self.scenario.layers
        grid = grid_inputs(self.x_range, self.y_range, cols, rows)
        with np.errstate(all="ignore"):
            if index == len(layers) - 1:
                a = predict(grid)[1]
            else:
                a = dense_forward(layers, host_params(), grid, index)
        values = np.asarray(a, dtype=np.float64).reshape(rows, cols, -1)
        values.flags.writeable = False
        spec = layers[index]
        output = index == len(layers) - 1
        kind: MapKind = "classes" if output and self.classes and spec.units > 1 else "value"
        targets = None
        if output and not self.classes:
            targets = np.concatenate([self.train.labels, self.validation.labels])
        value_range, value_mid = value_scale(spec.activation, values, targets)
        if output and self.classes == 2 and spec.units == 1 and spec.activation != "sigmoid":
            value_mid = 0.0  # a logit: the boundary is at 0
        names = self.scenario.data.class_names
        return InputMap(
            step_index=step_index,
            layer_index=index,
            layer_name=spec.name,
            activation=spec.activation,
            kind=kind,
            values=values,
            x_range=self.x_range,
            y_range=self.y_range,
            value_range=value_range,
            value_mid=value_mid,
            classes=self.classes,
            class_names=tuple(names) if names else tuple(str(c) for c in range(self.classes)),
            train=self.train,
            validation=self.validation,
            is_output=output,
        )
