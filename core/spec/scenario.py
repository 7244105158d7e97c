"""Scenario files: read, validate and turn into a :class:`Scenario`.

Every problem becomes one :class:`ScenarioError` that names the file, the line
and column, the key path and what would be accepted.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ExpressionError, ScenarioError
from ..maths import losses
from ..safetext import quote, visible
from . import model as model_spec
from .data import load_dataset
from .expect import parse_expectations
from .expressions import Vocabulary
from .expressions import parse as parse_expression
from .reader import Reader
from .types import (
    Dataset,
    Expectation,
    InitSpec,
    LayerSpec,
    OptimizerSpec,
    Scenario,
    TrainingSpec,
)
from .yamlio import MAX_BYTES, Located, load_yaml

__all__ = [
    "Dataset",
    "Expectation",
    "InitSpec",
    "LayerSpec",
    "OptimizerSpec",
    "Scenario",
    "TrainingSpec",
    "bundled_dir",
    "load_dataset",
    "load_scenario",
    "parse_scenario",
    "resolve",
]

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


def _optimizer(r: Reader, value: object) -> OptimizerSpec:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise r.fail("optimizer", f"expected an optimizer name or mapping, got {quote(value)}")
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


def _check_pairing(r: Reader, loss: str, layers: tuple[LayerSpec, ...]) -> None:
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


def _diagnostics(r: Reader, value: object) -> dict[str, float | bool]:
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


def _breakpoints(r: Reader, value: object, vocabulary: Vocabulary) -> tuple[str, ...]:
    texts = r.texts(value, "breakpoints")
    for i, text in enumerate(texts):
        try:
            parse_expression(text, vocabulary)
        except ExpressionError as err:
            raise r.fail(
                f"breakpoints[{i}]", f"{err.message}, at column {err.column + 1} of '{text}'"
            ) from None
    return texts


def parse_scenario(doc: Located, base_dir: Path, seed: int | None = None) -> Scenario:
    """Validate the document and build the scenario (loading its data).

    ``seed``, when given, replaces the file's seed (the ``--seed`` option).
    """
    r = Reader(doc)
    top = r.mapping(doc.value, "", TOP_KEYS, ("model", "data", "loss"))
    name = r.text(top.get("name", visible(Path(doc.file).stem)), "name")
    description = r.text(top.get("description", ""), "description", collapse=True)
    file_seed = r.integer(top.get("seed", 0), "seed", minimum=0)
    seed = file_seed if seed is None else seed
    model = r.mapping(top["model"], "model", ("inputs", "input_shape", "layers"), ("layers",))
    inputs, sample_shape = model_spec.input_shape(r, model)
    layers = model_spec.layers(r, model, sample_shape)
    loss = losses.canonical(r.text(top["loss"], "loss"))
    r.choice(loss, "loss", losses.NAMES)
    _check_pairing(r, loss, layers)
    optimizer = _optimizer(r, top.get("optimizer", "sgd"))
    metrics = r.texts(top.get("metrics"), "metrics")
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
    data = load_dataset(
        r.doc,
        top["data"],
        base_dir,
        seed,
        inputs,
        layers[-1].units,
        loss,
        inputs_key="model.inputs" if "inputs" in model else "model.input_shape",
    )
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
        expectations=parse_expectations(
            doc, top.get("expect"), layers, metrics, data.has_validation
        ),
        diagnostics=_diagnostics(r, top.get("diagnostics")),
        input_shape=sample_shape if len(sample_shape) > 1 else (),
    )


def bundled_dir() -> Path:
    """The folder of the scenarios shipped with the package."""
    from importlib import resources

    return Path(str(resources.files("backprop_tui.scenarios")))


def resolve(name_or_path: str | Path) -> Path:
    """A path as given, or the bundled scenario of that name (``xor`` → xor.yaml)."""
    path = Path(name_or_path)
    if _exists(path):
        return path
    if path.suffix == "" and len(path.parts) == 1:
        bundled = bundled_dir() / f"{path.name}.yaml"
        if _exists(bundled):
            return bundled
    return path


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for the system, say
        return False


def load_scenario(name_or_path: str | Path, seed: int | None = None) -> Scenario:
    """Read and validate a scenario file, or a bundled scenario by name.

    ``seed`` overrides the scenario's own seed.
    """
    path = resolve(name_or_path)
    shown = visible(str(name_or_path))
    if not _exists(path):
        names = ", ".join(sorted(p.stem for p in bundled_dir().glob("*.yaml")))
        raise ScenarioError(
            f"no such file or bundled scenario; give a path to a .yaml file or one of: {names}",
            file=shown,
        )
    if path.is_dir():
        raise ScenarioError("this is a folder; give the path of a .yaml scenario file", file=shown)
    try:
        with path.open("rb") as handle:  # in pieces: /dev/zero never ends, st_size says 0
            pieces: list[bytes] = []
            size = 0
            while size <= MAX_BYTES and (piece := handle.read(1 << 16)):
                pieces.append(piece)
                size += len(piece)
        raw = b"".join(pieces)
    except OSError as err:
        raise ScenarioError(
            f"cannot be read ({err.strerror}); check its permissions", file=shown
        ) from None
    if len(raw) > MAX_BYTES:
        raise ScenarioError(
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB; is it a scenario? "
            "Put large data in a .npz or .csv file and name it under data.file",
            file=shown,
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(
            "is not UTF-8 text; is this a YAML scenario file?", file=shown
        ) from None
    doc = load_yaml(text, shown)
    return parse_scenario(doc, path.resolve().parent, seed)
