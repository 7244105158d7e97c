"""The scenario's data classes: what a scenario file becomes once it is read.

Frozen records only: no reading, no validation, nothing above ``maths/``
imported, so every floor of the engine (backends, watch, run, traces) can
use them without reaching the YAML loader.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from ..maths.optimizers import OptimizerSpec
from ..maths.regularizers import Regularizer
from ..records import PHASES

__all__ = [
    "DEFAULT_TOL",
    "KERNEL_KINDS",
    "LAYER_KINDS",
    "PHASE_RANK",
    "Condition",
    "Dataset",
    "Expectation",
    "InitSpec",
    "LayerSpec",
    "OptimizerSpec",
    "Scenario",
    "TrainingSpec",
]

F64 = NDArray[np.float64]

DEFAULT_TOL = 1e-6
PHASE_RANK = {phase: rank for rank, phase in enumerate(PHASES)}


@dataclass(frozen=True)
class InitSpec:
    name: str
    options: dict[str, float] = field(default_factory=dict)


# Layer kinds and what they hold. Kinds with a kernel compute ``z = a_prev ⊛ kernel + bias``.
LAYER_KINDS = (
    "dense",
    "conv2d",
    "max_pooling2d",
    "average_pooling2d",
    "flatten",
    "dropout",
    "batch_normalization",
)
KERNEL_KINDS = frozenset({"dense", "conv2d"})


@dataclass(frozen=True, eq=False)
class LayerSpec:
    """One layer of a Sequential model, channels last as in Keras.

    ``input_shape`` and ``output_shape`` are one sample's shapes (no batch axis).
    ``inputs`` × ``units`` is the kernel as a matrix, as the panes lay it out: a
    Dense kernel is (inputs, units); a conv2d kernel (kh, kw, in, filters) is
    kh·kw·in × filters. Layers without a kernel have ``inputs`` the size of one
    input sample and ``units`` the last axis of the output (channels or units).
    """

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
    input_shape: tuple[int, ...] = ()
    output_shape: tuple[int, ...] = ()
    kernel_size: tuple[int, int] = (1, 1)  # conv2d's kernel, or a pooling window
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"
    rate: float = 0.0  # dropout
    momentum: float = 0.99  # batch normalization
    epsilon: float = 1e-3
    gamma: NDArray[np.float64] | None = None
    beta: NDArray[np.float64] | None = None
    kernel_regularizer: Regularizer | None = None  # Keras' penalties, added to the loss
    bias_regularizer: Regularizer | None = None

    def __post_init__(self) -> None:
        # Dense layers built before shapes were kept (traces, tests) get theirs here.
        if not self.input_shape:
            object.__setattr__(self, "input_shape", (self.inputs,))
        if not self.output_shape:
            object.__setattr__(self, "output_shape", (self.units,))

    @property
    def has_kernel(self) -> bool:
        return self.type in KERNEL_KINDS

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """The trainable parameters' names and shapes, kernel first."""
        n = self.name
        if self.type == "dense":
            shapes: dict[str, tuple[int, ...]] = {f"{n}.kernel": (self.inputs, self.units)}
        elif self.type == "conv2d":
            kh, kw = self.kernel_size
            shapes = {f"{n}.kernel": (kh, kw, self.input_shape[-1], self.units)}
        elif self.type == "batch_normalization":
            return {f"{n}.gamma": (self.units,), f"{n}.beta": (self.units,)}
        else:
            return {}
        if self.use_bias:
            shapes[f"{n}.bias"] = (self.units,)
        return shapes

    @property
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The non-trainable numbers the layer keeps (batch normalization's moving statistics)."""
        if self.type != "batch_normalization":
            return {}
        return {
            f"{self.name}.moving_mean": (self.units,),
            f"{self.name}.moving_variance": (self.units,),
        }

    @property
    def regularizers(self) -> dict[str, Regularizer]:
        """The penalised parameters' names and their regularizers."""
        found: dict[str, Regularizer] = {}
        if self.kernel_regularizer is not None and self.has_kernel:
            found[f"{self.name}.kernel"] = self.kernel_regularizer
        if self.bias_regularizer is not None and self.has_kernel and self.use_bias:
            found[f"{self.name}.bias"] = self.bias_regularizer
        return found

    @cached_property
    def param_names(self) -> tuple[str, ...]:
        # Kept once worked out (the spec is frozen): the engine reads it every step.
        return tuple(self.param_shapes)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(self.state_shapes)

    @property
    def param_count(self) -> int:
        return sum(math.prod(shape) for shape in self.param_shapes.values())


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = 1
    batch_size: int = 32
    shuffle: bool = True


@dataclass(frozen=True, eq=False)
class Dataset:
    """Training and validation arrays, in float64 on the host.

    x_*: (samples, inputs); y_*: (samples, units), one-hot for class labels.
    ``class_names`` holds the classes' names, in id order, when the labels
    were words (a .csv column of ``setosa``, ``versicolor``…).
    """

    x_train: F64
    y_train: F64
    x_val: F64
    y_val: F64
    source: str
    classes: int | None = None  # number of classes when labels were class ids
    class_names: tuple[str, ...] | None = None

    @property
    def has_validation(self) -> bool:
        return len(self.x_val) > 0


@dataclass(frozen=True)
class Condition:
    """``actual OP target``; ``==`` holds within ``tol``."""

    op: str
    target: float
    tol: float = DEFAULT_TOL

    def holds(self, actual: float) -> bool:
        if math.isnan(actual):
            return False
        t = self.target
        return {
            "==": abs(actual - t) <= self.tol,
            "!=": abs(actual - t) > self.tol,
            ">=": actual >= t,
            "<=": actual <= t,
            ">": actual > t,
            "<": actual < t,
        }[self.op]

    def text(self) -> str:
        if self.op == "==":
            return f"= {self.target:g} ± {self.tol:g}"
        return f"{self.op} {self.target:g}"


@dataclass(frozen=True)
class Expectation:
    """One condition at one moment of the run.

    ``step`` is 1-based with ``phase``; or ``epoch`` (1-based, its end).
    ``quantity`` is ``param``, ``grad``, ``loss``, a metric or ``val_``-one.
    """

    label: str
    quantity: str
    condition: Condition
    step: int | None = None
    phase: str = "update"
    epoch: int | None = None
    param: str | None = None
    index: tuple[int, ...] = ()
    line: int | None = None

    def when(self) -> str:
        if self.epoch is not None:
            return f"epoch {self.epoch}"
        return f"step {self.step} {self.phase}"

    def what(self) -> str:
        if self.param is not None:
            where = ", ".join(str(i) for i in self.index)
            prefix = "grad " if self.quantity == "grad" else ""
            return f"{prefix}{self.param}[{where}] {self.condition.text()}"
        return f"{self.quantity} {self.condition.text()}"

    def target(self, steps_per_epoch: int) -> tuple[int, int]:
        """(training steps done before it, phase rank): a sort key and a place to stop."""
        if self.epoch is not None:
            return (self.epoch * steps_per_epoch - 1, PHASE_RANK["update"])
        assert self.step is not None
        return (self.step - 1, PHASE_RANK[self.phase])


@dataclass(frozen=True, eq=False)
class Scenario:
    """Everything needed to train: the network, its data, its loss and optimizer.

    Every text in it (name, description, breakpoints, class names) has its
    control characters made visible already (see ``core/safetext.py``).
    """

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
    expectations: tuple[Expectation, ...] = ()  # the ``expect:`` block, validated
    diagnostics: dict[str, float | bool] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()  # one sample's shape; () means (inputs,)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One input sample's shape as the first layer takes it (flat data is reshaped to it)."""
        return self.input_shape or (self.inputs,)

    @property
    def param_names(self) -> list[str]:
        """The trainable parameters, in layer order."""
        return [name for layer in self.layers for name in layer.param_names]

    @property
    def state_names(self) -> list[str]:
        """The non-trainable numbers (moving statistics), in layer order."""
        return [name for layer in self.layers for name in layer.state_names]

    @property
    def dropout_layers(self) -> list[int]:
        return [i for i, layer in enumerate(self.layers) if layer.type == "dropout"]

    @property
    def param_count(self) -> int:
        return sum(layer.param_count for layer in self.layers)

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(len(self.data.x_train) / self.training.batch_size))
