"""``RunView``: the one interface every kind of run satisfies, and what it hands out.

Three kinds of run exist — a scenario run (:class:`~backprop_tui.core.Debugger`),
a recorded trace played back (:class:`~backprop_tui.core.Replay`) and, later,
the user's own PyTorch model — and the app draws all three through this
protocol alone. What a kind of run cannot do is a capability flag the UI reads
before offering the key (``can_train``, ``can_edit``, ``can_go_back``…); the
method behind a missing capability raises :class:`~backprop_tui.core.NotPossible`
with a sentence the UI can show. Nothing here is a stub that pretends.

Everything a pane reads is already computed: records of the phases done so
far, and the update table's arrays, made on the engine's thread when the
backward pass finishes. Reading never takes the engine's work onto the UI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from .records import EpochStats, LogEntry, PhaseRecord, StepStats, UpdateArrays

if TYPE_CHECKING:
    from .run.gradcheck import GradCheckResult
    from .spec.expression_tree import Expression
    from .watch.breakpoints import BreakHit, Breakpoint, RunResult

Granularity = Literal["phase", "layer", "batch", "epoch"]
GRANULARITIES: tuple[Granularity, ...] = ("phase", "layer", "batch", "epoch")
RunKind = Literal["scenario", "replay", "attached"]
UpdateState = Literal["pending", "applied"]


@dataclass(frozen=True, eq=False)
class LayerView:
    """One layer as the panes show it.

    ``inputs`` and ``units`` are the sizes of the layer's weight matrix as the
    gradient pane lays it out (rows × columns: a Dense kernel is inputs × units);
    ``param_names`` are the keys of ``params`` and ``grads`` that belong to it,
    the matrix-shaped one (``kernel``) first and its bias, if any, as ``bias``.
    ``activation`` is None where the layer has no activation of its own.
    ``output_shape`` and ``input_shape`` are one sample's (a conv2d's (H, W, C));
    ``kernel_shape`` the kernel's own shape (a conv2d's (kh, kw, in, filters),
    laid out as kh·kw·in rows × filters columns); ``state_names`` the layer's
    non-trainable numbers (batch normalization's moving statistics), in
    ``params`` but never in ``grads``; ``strides``, ``padding`` and ``epsilon``
    what the chain rule of a conv2d or batch normalization weight needs.
    """

    name: str
    kind: str
    inputs: int
    units: int
    activation: str | None
    param_names: tuple[str, ...]
    kernel: str | None = None
    bias: str | None = None
    output_shape: tuple[int, ...] = ()
    input_shape: tuple[int, ...] = ()
    state_names: tuple[str, ...] = ()
    kernel_shape: tuple[int, ...] = ()
    strides: tuple[int, int] = (1, 1)  # conv2d and pooling
    padding: str = "valid"
    epsilon: float = 1e-3  # batch normalization
    # Weight penalties by parameter name: (regularizer, its gradient part), e.g.
    # ("l2 0.01", "2·0.01·w"); the gradient of such a parameter is data part + that.
    penalties: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # Where the layer's numbers differ from the Keras layout the fields above describe:
    # ``channels_first``: image outputs and inputs are (C, H, W) per sample, as torch
    # holds them; ``total_params`` every number the layer owns (None: ``param_count``
    # counts the matrix and bias); ``pads`` and ``dilation`` of a torch convolution.
    channels_first: bool = False
    total_params: int | None = None
    pads: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)

    @property
    def is_image(self) -> bool:
        """True when the layer's output is (H, W, C) per sample."""
        return len(self.output_shape) == 3

    @property
    def use_bias(self) -> bool:
        return self.bias is not None

    @property
    def param_count(self) -> int:
        """Numbers the layer owns: its matrix and bias as the panes lay them out, or
        ``total_params`` where the layer says (a torch module's every parameter)."""
        if self.total_params is not None:
            return self.total_params
        return self.inputs * self.units + (self.units if self.use_bias else 0) if self.kernel else 0


@dataclass(frozen=True, eq=False)
class Batch:
    """Samples of the training data: their ids, inputs ``x`` (n, …) and targets ``y`` (n, …)."""

    indices: NDArray[np.int64]
    x: NDArray[Any]
    y: NDArray[Any]


MapKind = Literal["classes", "value"]
MAX_MAP_POINTS = 4096  # grid points of one input map: one batched forward pass stays cheap


@dataclass(frozen=True, eq=False)
class PlanePoints:
    """Samples drawn on the input plane: ids (n,), coordinates ``xy`` (n, 2) and
    ``labels`` (n,): the class id of each sample for a classifier, else its target."""

    ids: NDArray[np.int64]
    xy: NDArray[np.float64]
    labels: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class InputMap:
    """One layer's output over a grid of a two-input network's input plane.

    ``values`` (rows, cols, units): the layer's activations at the grid's cell
    centres, row 0 at the top (the largest second input), column 0 at the left
    (the smallest first input). ``x_range`` gives the first input at the grid's
    left and right edges, ``y_range`` the second at its bottom and top edges.

    ``kind`` says how to read it: ``"classes"`` — each point's class is the
    argmax over the units (a softmax output); ``"value"`` — each unit is a map
    of its own, coloured on ``value_range`` about ``value_mid`` (a one-unit
    sigmoid output of a binary classifier has ``classes == 2`` and its
    boundary at ``value_mid`` = 0.5). ``classes`` is the network's number of
    classes, which the points' labels are (0 for regression), also in the map
    of a hidden layer (``is_output`` False).
    """

    step_index: int
    layer_index: int
    layer_name: str
    activation: str
    kind: MapKind
    values: NDArray[np.float64]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    value_range: tuple[float, float]
    value_mid: float
    classes: int
    class_names: tuple[str, ...]
    train: PlanePoints
    validation: PlanePoints
    is_output: bool = True

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the grid."""
        return int(self.values.shape[0]), int(self.values.shape[1])

    @property
    def units(self) -> int:
        return int(self.values.shape[2])

    def cell_centres(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The first input of each column (cols,) and the second of each row (rows,), top first."""
        rows, cols = self.shape
        (x_lo, x_hi), (y_lo, y_hi) = self.x_range, self.y_range
        xs = x_lo + (np.arange(cols) + 0.5) * (x_hi - x_lo) / cols
        ys = y_hi - (np.arange(rows) + 0.5) * (y_hi - y_lo) / rows
        return xs, ys

    def predicted_classes(self) -> NDArray[np.int64] | None:
        """The class at each grid point (rows, cols), or None for a regression."""
        found: NDArray[np.int64] | None = None
        if self.kind == "classes":
            found = np.argmax(self.values, axis=2).astype(np.int64)
        elif self.is_output and self.classes == 2 and self.units == 1:
            found = (self.values[:, :, 0] >= self.value_mid).astype(np.int64)
        return found


@runtime_checkable
class RunReading(Protocol):
    """What the panes read of a run: a live run, or a snapshot of one at a step
    boundary (:class:`~backprop_tui.core.RunSnapshot`) that stays as it was while
    the run steps on in another thread."""

    # ------------------------------------------------------------ what it is
    @property
    def kind(self) -> RunKind: ...
    @property
    def title(self) -> str:
        """The scenario's name, the model's class, or the recorded scenario's name."""
        ...

    @property
    def description(self) -> str: ...
    @property
    def where(self) -> str:
        """Backend, device and dtype, e.g. ``numpy cpu float64``."""
        ...

    @property
    def input_shape(self) -> tuple[int, ...]: ...
    @property
    def layers(self) -> Sequence[LayerView]: ...
    @property
    def layer_names(self) -> list[str]: ...
    @property
    def loss_name(self) -> str: ...
    @property
    def fused_output(self) -> bool:
        """True when the output activation and the loss are fused: dL/dz = (a − y)/B."""
        ...

    @property
    def update_rule(self) -> str:
        """The optimizer's rule as the code computes it, e.g. ``new = w − lr·g``."""
        ...

    @property
    def term_names(self) -> tuple[str, ...]:
        """The optimizer's own terms the update table shows, in order."""
        ...

    @property
    def metric_names(self) -> tuple[str, ...]: ...

    # --------------------------------------------------------- capabilities
    @property
    def can_train(self) -> bool:
        """Stepping computes new steps (a replay only moves through recorded ones)."""
        ...

    @property
    def can_edit(self) -> bool:
        """Weights and breakpoints can be changed."""
        ...

    @property
    def can_go_back(self) -> bool: ...
    @property
    def goes_back_exactly(self) -> bool:
        """Going back and stepping again gives the same numbers bit for bit."""
        ...

    @property
    def shows_phases(self) -> bool:
        """The phases inside a step (activations, dL/dz) can be seen."""
        ...

    @property
    def can_gradcheck(self) -> bool: ...
    @property
    def can_set_learning_rate(self) -> bool:
        """The learning rate can be changed for the steps that follow."""
        ...

    # -------------------------------------------------------------- counters
    @property
    def phase(self) -> str: ...
    @property
    def next_phase(self) -> str: ...
    @property
    def layer_index(self) -> int | None: ...
    @property
    def step_index(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def batch_in_epoch(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def total_steps(self) -> int: ...
    @property
    def total_epochs(self) -> int: ...
    @property
    def steps_per_epoch(self) -> int: ...
    @property
    def finished(self) -> bool:
        """The run's epochs are done: stepping says so until ``extend`` is asked for."""
        ...

    @property
    def step_number(self) -> int:
        """The one numbering users read: the 1-based step in progress, or the last one
        finished between steps (0 before the first)."""
        ...

    @property
    def epoch_number(self) -> int:
        """The 1-based epoch ``step_number`` belongs to (0 before the first step)."""
        ...

    # --------------------------------------------------------------- numbers
    @property
    def loss(self) -> float | None:
        """The loss of the last forward pass, as Keras reports it: weight penalties included."""
        ...

    @property
    def penalty(self) -> float | None:
        """The weight penalties' part of ``loss``; None where no layer has a regularizer."""
        ...

    @property
    def learning_rate(self) -> float | None:
        """The learning rate the step in progress (or the next) updates with; None if unknown."""
        ...

    @property
    def metrics(self) -> dict[str, float]: ...
    @property
    def params(self) -> dict[str, NDArray[Any]]: ...
    @property
    def grads(self) -> dict[str, NDArray[Any]]: ...
    @property
    def step_history(self) -> Sequence[StepStats]: ...
    @property
    def epoch_history(self) -> Sequence[EpochStats]: ...
    @property
    def log(self) -> Sequence[LogEntry]: ...
    @property
    def records(self) -> Sequence[PhaseRecord]: ...
    @property
    def last_record(self) -> PhaseRecord | None: ...
    def record_of(self, phase: str, layer_index: int | None = None) -> PhaseRecord | None: ...
    def layer_arrays(self, i: int) -> Mapping[str, NDArray[Any]]: ...
    def update_arrays(self, param: str) -> tuple[UpdateState, UpdateArrays] | None:
        """The pending (backward done) or applied update of ``param``, already computed."""
        ...

    def grad_norm(self, layer: str) -> float | None:
        """‖dL/dθ‖ over ``layer``'s parameters for the last backward pass, as measured."""
        ...

    def recorded_step(self, what: Literal["params", "grads"]) -> int | None:
        """The step whose ``params``/``grads`` are shown when they are older than the
        current one (a replay keeps some steps only); None when they are current."""
        ...

    def next_batch(self) -> Batch | None:
        """The samples the next input phase takes, when known (between steps)."""
        ...

    def batch(self, indices: NDArray[np.int64]) -> Batch | None:
        """Training samples by id, when the run has its data."""
        ...

    @property
    def no_input_map(self) -> str | None:
        """Why :meth:`input_map` gives nothing here, as a sentence; None when it gives maps."""
        ...

    def input_map(self, cols: int, rows: int, layer: int | None = None) -> InputMap | None:
        """Layer ``layer``'s output (default: the network's) over a ``rows``×``cols`` grid of
        the input plane, for the weights now held: one batched forward pass, done by the
        caller's thread (call it off the UI thread, holding the engine's lock). At most
        :data:`MAX_MAP_POINTS` points (a bigger grid is scaled down); None where
        :attr:`no_input_map` says why."""
        ...

    @property
    def breakpoints(self) -> Sequence[Breakpoint]: ...
    @property
    def oldest_reachable_step(self) -> int | None: ...


@runtime_checkable
class RunView(RunReading, Protocol):
    """A training run that can be read, and stepped as far as its kind allows."""

    @property
    def listeners(self) -> list[Callable[[RunView], None]]:
        """Called after each phase and after going back (not while recomputing history)."""
        ...

    # --------------------------------------------------------------- actions
    def step(self, granularity: Granularity = "phase") -> PhaseRecord:
        """Advance; raises NotPossible once training is finished (see ``extend``)."""
        ...

    def extend(self, epochs: int) -> None:
        """Train on past the end: ``epochs`` more (an explicit choice, never a default)."""
        ...

    def back(self) -> bool: ...
    def run_until(
        self,
        expr: str | None = None,
        max_steps: int | None = None,
        on_step: Callable[[RunView], None] | None = None,
    ) -> RunResult: ...
    def hit_breakpoint(self, until: Expression | None = None) -> BreakHit | None: ...
    def set_weight(self, param: str, index: tuple[int, ...], value: float) -> float: ...
    def set_learning_rate(self, rate: float) -> None:
        """Update with ``rate`` from the step in progress (or the next) on; going back
        before that step undoes it. Raises ValueError for a rate that is not positive."""
        ...

    def parse_expression(self, text: str) -> Expression: ...
    def add_breakpoint(self, text: str) -> Breakpoint: ...
    def remove_breakpoint(self, i: int) -> Breakpoint: ...
    def toggle_breakpoint(self, i: int) -> bool: ...
    def gradient_check(self, layer: str | None = None) -> GradCheckResult: ...


__all__ = [
    "GRANULARITIES",
    "MAX_MAP_POINTS",
    "Batch",
    "Granularity",
    "InputMap",
    "LayerView",
    "MapKind",
    "PlanePoints",
    "RunKind",
    "RunReading",
    "RunView",
    "UpdateState",
]
