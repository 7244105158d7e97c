"""Scenario files: read, validate and turn into a :class:`Scenario`.

Every problem becomes one :class:`ScenarioError` that names the file, the line
and column, the key path and what would be accepted.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ExpressionError, ScenarioError
from ..maths import activations, initializers, losses
from .data import Dataset, load_dataset
from .expect import Expectation, parse_expectations
from .expressions import Vocabulary
from .expressions import parse as parse_expression
from .yamlio import Located, load_yaml

TOP_KEYS = (
    "name",
    "description",
    "seed",
    "data",
    "model",
    "loss",
    "optimizer",
    "metrics",
    "training",
    "breakpoints",
    "expect",
    "diagnostics",
)
LAYER_KEYS = (
    "name",
    "type",
    "units",
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel",
    "bias",
)
OPTIMIZERS: dict[str, dict[str, float | bool]] = {
    # Keras' defaults
    "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "rmsprop": {
        "learning_rate": 0.001,
        "rho": 0.9,
        "momentum": 0.0,
        "epsilon": 1e-7,
        "centered": False,
    },
}
METRICS = ("accuracy",)
# Beyond this a typo (units: 100000000) would end in an out-of-memory traceback
# when the weights are drawn; 10⁸ float64 numbers are 800 MB before Adam's slots.
MAX_PARAMS = 100_000_000
DIAGNOSTIC_KEYS = (
    "exploding_grad_norm",
    "vanishing_grad_norm",
    "dead_fraction",
    "saturated_fraction",
    "update_ratio_high",
    "update_ratio_low",
    "loss_rising_steps",
    "stop_on_nan",
    "enabled",
    "vanishing_grad_ratio",
    "report_every",
)


@dataclass(frozen=True)
class InitSpec:
    name: str
    options: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class LayerSpec:
    """One dense layer: ``z = a_prev @ kernel + bias``, ``a = activation(z)``."""

    name: str
    type: str
    inputs: int
    units: int
    activation: str
    use_bias: bool
    kernel_initializer: InitSpec
    bias_initializer: InitSpec
    kernel: NDArray[np.float64] | None = None
    bias: NDArray[np.float64] | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        if self.use_bias:
            return (f"{self.name}.kernel", f"{self.name}.bias")
        return (f"{self.name}.kernel",)

    @property
    def param_count(self) -> int:
        return self.inputs * self.units + (self.units if self.use_bias else 0)


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    options: dict[str, float | bool]

    @property
    def learning_rate(self) -> float:
        return float(self.options["learning_rate"])


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = 1
    batch_size: int = 32
    shuffle: bool = True


@dataclass(frozen=True, eq=False)
class Scenario:
    """Everything needed to train: the network, its data, its loss and optimizer."""

    name: str
    description: str
    seed: int
    inputs: int
    layers: tuple[LayerSpec, ...]
    loss: str
    optimizer: OptimizerSpec
    metrics: tuple[str, ...]
    training: TrainingSpec
    data: Dataset
    path: str | None = None
    breakpoints: tuple[str, ...] = ()
    expect: tuple[dict[str, Any], ...] = ()
    expectations: tuple[Expectation, ...] = ()  # ``expect`` validated, see core/expect.py
    diagnostics: dict[str, float | bool] = field(default_factory=dict)

    @property
    def param_names(self) -> list[str]:
        return [name for layer in self.layers for name in layer.param_names]

    @property
    def param_count(self) -> int:
        return sum(layer.param_count for layer in self.layers)

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(len(self.data.x_train) / self.training.batch_size))


def _fmt(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Reader:
    """Typed reads of a located document, each failing with a placed error."""

    def __init__(self, doc: Located) -> None:
        self.doc = doc

    def fail(self, path: str, message: str) -> ScenarioError:
        return self.doc.error(path, message)

    def mapping(
        self, value: object, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping of keys, got {_fmt(value)}")
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = (
                    f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(allowed)}"
                )
                raise self.fail(f"{path}.{key}" if path else key, f"unknown key '{key}'; {hint}")
        for key in required:
            if key not in value:
                raise self.fail(path, f"the key '{key}' is missing; add it")
        return value

    def integer(self, value: object, path: str, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected a whole number, got {_fmt(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(path, f"expected a whole number of at least {minimum}, got {value}")
        return value

    def number(
        self,
        value: object,
        path: str,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"expected a number, got {_fmt(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise self.fail(path, f"expected a finite number, got {value}")
        if low is not None and (number < low or (low_open and number == low)):
            bound = "greater than" if low_open else "at least"
            raise self.fail(path, f"expected a number {bound} {low}, got {value}")
        if high is not None and number > high:
            raise self.fail(path, f"expected a number of at most {high}, got {value}")
        return number

    def boolean(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {_fmt(value)}")
        return value

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected text, got {_fmt(value)}")
        return value

    def choice(self, value: object, path: str, options: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in options:
            shown = _fmt(value)
            close = (
                difflib.get_close_matches(value, options, n=1, cutoff=0.6)
                if isinstance(value, str)
                else []
            )
            hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(options)}"
            raise self.fail(path, f"unknown name {shown}; {hint}")
        return value

    def matrix(self, value: object, path: str, shape: tuple[int, ...]) -> NDArray[np.float64]:
        try:
            array = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.fail(
                path, f"expected {'rows of numbers' if len(shape) == 2 else 'a list of numbers'}"
            ) from None
        if array.shape != shape:
            want = " × ".join(str(s) for s in shape)
            got = " × ".join(str(s) for s in array.shape) or "a single number"
            what = " (inputs × units)" if len(shape) == 2 else " (one per unit)"
            raise self.fail(path, f"expected shape {want}{what}, got {got}")
        if not np.isfinite(array).all():
            raise self.fail(path, "every number must be finite (no .nan or .inf)")
        return array


def _initializer(r: _Reader, value: object, path: str, default: str) -> InitSpec:
    if value is None:
        return InitSpec(default)
    if isinstance(value, str):
        return InitSpec(r.choice(value, path, initializers.NAMES))
    spec = r.mapping(
        value, path, ("name", "mean", "stddev", "minval", "maxval", "value"), ("name",)
    )
    name = r.choice(spec["name"], f"{path}.name", initializers.NAMES)
    options: dict[str, float] = {}
    for key, raw in spec.items():
        if key == "name":
            continue
        if key not in initializers.OPTIONS.get(name, set()):
            raise r.fail(f"{path}.{key}", f"the initializer {name} takes no option '{key}'")
        options[key] = r.number(raw, f"{path}.{key}")
    return InitSpec(name, options)


def _layers(r: _Reader, model: dict[str, Any]) -> tuple[int, tuple[LayerSpec, ...]]:
    inputs = r.integer(model["inputs"], "model.inputs", minimum=1)
    raw_layers = model["layers"]
    if not isinstance(raw_layers, list) or not raw_layers:
        raise r.fail("model.layers", "expected a list of at least one layer")
    layers: list[LayerSpec] = []
    width = inputs
    seen: set[str] = set()
    for i, raw in enumerate(raw_layers):
        path = f"model.layers[{i}]"
        spec = r.mapping(raw, path, LAYER_KEYS, ("units",))
        kind = r.choice(spec.get("type", "dense"), f"{path}.type", ("dense",))
        units = r.integer(spec["units"], f"{path}.units", minimum=1)
        name = r.text(spec.get("name", f"dense_{i + 1}"), f"{path}.name")
        if not name.isidentifier():
            raise r.fail(
                f"{path}.name", f"'{name}' is not usable as a layer name; use letters, digits and _"
            )
        if name in seen:
            raise r.fail(
                f"{path}.name", f"the layer name '{name}' is used twice; names must differ"
            )
        seen.add(name)
        act = spec.get("activation", "linear")
        act = activations.ALIASES.get(act, act) if isinstance(act, str) else act
        activation = r.choice(act, f"{path}.activation", tuple(activations.ACTIVATIONS))
        use_bias = r.boolean(spec.get("use_bias", True), f"{path}.use_bias")
        kernel = (
            r.matrix(spec["kernel"], f"{path}.kernel", (width, units)) if "kernel" in spec else None
        )
        bias = None
        if "bias" in spec:
            if not use_bias:
                raise r.fail(f"{path}.bias", "the layer has use_bias: false; remove bias:")
            bias = r.matrix(spec["bias"], f"{path}.bias", (units,))
        layers.append(
            LayerSpec(
                name=name,
                type=kind,
                inputs=width,
                units=units,
                activation=activation,
                use_bias=use_bias,
                kernel_initializer=_initializer(
                    r,
                    spec.get("kernel_initializer"),
                    f"{path}.kernel_initializer",
                    "glorot_uniform",
                ),
                bias_initializer=_initializer(
                    r, spec.get("bias_initializer"), f"{path}.bias_initializer", "zeros"
                ),
                kernel=kernel,
                bias=bias,
            )
        )
        if sum(layer.param_count for layer in layers) > MAX_PARAMS:
            raise r.fail(
                f"{path}.units",
                f"the network would have more than {MAX_PARAMS:,} parameters by this layer; "
                "use fewer units",
            )
        width = units
    return inputs, tuple(layers)


def _optimizer(r: _Reader, value: object) -> OptimizerSpec:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise r.fail("optimizer", f"expected an optimizer name or mapping, got {_fmt(value)}")
    if "name" not in value:
        raise r.fail("optimizer", "the key 'name' is missing; use sgd, adam or rmsprop")
    name = r.choice(str(value["name"]).lower(), "optimizer.name", tuple(OPTIMIZERS))
    defaults = OPTIMIZERS[name]
    r.mapping(value, "optimizer", ("name", *defaults))
    options = dict(defaults)
    for key, raw in value.items():
        if key == "name":
            continue
        path = f"optimizer.{key}"
        if isinstance(defaults[key], bool):
            options[key] = r.boolean(raw, path)
        elif key == "learning_rate":
            options[key] = r.number(raw, path, low=0.0, low_open=True)
        elif key in ("beta_1", "beta_2", "rho", "momentum"):
            options[key] = r.number(raw, path, low=0.0, high=1.0)
            if key != "momentum" and options[key] >= 1.0:
                raise r.fail(path, f"expected a number below 1, got {raw}")
        else:
            options[key] = r.number(raw, path, low=0.0)
    if options.get("nesterov") and not options.get("momentum"):
        raise r.fail("optimizer.nesterov", "nesterov needs a momentum above 0; set momentum: 0.9")
    return OptimizerSpec(name, options)


def _check_pairing(r: _Reader, loss: str, layers: tuple[LayerSpec, ...]) -> None:
    out = layers[-1]
    path = f"model.layers[{len(layers) - 1}].activation"
    if loss == "binary_crossentropy" and out.activation != "sigmoid":
        raise r.fail(
            path,
            f"binary_crossentropy needs probabilities per unit; use activation: sigmoid "
            f"on the last layer, not {out.activation}",
        )
    if loss in ("categorical_crossentropy", "sparse_categorical_crossentropy") and (
        out.activation != "softmax"
    ):
        raise r.fail(
            path,
            f"{loss} needs a probability per class; use activation: softmax "
            f"on the last layer, not {out.activation}",
        )
    if out.activation == "softmax" and out.units < 2:
        raise r.fail(
            path,
            "softmax over a single unit is always 1 and cannot learn; "
            "use sigmoid, or give the layer one unit per class",
        )
    for i, layer in enumerate(layers[:-1]):
        if layer.activation == "softmax":
            raise r.fail(
                f"model.layers[{i}].activation",
                "softmax is only supported on the last layer; use relu or tanh here",
            )


def _scalars_or_list(r: _Reader, value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise r.fail(path, f"expected a list, got {_fmt(value)}")
    return tuple(r.text(item, f"{path}[{i}]") for i, item in enumerate(value))


def _diagnostics(r: _Reader, value: object) -> dict[str, float | bool]:
    if value is None:
        return {}
    spec = r.mapping(value, "diagnostics", DIAGNOSTIC_KEYS)
    out: dict[str, float | bool] = {}
    for key, raw in spec.items():
        path = f"diagnostics.{key}"
        if key in ("stop_on_nan", "enabled"):
            out[key] = r.boolean(raw, path)
        elif key in ("loss_rising_steps", "report_every"):
            out[key] = r.integer(raw, path, minimum=0 if key == "loss_rising_steps" else 1)
        else:
            out[key] = r.number(raw, path, low=0.0)
    return out


def _breakpoints(r: _Reader, value: object, vocabulary: Vocabulary) -> tuple[str, ...]:
    texts = _scalars_or_list(r, value, "breakpoints")
    for i, text in enumerate(texts):
        try:
            parse_expression(text, vocabulary)
        except ExpressionError as err:
            raise r.fail(
                f"breakpoints[{i}]", f"{err.message}, at column {err.column + 1} of '{text}'"
            ) from None
    return texts


def _expect(r: _Reader, value: object) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise r.fail("expect", "expected a list of checks")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise r.fail(
                f"expect[{i}]", "expected a mapping such as {epoch: 10, accuracy: '>= 0.9'}"
            )
    return tuple(value)


def parse_scenario(doc: Located, base_dir: Path, seed: int | None = None) -> Scenario:
    """Validate the document and build the scenario (loading its data).

    ``seed``, when given, replaces the file's seed (the ``--seed`` option).
    """
    r = _Reader(doc)
    top = r.mapping(doc.value, "", TOP_KEYS, ("model", "data", "loss"))
    name = r.text(top.get("name", Path(doc.file).stem), "name")
    description = " ".join(r.text(top.get("description", ""), "description").split())
    file_seed = r.integer(top.get("seed", 0), "seed", minimum=0)
    seed = file_seed if seed is None else seed
    model = r.mapping(top["model"], "model", ("inputs", "layers"), ("inputs", "layers"))
    inputs, layers = _layers(r, model)
    loss = losses.canonical(r.text(top["loss"], "loss"))
    r.choice(loss, "loss", losses.NAMES)
    _check_pairing(r, loss, layers)
    optimizer = _optimizer(r, top.get("optimizer", "sgd"))
    metrics = _scalars_or_list(r, top.get("metrics"), "metrics")
    for i, metric in enumerate(metrics):
        r.choice(metric, f"metrics[{i}]", METRICS)
    training_raw = r.mapping(
        top.get("training", {}), "training", ("epochs", "batch_size", "shuffle")
    )
    training = TrainingSpec(
        epochs=r.integer(training_raw.get("epochs", 1), "training.epochs", minimum=1),
        batch_size=r.integer(training_raw.get("batch_size", 32), "training.batch_size", minimum=1),
        shuffle=r.boolean(training_raw.get("shuffle", True), "training.shuffle"),
    )
    data = load_dataset(r.doc, top["data"], base_dir, seed, inputs, layers[-1].units, loss)
    return Scenario(
        name=name,
        description=description,
        seed=seed,
        inputs=inputs,
        layers=layers,
        loss=loss,
        optimizer=optimizer,
        metrics=metrics,
        training=training,
        data=data,
        path=doc.file,
        breakpoints=_breakpoints(
            r,
            top.get("breakpoints"),
            Vocabulary(
                {layer.name: layer.activation for layer in layers}, metrics, data.has_validation
            ),
        ),
        expect=_expect(r, top.get("expect")),
        expectations=parse_expectations(
            doc, top.get("expect"), layers, metrics, data.has_validation
        ),
        diagnostics=_diagnostics(r, top.get("diagnostics")),
    )


def bundled_dir() -> Path:
    """The folder of the scenarios shipped with the package."""
    from importlib import resources

    return Path(str(resources.files("backprop_tui.scenarios")))


def resolve(name_or_path: str | Path) -> Path:
    """A path as given, or the bundled scenario of that name (``xor`` → xor.yaml)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    if path.suffix == "" and len(path.parts) == 1:
        bundled = bundled_dir() / f"{path.name}.yaml"
        if bundled.exists():
            return bundled
    return path


def load_scenario(name_or_path: str | Path, seed: int | None = None) -> Scenario:
    """Read and validate a scenario file, or a bundled scenario by name.

    ``seed`` overrides the scenario's own seed.
    """
    path = resolve(name_or_path)
    shown = str(name_or_path)
    if not path.exists():
        names = ", ".join(sorted(p.stem for p in bundled_dir().glob("*.yaml")))
        raise ScenarioError(
            f"no such file or bundled scenario; give a path to a .yaml file or one of: {names}",
            file=shown,
        )
    if path.is_dir():
        raise ScenarioError("this is a folder; give the path of a .yaml scenario file", file=shown)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ScenarioError(
            f"cannot be read ({err.strerror}); check its permissions", file=shown
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(
            "is not UTF-8 text; is this a YAML scenario file?", file=shown
        ) from None
    doc = load_yaml(text, shown)
    return parse_scenario(doc, path.resolve().parent, seed)
