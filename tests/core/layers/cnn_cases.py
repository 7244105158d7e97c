"""Small convolutional networks for the layer tests: scenarios built in memory, and a
record-by-record comparison of two runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from backprop_tui.core import Debugger, Scenario
from backprop_tui.core.spec.scenario import parse_scenario
from backprop_tui.core.spec.yamlio import load_yaml
from numpy.typing import NDArray

CONV = {"type": "conv2d", "kernel_initializer": "he_uniform"}
# Each network is (name, input_shape, layers); every one ends in a dense softmax over 3 classes.
NETWORKS: dict[str, tuple[list[int], list[dict[str, Any]]]] = {
    "valid_max": (
        [6, 6, 2],
        [
            {**CONV, "name": "conv", "filters": 3, "kernel_size": 3, "activation": "relu"},
            {"name": "pool", "type": "max_pooling2d", "pool_size": 2},
            {"name": "flat", "type": "flatten"},
        ],
    ),
    "same_stride2_avg": (
        [7, 5, 1],
        [
            {
                **CONV,
                "name": "conv",
                "filters": 2,
                "kernel_size": [3, 2],
                "strides": 2,
                "padding": "same",
                "activation": "tanh",
            },
            {
                "name": "pool",
                "type": "average_pooling2d",
                "pool_size": 3,
                "strides": 1,
                "padding": "same",
            },
            {"name": "flat", "type": "flatten"},
        ],
    ),
    "small_cnn": (  # the issue's: conv → pool → flatten → dropout → bn → dense
        [8, 8, 1],
        [
            {**CONV, "name": "conv", "filters": 4, "kernel_size": 3, "activation": "relu"},
            {"name": "pool", "type": "max_pooling2d", "pool_size": 2},
            {"name": "flat", "type": "flatten"},
            {"name": "drop", "type": "dropout", "rate": 0.3},
            {"name": "norm", "type": "batch_normalization"},
        ],
    ),
    "bn_on_images": (
        [5, 5, 2],
        [
            # No bias before batch normalization: its gradient is zero up to rounding,
            # and Adam's m̂/√v̂ of rounding noise is noise in both backends.
            {
                **CONV,
                "name": "conv",
                "filters": 3,
                "kernel_size": 2,
                "padding": "same",
                "activation": "linear",
                "use_bias": False,
            },
            {"name": "norm", "type": "batch_normalization", "momentum": 0.9},
            {"name": "drop", "type": "dropout", "rate": 0.5},
            {"name": "pool", "type": "max_pooling2d", "pool_size": 2, "padding": "same"},
            {
                "name": "conv2",
                "type": "conv2d",
                "filters": 2,
                "kernel_size": 2,
                "activation": "sigmoid",
            },
            {"name": "flat", "type": "flatten"},
            {"name": "hidden", "type": "dense", "units": 5, "activation": "gelu"},
        ],
    ),
}
SAMPLES, CLASSES = 12, 3


def scenario(
    name: str,
    optimizer: dict[str, Any] | None = None,
    batch_size: int = 4,
    seed: int = 0,
    validation: bool = False,
) -> Scenario:
    """The scenario of network ``name`` on random images and labels drawn from ``seed``."""
    shape, layers = NETWORKS[name]
    rng = np.random.default_rng([seed, 11])
    x = rng.normal(size=(SAMPLES, int(np.prod(shape)))).round(4)
    y = np.eye(CLASSES)[rng.integers(0, CLASSES, SAMPLES)]
    data: dict[str, Any] = {"inline": {"x": x.tolist(), "y": y.tolist()}}
    if validation:
        data["validation_split"] = 0.25
    doc = {
        "name": name,
        "seed": seed,
        "data": data,
        "model": {
            "input_shape": shape,
            "layers": [
                *layers,
                {"name": "out", "type": "dense", "units": CLASSES, "activation": "softmax"},
            ],
        },
        "loss": "categorical_crossentropy",
        "optimizer": optimizer or {"name": "adam", "learning_rate": 0.01},
        "metrics": ["accuracy"],
        "training": {"epochs": 3, "batch_size": batch_size},
    }
    return from_text(yaml.safe_dump(doc, sort_keys=False), f"{name}.yaml")


def from_text(text: str, file: str = "cnn.yaml") -> Scenario:
    return parse_scenario(load_yaml(text, file), Path.cwd())


def relative_error(ref: Any, got: Any) -> float:
    """max|got − ref| over the larger of the two tensors' largest entries (inf on a shape mismatch)."""
    a: NDArray[np.float64] = np.asarray(ref, dtype=np.float64)
    b: NDArray[np.float64] = np.asarray(got, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
    return 0.0 if scale == 0.0 else float(np.abs(a - b).max() / scale)


def compare(ref: Debugger, got: Debugger, steps: int) -> tuple[float, str, int]:
    """Step both runs by layer through ``steps`` training steps; the worst relative error
    over every record, parameter (moving statistics included) and epoch figure."""
    worst, where, count = 0.0, "nothing compared", 0

    def see(place: str, a: Any, b: Any) -> None:
        nonlocal worst, where, count
        count += 1
        error = relative_error(a, b)
        if error > worst or count == 1:
            worst, where = error, place

    while ref.step_index < steps:
        r, g = ref.step("layer"), got.step("layer")
        place = f"step {r.step_index + 1} {r.phase} {r.layer_name or ''}"
        assert (r.phase, r.layer_name) == (g.phase, g.layer_name)
        assert set(r.arrays) == set(g.arrays), place
        for key in r.arrays:
            see(f"{place}: {key}", r.arrays[key], g.arrays[key])
        if r.loss is not None:
            see(f"{place}: loss", r.loss, g.loss)
    for name, value in ref.params.items():
        see(f"after {steps} steps: {name}", value, got.params[name])
    for r_epoch, g_epoch in zip(ref.epoch_history, got.epoch_history, strict=True):
        for key, value in r_epoch.as_dict().items():
            see(f"epoch {r_epoch.epoch + 1}: {key}", value, g_epoch.as_dict()[key])
    return worst, where, count
