"""A recorded trace played back: a :class:`~backprop_tui.core.RunView` that cannot train.

It moves a whole recorded step at a time, forward and back. Parameters and
gradients come from the nearest recorded step at or before the current one
(``recorded_step``); the intermediates of a step (activations, dL/dz) are not
recorded, so it says it does not show phases (``shows_phases``), and what a
recording cannot do — train, edit, set breakpoints, check gradients — its
capability flags say, and the methods behind them raise :class:`NotPossible`.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..backends.numpy_backend import NumpyBackend
from ..errors import NotPossible
from ..maths import optimizers
from ..maths.regularizers import Regularizer
from ..records import EpochStats, LogEntry, PhaseRecord, StepStats, UpdateArrays
from ..run.boundary import InputMaps, needs_two_inputs
from ..run.debugger import layer_view
from ..run.facts import ScenarioFacts
from ..run.gradcheck import GradCheckResult
from ..runview import Batch, Granularity, InputMap, RunKind, RunView, UpdateState
from ..spec.data import Dataset
from ..spec.expression_tree import Expression
from ..spec.scenario import InitSpec, LayerSpec, OptimizerSpec, Scenario, TrainingSpec
from ..watch.breakpoints import BreakHit, Breakpoint, RunResult
from .recording import MAX_PLANE_POINTS, Trace, TraceError, load_trace


@dataclass(frozen=True, eq=False)
class RecordedScenario(Scenario):
    """The scenario as the trace describes it: the network and settings, but no data."""

    recorded_steps_per_epoch: int = 1

    def steps_per_epoch(self) -> int:
        return self.recorded_steps_per_epoch


@dataclass(frozen=True)
class RecordedBackend:
    """Where the run was recorded; shown in the header."""

    name: str
    device: str
    dtype: str


@dataclass
class ReplayHistory:
    """How far back a replay can go: to the first recorded step."""

    oldest_step: int
    newest_step: int
    nbytes: int = 0
    cap_bytes: int = 0

    def __len__(self) -> int:
        return self.newest_step - self.oldest_step


def _class_names(raw: object) -> tuple[str, ...] | None:
    return tuple(str(n) for n in raw) if isinstance(raw, list) else None


def _regularizer(raw: dict[str, float] | None) -> Regularizer | None:
    if raw is None:
        return None
    return Regularizer(l1=float(raw.get("l1", 0.0)), l2=float(raw.get("l2", 0.0)))


def recorded_scenario(trace: Trace) -> RecordedScenario:
    meta = trace.header["scenario"]
    layers = tuple(
        LayerSpec(
            name=layer["name"],
            type=layer["type"],
            inputs=int(layer["inputs"]),
            units=int(layer["units"]),
            activation=layer["activation"],
            use_bias=bool(layer["use_bias"]),
            kernel_initializer=InitSpec(**layer["kernel_initializer"]),
            bias_initializer=InitSpec(**layer["bias_initializer"]),
            input_shape=tuple(int(n) for n in layer.get("input_shape", ())),
            output_shape=tuple(int(n) for n in layer.get("output_shape", ())),
            kernel_size=_pair(layer.get("kernel_size"), (1, 1)),
            strides=_pair(layer.get("strides"), (1, 1)),
            padding=str(layer.get("padding", "valid")),
            rate=float(layer.get("rate", 0.0)),
            momentum=float(layer.get("momentum", 0.99)),
            epsilon=float(layer.get("epsilon", 1e-3)),
            kernel_regularizer=_regularizer(layer.get("kernel_regularizer")),
            bias_regularizer=_regularizer(layer.get("bias_regularizer")),
        )
        for layer in meta["layers"]
    )
    inputs, outputs = int(meta["inputs"]), layers[-1].units
    plane = trace.plane  # a two-input network's data, kept so the input plane can be drawn
    empty = Dataset(
        x_train=plane.get("x_train", np.zeros((0, inputs))),
        y_train=plane.get("y_train", np.zeros((0, outputs))),
        x_val=plane.get("x_val", np.zeros((0, inputs))),
        y_val=plane.get("y_val", np.zeros((0, outputs))),
        source=f"recorded in {trace.path}" if trace.path else "recorded trace",
        class_names=_class_names(meta.get("class_names")),
    )
    return RecordedScenario(
        name=meta["name"],
        description=meta["description"],
        seed=int(meta["seed"]),
        inputs=inputs,
        layers=layers,
        loss=meta["loss"],
        optimizer=OptimizerSpec(meta["optimizer"]["name"], dict(meta["optimizer"]["options"])),
        metrics=tuple(meta["metrics"]),
        training=TrainingSpec(**meta["training"]),
        data=empty,
        path=trace.path,
        breakpoints=tuple(meta.get("breakpoints", ())),
        diagnostics=dict(meta.get("diagnostics", {})),
        recorded_steps_per_epoch=int(meta["steps_per_epoch"]),
        input_shape=tuple(int(n) for n in meta.get("input_shape", ())),
    )


def _pair(value: object, default: tuple[int, int]) -> tuple[int, int]:
    if isinstance(value, list) and len(value) == 2:
        return (int(value[0]), int(value[1]))
    return default


READ_ONLY = "a recorded replay cannot be changed: {what} needs a live run"


class Replay(ScenarioFacts):
    """Steps through a recorded run, a whole step at a time; nothing can be changed."""

    kind: RunKind = "replay"
    can_train = False
    can_edit = False
    can_go_back = True
    goes_back_exactly = True
    shows_phases = False
    can_gradcheck = False
    can_set_learning_rate = False
    phase = "update"
    next_phase = "input"
    layer_index: int | None = None

    def __init__(self, trace: Trace | str) -> None:
        if isinstance(trace, str):
            trace = load_trace(trace)
        self.trace = trace
        try:
            self.scenario: Scenario = recorded_scenario(trace)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise TraceError(
                f"is damaged (its network description is incomplete: {err})", trace.path or "trace"
            ) from None
        backend = trace.header["backend"]
        self.backend = RecordedBackend(backend["name"], backend["device"], backend["dtype"])
        self.dtype = self.backend.dtype
        self._layers = tuple(layer_view(layer) for layer in self.scenario.layers)
        self.start = trace.start_step
        self.end = trace.start_step + trace.steps
        self.history = ReplayHistory(self.start, self.start)
        self._listeners: list[Callable[[RunView], None]] = []
        self._entries = [self._log_entry(item) for item in trace.log]
        self._positions = [int(item.get("position", 0)) for item in trace.log]
        self._epoch_ends = [int(end) for end in trace.epochs.get("end", np.zeros(0))]
        self._step_stats = [self._step_stat(i) for i in range(trace.steps)]
        self._epoch_stats = [self._epoch_stat(i) for i in range(len(self._epoch_ends))]
        self._maps: InputMaps | None = None  # made when first asked for
        self._map_backend: NumpyBackend | None = None
        self._map_step: int | None = None
        self.step_index = self.start

    # ---------------------------------------------------------- what it is
    @property
    def where(self) -> str:
        return f"{self.backend.name} {self.backend.device} {self.backend.dtype}"

    # ----------------------------------------------------------- counters
    @property
    def epoch(self) -> int:
        """Epochs finished by the current step (the first recorded epoch counts from its start)."""
        first = int(self.trace.step_epoch[0]) if self.trace.steps else 0
        return first + bisect.bisect_right(self._epoch_ends, self.step_index)

    @property
    def batch_in_epoch(self) -> int:
        return self.step_index % self.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.end

    @property
    def total_epochs(self) -> int:
        return self.scenario.training.epochs

    @property
    def finished(self) -> bool:
        return self.step_index >= self.end

    @property
    def step_number(self) -> int:
        return self.step_index

    @property
    def epoch_number(self) -> int:
        i = self.step_index - self.start - 1
        if i >= 0:
            return int(self.trace.step_epoch[i]) + 1
        return self.epoch if self.step_index else 0

    def extend(self, epochs: int) -> None:
        raise NotPossible(READ_ONLY.format(what="training on"))

    # ------------------------------------------------------------ numbers
    @property
    def learning_rate(self) -> float:
        """The rate the step shown updated with: the scenario's, or one set while it ran."""
        shown = max(self.step_index - 1, self.start)
        rate = self.scenario.optimizer.learning_rate
        for first, value in self.trace.header.get("lr_changes", []):
            if first > shown:
                break
            rate = float(value)
        return rate

    @property
    def update_rule(self) -> str:
        spec = self.scenario.optimizer
        if spec.learning_rate != self.learning_rate:
            options = {**spec.options, "learning_rate": self.learning_rate}
            spec = dataclasses.replace(spec, options=options)
        return optimizers.rule_text(spec)

    def set_learning_rate(self, rate: float) -> None:
        raise NotPossible(READ_ONLY.format(what="changing the learning rate"))

    @property
    def loss(self) -> float | None:
        i = self.step_index - self.start - 1
        return float(self.trace.loss[i]) if i >= 0 else None

    @property
    def penalty(self) -> float | None:
        """The weight penalty inside the shown step's loss, when the trace kept it."""
        i = self.step_index - self.start - 1
        penalty = self.trace.penalty
        if penalty is None or i < 0 or math.isnan(penalty[i]):
            return None
        return float(penalty[i])

    @property
    def metrics(self) -> dict[str, float]:
        i = self.step_index - self.start - 1
        if i < 0:
            return {}
        return {m: float(v[i]) for m, v in self.trace.metrics.items()}

    @property
    def params_step(self) -> int | None:
        """The recorded step the shown parameters come from."""
        return _at_or_before(self.trace.param_steps, self.step_index)

    @property
    def grads_step(self) -> int | None:
        return _at_or_before(self.trace.grad_steps, self.step_index)

    def recorded_step(self, what: Literal["params", "grads"]) -> int | None:
        return self.params_step if what == "params" else self.grads_step

    @property
    def params(self) -> dict[str, NDArray[Any]]:
        return _row(self.trace.param_steps, self.trace.params, self.params_step)

    @property
    def grads(self) -> dict[str, NDArray[Any]]:
        return _row(self.trace.grad_steps, self.trace.grads, self.grads_step)

    @property
    def step_history(self) -> list[StepStats]:
        return self._step_stats[: self.step_index - self.start]

    @property
    def epoch_history(self) -> list[EpochStats]:
        return self._epoch_stats[: bisect.bisect_right(self._epoch_ends, self.step_index)]

    @property
    def log(self) -> list[LogEntry]:
        return self._entries[: bisect.bisect_right(self._positions, self.step_index)]

    @property
    def records(self) -> tuple[PhaseRecord, ...]:
        return ()  # a recording keeps no phase records

    @property
    def last_record(self) -> PhaseRecord | None:
        return None

    def record_of(self, phase: str, layer_index: int | None = None) -> PhaseRecord | None:
        return None

    def layer_arrays(self, i: int) -> dict[str, NDArray[Any]]:
        return {}

    def update_arrays(self, param: str) -> tuple[UpdateState, UpdateArrays] | None:
        return None  # the optimizer's terms are not recorded

    def grad_norm(self, layer: str) -> float | None:
        """The norm of the gradients recorded nearest before this step (see ``recorded_step``)."""
        grads = self.grads
        i = self.layer_names.index(layer)
        names = self._layers[i].param_names
        if not grads or any(name not in grads for name in names):
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            return float(np.sqrt(sum(float(np.square(grads[n]).sum()) for n in names)))

    def next_batch(self) -> Batch | None:
        return None  # the data stays where it was recorded

    def batch(self, indices: NDArray[np.int64]) -> Batch | None:
        return None

    @property
    def no_input_map(self) -> str | None:
        # The plane's range and its points are the data's: a trace keeps a two-input
        # network's data (up to MAX_PLANE_POINTS points), and weights every K steps.
        wider = needs_two_inputs(self.scenario)
        if wider is not None:
            return wider
        if not self.trace.plane:
            return (
                "This recording holds no training data (more than "
                f"{MAX_PLANE_POINTS:,} points, more than an eighth of --trace-mb, or an older "
                "backprop-tui wrote it), so it has no input plane to draw on: open the "
                "scenario itself to see it."
            )
        if self.params_step is None:
            return "No weights were recorded up to this step, so there is no map to draw."
        return None

    def input_map(self, cols: int, rows: int, layer: int | None = None) -> InputMap | None:
        """The map of the weights recorded at (or last before) the step shown, worked out
        with the NumPy reference in float64; its step says which weights drew it."""
        step = self.params_step
        if self.no_input_map is not None or step is None:
            return None
        if self._maps is None:
            self._maps = InputMaps(self.scenario)
        if self._map_backend is None or self._map_step != step:
            params = {k: np.asarray(v, dtype=np.float64) for k, v in self.params.items()}
            if self._map_backend is None:
                self._map_backend = NumpyBackend(self.scenario, params, "float64")
            else:
                self._map_backend.set_params(params)
            self._map_step = step
        backend = self._map_backend
        return self._maps.get(
            step, backend.params, backend.predict, backend.params_host, cols, rows, layer
        )

    @property
    def maps_computed(self) -> int:
        return self._maps.computed if self._maps is not None else 0

    @property
    def breakpoints(self) -> tuple[Breakpoint, ...]:
        return ()

    @property
    def oldest_reachable_step(self) -> int | None:
        return self.start

    @property
    def listeners(self) -> list[Callable[[RunView], None]]:
        return self._listeners

    # ------------------------------------------------------------- moving
    def goto(self, step: int) -> None:
        """Stand after ``step`` training steps (clamped to the recording)."""
        self.step_index = min(max(step, self.start), self.end)
        self.history.newest_step = self.step_index
        for listener in self._listeners:
            listener(self)

    def step(self, granularity: Granularity = "batch") -> PhaseRecord:
        """One recorded step forward (any granularity below an epoch), or to the epoch's end."""
        if self.finished:
            raise NotPossible(f"the recording ends at step {self.end}")
        if granularity == "epoch":
            later = [end for end in self._epoch_ends if end > self.step_index]
            self.goto(later[0] if later else self.end)
        else:
            self.goto(self.step_index + 1)
        return self._record()

    def back(self) -> bool:
        """One recorded step back; False at the start of the recording."""
        if self.step_index <= self.start:
            return False
        self.goto(self.step_index - 1)
        return True

    def run_until(
        self,
        expr: str | None = None,
        max_steps: int | None = None,
        on_step: Callable[[RunView], None] | None = None,
    ) -> RunResult:
        """Move through recorded steps until the end or ``max_steps``; a recording
        cannot evaluate breakpoint expressions (its step statistics are not kept)."""
        if expr is not None:
            raise NotPossible(READ_ONLY.format(what="a breakpoint expression"))
        steps = 0
        while not self.finished and (max_steps is None or steps < max_steps):
            self.step("batch")
            steps += 1
            if on_step is not None:
                on_step(self)
        return RunResult("end" if self.finished else "steps", steps)

    def hit_breakpoint(self, until: Expression | None = None) -> BreakHit | None:
        return None

    def set_weight(self, param: str, index: tuple[int, ...], value: float) -> float:
        raise NotPossible(READ_ONLY.format(what="editing a weight"))

    def parse_expression(self, text: str) -> Expression:
        raise NotPossible(READ_ONLY.format(what="a breakpoint"))

    def add_breakpoint(self, text: str) -> Breakpoint:
        raise NotPossible(READ_ONLY.format(what="a breakpoint"))

    def remove_breakpoint(self, i: int) -> Breakpoint:
        raise NotPossible(READ_ONLY.format(what="a breakpoint"))

    def toggle_breakpoint(self, i: int) -> bool:
        raise NotPossible(READ_ONLY.format(what="a breakpoint"))

    def gradient_check(self, layer: str | None = None) -> GradCheckResult:
        raise NotPossible(READ_ONLY.format(what="the gradient check (it needs the data)"))

    # ------------------------------------------------------------- helpers
    def _record(self) -> PhaseRecord:
        return PhaseRecord(
            phase="update",
            step_index=max(self.step_index - 1, self.start),
            epoch=self.epoch,
            loss=self.loss,
            metrics=self.metrics,
        )

    def _step_stat(self, i: int) -> StepStats:
        t = self.trace
        metrics = {m: float(v[i]) for m, v in t.metrics.items()}
        return StepStats(self.start + i, int(t.step_epoch[i]), float(t.loss[i]), metrics)

    def _epoch_stat(self, i: int) -> EpochStats:
        e = self.trace.epochs
        names = self.scenario.metrics
        val_loss = float(e["val_loss"][i])
        val_metrics = {m: float(e[f"val_metric/{m}"][i]) for m in names}
        first = int(self.trace.step_epoch[0]) if self.trace.steps else 0
        return EpochStats(
            epoch=first + i,
            loss=float(e["loss"][i]),
            metrics={m: float(e[f"metric/{m}"][i]) for m in names},
            val_loss=None if math.isnan(val_loss) else val_loss,
            val_metrics={} if math.isnan(val_loss) else val_metrics,
        )

    @staticmethod
    def _log_entry(item: dict[str, Any]) -> LogEntry:
        known = {f.name for f in dataclasses.fields(LogEntry)}
        return LogEntry(**{k: v for k, v in item.items() if k in known})

    def summary_lines(self) -> list[str]:
        """The trace in a few lines: what was recorded, how, and where it ended."""
        t, s = self.trace, self.scenario
        h = t.header
        lines = [
            f"trace     {t.path}",
            f"scenario  {s.name}: {' → '.join(str(n) for n in [s.inputs, *self._units()])}",
            f"recorded  steps {self.start + 1}–{self.end} ({t.steps} steps, "
            f"{len(self._epoch_ends)} epochs ended) on {self.backend.name} "
            f"{self.backend.device} {self.backend.dtype}, {h.get('created', '')}",
            f"weights   at {len(t.param_steps)} steps (every {h.get('params_every') or '—'} "
            f"steps and the last), gradients at {len(t.grad_steps)}",
        ]
        if t.steps:
            metrics = "  ".join(f"{m} {float(v[-1]):.6g}" for m, v in t.metrics.items())
            lines.append(f"last step loss {float(t.loss[-1]):.6g}  {metrics}".rstrip())
        if self._epoch_stats:
            last = self._epoch_stats[-1].as_dict()
            lines.append(
                f"epoch {self._epoch_stats[-1].epoch + 1}  "
                + "  ".join(f"{k} {v:.6g}" for k, v in last.items())
            )
        warnings = sum(1 for e in self._entries if e.level == "warning")
        lines.append(f"log       {len(self._entries)} entries, {warnings} warnings")
        if h.get("stopped"):
            lines.append(f"note      {h['stopped']}")
        return lines

    def _units(self) -> list[str]:
        return [
            f"{layer.units} {layer.activation}" if layer.type == "dense" else layer.type
            for layer in self.scenario.layers
        ]


def _at_or_before(steps: NDArray[np.int64], step: int) -> int | None:
    i = int(np.searchsorted(steps, step, side="right")) - 1
    return int(steps[i]) if i >= 0 else None


def _row(
    steps: NDArray[np.int64], arrays: dict[str, NDArray[Any]], step: int | None
) -> dict[str, NDArray[Any]]:
    if step is None:
        return {}
    i = int(np.searchsorted(steps, step))
    out = {}
    for name, stacked in arrays.items():
        view = stacked[i].view()
        view.flags.writeable = False
        out[name] = view
    return out


ReplayDebugger = Replay  # the name it had before it satisfied RunView
