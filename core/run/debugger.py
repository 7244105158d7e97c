"""The :class:`Debugger`: one training run, advanced a phase, a layer, a batch or an epoch at a time.

A facade over three parts: the training loop (:mod:`.loop`, the phase state
machine and its counters), time travel (:mod:`.timetravel`) and the watch
(:mod:`..watch.watcher`: diagnostics, breakpoints, the log). It satisfies
:class:`~backprop_tui.core.RunView`, the interface the app draws from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..backends import Backend, make_backend
from ..errors import NotPossible
from ..maths import initializers, optimizers
from ..records import EpochLog, LogEntry, PhaseRecord, StepLog, UpdateArrays, UpdateRow
from ..runview import (
    GRANULARITIES,
    Batch,
    Granularity,
    InputMap,
    LayerView,
    RunKind,
    RunView,
    UpdateState,
)
from ..spec.expressions import Expression, Vocabulary, parse
from ..spec.scenario import LayerSpec, Scenario
from ..watch.breakpoints import BreakHit, Breakpoint, RunResult
from ..watch.breakpoints import run_until as run_until_hit
from ..watch.stats import StepStatistics
from ..watch.watcher import Watch
from .boundary import InputMaps, needs_two_inputs
from .facts import ScenarioFacts
from .gradcheck import GradCheckResult, gradient_check
from .history import History
from .loop import TrainingLoop, epoch_order
from .timetravel import TimeTravel
from .update_table import from_record, top_indices

__all__ = ["Debugger", "LogEntry", "epoch_order", "initial_params", "layer_view"]


FINISHED = (
    "training finished: {epochs} epochs, {steps} steps; train on with E (one more epoch) "
    "or --epochs"
)
BACK_TO = "its weights, before the next step"


def initial_params(scenario: Scenario) -> dict[str, NDArray[np.float64]]:
    """The starting weights in float64, drawn once with NumPy from the scenario's seed.

    Layer by layer, kernel then bias (Dense and conv2d); batch normalization's
    gamma, beta, moving mean and variance start at Keras' ones, zeros, zeros, ones
    unless given. Non-trainable numbers are among them: they travel in time with
    the weights.
    """
    rng = np.random.default_rng([scenario.seed, 0])
    params: dict[str, NDArray[np.float64]] = {}
    for layer in scenario.layers:
        if layer.type == "batch_normalization":
            n, width = layer.name, (layer.units,)
            params[f"{n}.gamma"] = layer.gamma if layer.gamma is not None else np.ones(width)
            params[f"{n}.beta"] = layer.beta if layer.beta is not None else np.zeros(width)
            params[f"{n}.moving_mean"] = np.zeros(width)
            params[f"{n}.moving_variance"] = np.ones(width)
            continue
        if not layer.has_kernel:
            continue
        shape = layer.param_shapes[f"{layer.name}.kernel"]
        kernel_init = layer.kernel_initializer
        drawn = initializers.initialize(kernel_init.name, shape, rng, kernel_init.options)
        params[f"{layer.name}.kernel"] = layer.kernel if layer.kernel is not None else drawn
        if layer.use_bias:
            bias_init = layer.bias_initializer
            drawn_b = initializers.initialize(
                bias_init.name, (layer.units,), rng, bias_init.options
            )
            params[f"{layer.name}.bias"] = layer.bias if layer.bias is not None else drawn_b
    return params


def layer_view(layer: LayerSpec) -> LayerView:
    """A scenario layer as the panes see it.

    A conv2d kernel (kh, kw, in, filters) is laid out as kh·kw·in rows × filters
    columns; batch normalization shows gamma as its one-row "kernel" and beta as
    its "bias"; layers without parameters have neither.
    """
    if layer.type == "batch_normalization":
        kernel: str | None = f"{layer.name}.gamma"
        bias: str | None = f"{layer.name}.beta"
        inputs = 1
    else:
        kernel = f"{layer.name}.kernel" if layer.has_kernel else None
        bias = f"{layer.name}.bias" if layer.has_kernel and layer.use_bias else None
        inputs = layer.inputs
    return LayerView(
        name=layer.name,
        kind=layer.type,
        inputs=inputs,
        units=layer.units,
        activation=layer.activation if layer.has_kernel else None,
        param_names=layer.param_names,
        kernel=kernel,
        bias=bias,
        output_shape=layer.output_shape,
        input_shape=layer.input_shape,
        state_names=layer.state_names,
        kernel_shape=layer.param_shapes[kernel] if kernel is not None else (),
        strides=layer.strides,
        padding=layer.padding,
        epsilon=layer.epsilon,
        penalties={name: (reg.text(), reg.formula()) for name, reg in layer.regularizers.items()},
    )


def _read_only(array: NDArray[Any]) -> NDArray[Any]:
    """A view that cannot be written: host arrays of the NumPy backend are its own arrays,
    and the history relies on parameters never being written in place."""
    view = array.view()
    view.flags.writeable = False
    return view


class Debugger(ScenarioFacts):
    """Owns a training run and advances it step by step, keeping what each phase computed.

    ``phase`` is the phase most recently completed (a fresh run stands where a
    finished step does, at ``"update"``, and the next phase is ``"input"``).
    ``loss`` and ``grads`` belong to the most recent forward and backward pass,
    so after a whole step they describe the weights before its update, while
    ``params`` holds the weights after it.
    """

    kind: RunKind = "scenario"
    can_train = True
    can_edit = True
    can_go_back = True
    goes_back_exactly = True
    shows_phases = True
    can_gradcheck = True
    can_set_learning_rate = True

    def __init__(
        self,
        scenario: Scenario,
        backend: str = "numpy",
        device: str = "cpu",
        dtype: str = "float64",
        history_mb: float = 256.0,
        keyframe_every: int | None = None,
        epochs: int | None = None,
        breakpoints: bool = True,
        learning_rate: float | None = None,
    ) -> None:
        """``epochs`` replaces the scenario's (``--epochs``), as ``learning_rate`` does its
        optimizer's (``--lr``); ``breakpoints=False`` leaves out the scenario's breakpoints
        (``--no-breakpoints``), NaN/Inf still stops."""
        if epochs is not None:
            if epochs < 1:
                raise ValueError(f"epochs must be at least 1, got {epochs}")
            scenario = replace(scenario, training=replace(scenario.training, epochs=epochs))
        if learning_rate is not None:
            if not (math.isfinite(learning_rate) and learning_rate > 0):
                raise ValueError(f"a learning rate must be a positive number, got {learning_rate}")
            options = {**scenario.optimizer.options, "learning_rate": float(learning_rate)}
            scenario = replace(scenario, optimizer=replace(scenario.optimizer, options=options))
        self.scenario = scenario
        self.backend: Backend = make_backend(
            backend, scenario, initial_params(scenario), dtype, device
        )
        self.dtype = dtype
        self.loop = TrainingLoop(scenario, self.backend)
        self.travel = TimeTravel(self.loop, int(history_mb * 1024 * 1024), keyframe_every)
        self._vocabulary = Vocabulary.of(scenario)
        kept = scenario.breakpoints if breakpoints else ()
        self.watch = Watch(scenario.diagnostics, self.parse_expression, kept)
        self._layers = tuple(layer_view(layer) for layer in scenario.layers)
        self._listeners: list[Callable[[RunView], None]] = []
        self._maps: InputMaps | None = None  # made when first asked for: it reads the data
        self._extra_epochs = 0

    # ---------------------------------------------------------- what it is
    @property
    def where(self) -> str:
        return f"{self.backend.name} {self.backend.device} {self.dtype}"

    # ------------------------------------------------------------ counters
    @property
    def phase(self) -> str:
        return self.loop.phase

    @property
    def next_phase(self) -> str:
        return self.loop.next_phase

    @property
    def layer_index(self) -> int | None:
        return self.loop.layer_index

    @property
    def step_index(self) -> int:
        return self.loop.step_index

    @property
    def epoch(self) -> int:
        return self.loop.epoch

    @property
    def batch_in_epoch(self) -> int:
        return self.loop.batch_in_epoch

    @property
    def total_steps(self) -> int:
        return self.total_epochs * self.scenario.steps_per_epoch()

    @property
    def total_epochs(self) -> int:
        return self.scenario.training.epochs + self._extra_epochs

    @property
    def finished(self) -> bool:
        """True once the epochs are done; stepping then raises NotPossible until ``extend``."""
        return self.epoch >= self.total_epochs and self.phase == "update"

    @property
    def step_number(self) -> int:
        return self.step_index + (0 if self.phase == "update" else 1)

    @property
    def epoch_number(self) -> int:
        if self.phase != "update":
            return self.epoch + 1
        history = self.loop.step_history
        return history[-1].epoch + 1 if history else 0

    def extend(self, epochs: int) -> None:
        """Train ``epochs`` more than the scenario says."""
        if epochs < 1:
            raise ValueError("extend by one epoch or more")
        self._extra_epochs += epochs
        self.watch.note(
            self.step_number, f"training goes on: {self.total_epochs} epochs in all", kind="event"
        )

    # ------------------------------------------------------------- numbers
    @property
    def params(self) -> dict[str, NDArray[Any]]:
        """Every parameter as a read-only host array, in layer order."""
        return {k: _read_only(v) for k, v in self.backend.params_host().items()}

    @property
    def grads(self) -> dict[str, NDArray[Any]]:
        """The gradients of the most recent backward pass (empty before the first)."""
        return {k: _read_only(self.backend.to_host(v)) for k, v in self.loop.grads.items()}

    @property
    def loss(self) -> float | None:
        """The loss of the most recent forward pass (with the weight penalties, as Keras)."""
        return self.loop.loss

    @property
    def penalty(self) -> float | None:
        """The weight penalties inside ``loss``; None when no layer has a regularizer."""
        return self.loop.penalty

    @property
    def learning_rate(self) -> float:
        return self.loop.learning_rate_at(self.step_index)

    @property
    def lr_changes(self) -> list[tuple[int, float]]:
        """Learning rates set while running: (first step index, rate), in step order."""
        return list(self.loop.lr_changes)

    @property
    def update_rule(self) -> str:
        """The rule of the update the table shows: between steps the one just applied
        (with the rate it used), mid-step the pending one."""
        loop = self.loop
        shown = loop.step_index - 1 if loop.phase == "update" and loop.step_index else None
        spec = loop.optimizer if shown is None else loop.optimizer_at(shown)
        return optimizers.rule_text(spec)

    def set_learning_rate(self, rate: float) -> None:
        """Update with ``rate`` from the step in progress (or the next one) on.

        Going back to before that step undoes it; the log says so either way.
        """
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"a learning rate must be a positive number, got {rate:g}")
        old = self.learning_rate
        self.loop.set_learning_rate(rate)
        first = self.step_index + 1  # 1-based: the step in progress, or the next
        self.watch.note(
            self.step_number,
            f"learning rate {old:g} → {rate:g} from step {first} on",
            kind="event",
        )
        self._tell()

    @property
    def metrics(self) -> dict[str, float]:
        """Metrics of the most recent forward pass."""
        return dict(self.loop.batch_metrics)

    @property
    def step_history(self) -> StepLog:
        return self.loop.step_history

    @property
    def epoch_history(self) -> EpochLog:
        return self.loop.epoch_history

    @property
    def log(self) -> list[LogEntry]:
        return self.watch.log

    @property
    def records(self) -> list[PhaseRecord]:
        """This step's records, in order."""
        return self.loop.records

    @property
    def last_record(self) -> PhaseRecord | None:
        return self.loop.records[-1] if self.loop.records else None

    def record_of(self, phase: str, layer_index: int | None = None) -> PhaseRecord | None:
        """This step's record of ``phase`` (for forward/backward, of that layer)."""
        return self.loop.record_of(phase, layer_index)

    def layer_arrays(self, i: int) -> dict[str, NDArray[Any]]:
        """What this step has so far for layer ``i``: a_prev, z, a, dL_da, dL_dz and gradients."""
        out: dict[str, NDArray[Any]] = {}
        forward = self.loop.record_of("forward", i)
        if forward is not None:
            out.update({k: forward.arrays[k] for k in ("a_prev", "z", "a")})
        backward = self.loop.record_of("backward", i)
        if backward is not None:
            out.update({k: backward.arrays[k] for k in backward.arrays if k != "dL_da_below"})
        else:
            above = self.loop.record_of("backward", i + 1)
            if above is not None and "dL_da_below" in above.arrays:
                out["dL_da"] = above.arrays["dL_da_below"]
        return out

    def update_arrays(self, param: str) -> tuple[UpdateState, UpdateArrays] | None:
        """("pending" | "applied", the arrays) for ``param``, or None when there is none to show."""
        loop = self.loop
        if loop.pending is not None:
            found = from_record(loop.pending, param)
            return ("pending", found) if found is not None else None
        if loop.phase not in ("update", "input") or loop.last_update is None:
            return None
        found = from_record(loop.last_update, param)
        return ("applied", found) if found is not None else None

    def grad_norm(self, layer: str) -> float | None:
        stats = self.watch.stats
        if stats is not None and self.phase == "update" and stats.step == self.step_index:
            return stats.grad_norm(layer)
        i = self.layer_names.index(layer)
        backward = self.loop.record_of("backward", i)
        if backward is None or not self._layers[i].param_names:  # pooling, flatten, dropout
            return None
        total = 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # inf is shown as inf
            for name in self._layers[i].param_names:
                total += float(np.square(backward.arrays[name]).sum())
        return float(np.sqrt(total))

    def recorded_step(self, what: Literal["params", "grads"]) -> int | None:
        return None  # a live run's numbers are always the current step's

    def next_batch(self) -> Batch | None:
        """The samples the next input phase takes (between steps)."""
        if self.phase != "update":
            return None
        size = self.batch_size
        start = self.batch_in_epoch * size
        return self.batch(self.loop.order[start : start + size])

    def batch(self, indices: NDArray[np.int64]) -> Batch | None:
        data = self.scenario.data
        return Batch(indices, data.x_train[indices], data.y_train[indices])

    @property
    def no_input_map(self) -> str | None:
        return needs_two_inputs(self.scenario)

    def input_map(self, cols: int, rows: int, layer: int | None = None) -> InputMap | None:
        """The map of the weights held now, cached until they change (see RunView)."""
        if self.no_input_map is not None:
            return None
        if self._maps is None:
            self._maps = InputMaps(self.scenario)
        backend = self.backend
        return self._maps.get(
            self.step_index, backend.params, backend.predict, backend.params_host, cols, rows, layer
        )

    @property
    def maps_computed(self) -> int:
        """How many grids went through the network so far (each map computed once)."""
        return self._maps.computed if self._maps is not None else 0

    @property
    def breakpoints(self) -> list[Breakpoint]:
        return self.watch.breakpoints

    @property
    def stats(self) -> StepStatistics | None:
        """The last full step's statistics (measured on demand)."""
        return self.watch.stats

    @property
    def opt_state(self) -> optimizers.OptState:
        """The optimizer's step count and slots, after the last update."""
        return self.loop.opt_state

    @property
    def history(self) -> History:
        return self.travel.history

    @property
    def oldest_reachable_step(self) -> int | None:
        """How far back ``back()`` can go: the earliest step start still in the history."""
        return self.travel.oldest_step

    @property
    def listeners(self) -> list[Callable[[RunView], None]]:
        return self._listeners

    def _tell(self) -> None:
        for listener in self._listeners:
            listener(self)

    # ------------------------------------------------------------ stepping
    def step(self, granularity: Granularity = "phase") -> PhaseRecord:
        """Advance by one phase, layer, batch or epoch; return the last record made."""
        if granularity not in GRANULARITIES:
            raise ValueError(f"unknown step size {granularity!r}; use one of {GRANULARITIES}")
        if self.finished:
            raise NotPossible(FINISHED.format(epochs=self.total_epochs, steps=self.step_index))
        self.travel.clock_in()  # how far apart the history's snapshots stand depends on it
        try:
            return self._step(granularity)
        finally:
            self.travel.clock_out()

    def _step(self, granularity: Granularity) -> PhaseRecord:
        # Overflow and NaN are what a debugger exists to show: the diagnostics
        # report them with their place, so NumPy's own warnings would only
        # scribble over the terminal. (Set once a call, not once a phase: it costs.)
        with np.errstate(all="ignore"):
            record = self._advance()
            if granularity == "layer":
                return record
            if granularity == "phase":
                while self.phase in ("forward", "backward") and not self.loop.pass_done():
                    record = self._advance()
                return record
            while self.phase != "update":
                record = self._advance()
            if granularity == "epoch":
                while self.batch_in_epoch != 0 and not self.finished:
                    record = self._advance()
                    while self.phase != "update":
                        record = self._advance()
            return record

    def _advance(self) -> PhaseRecord:
        loop = self.loop
        if loop.next_phase == "input":
            self.travel.at_step_start()
        record = loop.advance()
        if record.phase == "update":
            self._after_step()
        self._tell()
        return record

    def _after_step(self) -> None:
        loop = self.loop
        stats = StepStatistics.capture(
            self.backend,
            step=loop.step_index,
            epoch=loop.step_history[-1].epoch + 1,  # the newest entries are kept as objects
            loss=loop.loss,
            metrics=loop.batch_metrics,
            last_epoch=loop.epoch_history[-1] if loop.epoch_history else None,
            layers=self.scenario.layers,
            update=loop.measured,
            previous=self.watch.stats,
        )
        self.watch.observe(stats)

    def evaluate(
        self, split: Literal["train", "validation"] = "validation"
    ) -> tuple[float | None, dict[str, float] | None]:
        """Loss and metrics of the current weights on a whole split (None when it is empty)."""
        return self.loop.evaluate(split)

    def update_rows(
        self,
        param: str,
        top_k: int | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[UpdateRow]:
        """Rows of the update table for ``param``.

        Before the update phase (once the backward pass is done) the rows show
        the pending change; after it, the change just applied. ``top_k`` gives the
        rows with the largest |change|; otherwise rows in index order from
        ``offset``, at most ``limit`` of them.
        """
        found = self.update_arrays(param)
        if found is None:
            return []
        arrays = found[1]
        if top_k is not None:
            order = top_indices(arrays.change, top_k)
        else:
            stop = arrays.size if limit is None else min(arrays.size, offset + limit)
            order = np.arange(offset, stop)
        return [arrays.row(int(flat)) for flat in order]

    def pending_update(self) -> Mapping[str, UpdateArrays] | None:
        """The changes the optimizer will apply, once the backward pass is complete."""
        pending = self.loop.pending
        if pending is None:
            return None
        found = {name: from_record(pending, name) for name in self.scenario.param_names}
        return {name: arrays for name, arrays in found.items() if arrays is not None}

    # --------------------------------------------------------- time travel
    def back(self) -> bool:
        """Return to the start of the previous training step (or of this one, mid-step).

        Stepping forward again gives the same numbers bit for bit. Returns False
        when the history holds nothing that far back. Between steps, a weight
        edited by hand since the step ended is restored first, one edit at a time.
        """
        undone = self.travel.undo_edit_here()
        if undone is not None:
            self.watch.note(self.step_number, f"undid the edit {undone}", kind="edit")
            self._tell()
            return True
        rates_before = len(self.loop.lr_changes)
        with np.errstate(all="ignore"):
            if not self.travel.back():
                self._note_history_full()
                return False
        for breakpoint_ in self.watch.breakpoints:  # arriving at a step again is a new edge
            breakpoint_.held = False
        self.watch.note(self.step_number, f"went back to step {self.step_number}: {BACK_TO}")
        if len(self.loop.lr_changes) < rates_before:
            self.watch.note(
                self.step_number,
                f"going back undid a learning-rate change: lr = {self.learning_rate:g} again",
                kind="event",
            )
        self._tell()
        return True

    def _note_history_full(self) -> None:
        """Going back failed because the memory cap let older steps go: say how to keep more."""
        oldest = self.travel.oldest_step
        if not oldest:  # at the start of training: nothing was let go
            return
        cap = self.history.cap_bytes / (1024 * 1024)
        text = (
            f"cannot go back past step {oldest}: the step-back history holds {cap:g} MB; "
            "raise --history-mb to keep more steps"
        )
        log = self.watch.log
        if not log or log[-1].text != text:  # pressed again: said once
            self.watch.note(self.step_number, text, kind="history")

    def set_weight(self, param: str, index: tuple[int, ...], value: float) -> float:
        """Change one number of a parameter by hand; returns the old value. The log notes it.

        Between steps the history keeps the weights from before the edit, so
        ``back()`` undoes it. Mid-step, the step restarts from its input phase
        with the new weight and steps back to where it was, so that every number
        of the step belongs to the same weights; ``back()`` undoes it with the step.
        """
        loop = self.loop
        host = self.backend.to_host(self.backend.params[param]).copy()
        old = float(host[index])
        where = ", ".join(str(i) for i in index)
        change = f"{param}[{where}]: {old:.6g} → {value:.6g}"
        self.travel.note_edit(change if loop.phase == "update" else None)
        host[index] = value
        params = dict(self.backend.params)
        params[param] = self.backend.from_host(host)
        self.backend.set_params(params)
        text = f"edited {change}"
        if loop.phase != "update":
            self._redo_step()
            text += f"; step {self.step_number} restarted from its input with it"
        else:
            loop.drop_pending()
        self.watch.note(self.step_number, text, kind="edit")
        return old

    def _redo_step(self) -> None:
        """Do this step's phases again, from its input up to where it stood."""
        loop = self.loop
        reached = len(loop.records)
        loop.phase, loop.layer_index = "update", None
        loop.drop_pending()
        with np.errstate(all="ignore"):
            for _ in range(reached):
                loop.advance()

    # ---------------------------------------------- breakpoints, diagnostics
    def parse_expression(self, text: str) -> Expression:
        """Parse a breakpoint expression against this network; raises ExpressionError."""
        return parse(text, self._vocabulary)

    def add_breakpoint(self, text: str) -> Breakpoint:
        """Add a breakpoint (enabled); raises ExpressionError when ``text`` does not parse."""
        return self.watch.add_breakpoint(text)

    def remove_breakpoint(self, i: int) -> Breakpoint:
        """Remove and return breakpoint ``i`` (0-based)."""
        return self.watch.remove_breakpoint(i)

    def toggle_breakpoint(self, i: int) -> bool:
        """Enable or disable breakpoint ``i``; returns whether it is now enabled."""
        return self.watch.toggle_breakpoint(i)

    def hit_breakpoint(self, until: Expression | None = None) -> BreakHit | None:
        """The breakpoint (or NaN/Inf) hit by the step just finished, or None.

        Checked only between full steps; asking twice about one step gives the
        same answer and logs it once (level ``break``). ``until`` is an extra
        expression checked first, as :meth:`run_until` does.
        """
        if self.phase != "update" or not self.records:  # went back: the step's arrays are gone
            return None
        return self.watch.hit(self.step_index, until)

    def run_until(
        self,
        expr: str | None = None,
        max_steps: int | None = None,
        on_step: Callable[[RunView], None] | None = None,
    ) -> RunResult:
        """Step by batch until ``expr``, an enabled breakpoint or a NaN/Inf hits.

        Without ``max_steps`` it stops at the end of the scenario's epochs; with
        it, after that many steps (going on past the last epoch if asked to).
        ``on_step`` is called after each step (a progress bar, say). Raises
        ExpressionError, before stepping, when ``expr`` does not parse.
        """
        until = self.parse_expression(expr) if expr is not None else None
        return run_until_hit(self, until, max_steps, on_step)

    def run(self, steps: int, stop: Callable[[Debugger], bool] | None = None) -> int:
        """Finish the current step, then take up to ``steps`` more; stop early when ``stop`` says."""
        done = 0
        if self.phase != "update":
            self.step("batch")
            done += 1
        while done < steps:
            if stop is not None and stop(self):
                break
            self.step("batch")
            done += 1
        return done

    def gradient_check(self, layer: str | None = None) -> GradCheckResult:
        """Backprop against central differences at this step's weights and batch."""
        return gradient_check(self, layer)
