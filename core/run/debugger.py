"""The :class:`Debugger`: one training run, advanced a phase, a layer, a batch or an epoch at a time."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..backends import Backend, make_backend
from ..maths import initializers, losses, metrics, optimizers
from ..records import EpochStats, HostArrays, PhaseRecord, StepStats, UpdateRow
from ..spec.expressions import Expression, Vocabulary, parse
from ..spec.scenario import Scenario
from ..watch.breakpoints import BreakHit, Breakpoint, RunResult
from ..watch.breakpoints import evaluate as evaluate_breakpoints
from ..watch.breakpoints import run_until as run_until_hit
from ..watch.diagnostics import Diagnostics
from ..watch.stats import StepStatistics
from .history import History, Snapshot
from .update_table import top_indices, update_arrays

Granularity = Literal["phase", "layer", "batch", "epoch"]
GRANULARITIES = ("phase", "layer", "batch", "epoch")
_NEXT_PHASE = {"input": "forward", "forward": "loss", "loss": "backward", "backward": "update"}


@dataclass(frozen=True)
class LogEntry:
    """A line of the debugger's log: an event, a warning or a breakpoint hit."""

    step: int
    level: Literal["info", "warning", "error", "break"]
    text: str
    layer: str | None = None
    kind: str = "event"


def initial_params(scenario: Scenario) -> dict[str, NDArray[np.float64]]:
    """The starting weights in float64, drawn once with NumPy from the scenario's seed."""
    rng = np.random.default_rng([scenario.seed, 0])
    params: dict[str, NDArray[np.float64]] = {}
    for layer in scenario.layers:
        shape = (layer.inputs, layer.units)
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


def epoch_order(scenario: Scenario, epoch: int) -> NDArray[np.int64]:
    """The order the training samples are visited in during ``epoch`` (0-based)."""
    n = len(scenario.data.x_train)
    if not scenario.training.shuffle:
        return np.arange(n)
    return np.random.default_rng([scenario.seed, 2, epoch]).permutation(n)


def _read_only(array: NDArray[Any]) -> NDArray[Any]:
    """A view that cannot be written: host arrays of the NumPy backend are its own arrays,
    and the history relies on parameters never being written in place."""
    view = array.view()
    view.flags.writeable = False
    return view


class Debugger:
    """Owns a training run and advances it step by step, keeping what each phase computed.

    ``phase`` is the phase most recently completed (a fresh run stands where a
    finished step does, at ``"update"``, and the next phase is ``"input"``).
    ``loss`` and ``grads`` belong to the most recent forward and backward pass,
    so after a whole step they describe the weights before its update, while
    ``params`` holds the weights after it.
    """

    def __init__(
        self,
        scenario: Scenario,
        backend: str = "numpy",
        device: str = "cpu",
        dtype: str = "float64",
        history_mb: float = 256.0,
        keyframe_every: int = 8,
    ) -> None:
        self.scenario = scenario
        self.backend: Backend = make_backend(
            backend, scenario, initial_params(scenario), dtype, device
        )
        self.dtype = dtype
        self.layer_names = [layer.name for layer in scenario.layers]
        self.opt_state = optimizers.init(scenario.optimizer, self.backend.params, self.backend.xp)
        self.history = History(int(history_mb * 1024 * 1024))
        self.keyframe_every = max(1, keyframe_every)
        self._edited_since_keyframe = False
        self._replaying = False
        self.log: list[LogEntry] = []
        self.step_history: list[StepStats] = []
        self.epoch_history: list[EpochStats] = []
        self.listeners: list[Callable[[Debugger], None]] = []
        self.phase: str = "update"
        self.layer_index: int | None = None  # last layer done inside forward/backward
        self.step_index = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.records: list[PhaseRecord] = []  # this step's records, in order
        self._order = epoch_order(scenario, 0)
        self._batch_indices: NDArray[np.int64] = np.arange(0)
        self._batch_metrics: dict[str, float] = {}
        self._pending: dict[str, optimizers.ParamUpdate] | None = None
        self._pending_state: optimizers.OptState | None = None
        self._last_update: PhaseRecord | None = None
        self._epoch_sums: dict[str, float] = {}
        self._epoch_count = 0
        self._grads: dict[str, Any] = {}
        self._loss: float | None = None
        # Debugging aids: diagnostics after every full step, breakpoints when asked.
        self.diagnostics = Diagnostics(scenario.diagnostics)
        self.stats: StepStatistics | None = None  # the last full step's, measured on demand
        self.breakpoints: list[Breakpoint] = []
        self._vocabulary = Vocabulary.of(scenario)
        self._hit: tuple[StepStatistics, BreakHit | None] | None = None
        for text in scenario.breakpoints:
            self.add_breakpoint(text)

    # ------------------------------------------------------------------ views
    @property
    def params(self) -> dict[str, NDArray[Any]]:
        """Every parameter as a read-only host array, in layer order."""
        return {k: _read_only(v) for k, v in self.backend.params_host().items()}

    @property
    def grads(self) -> dict[str, NDArray[Any]]:
        """The gradients of the most recent backward pass (empty before the first)."""
        return {k: _read_only(self.backend.to_host(v)) for k, v in self._grads.items()}

    @property
    def loss(self) -> float | None:
        """The loss of the most recent forward pass."""
        return self._loss

    @property
    def metrics(self) -> dict[str, float]:
        """Metrics of the most recent forward pass."""
        return dict(self._batch_metrics)

    @property
    def next_phase(self) -> str:
        if self.phase == "update":
            return "input"
        if self.phase in ("forward", "backward") and not self._pass_done():
            return self.phase
        return _NEXT_PHASE[self.phase]

    @property
    def total_steps(self) -> int:
        return self.scenario.training.epochs * self.scenario.steps_per_epoch()

    @property
    def finished(self) -> bool:
        """True once the scenario's epochs are done (stepping on is still allowed)."""
        return self.epoch >= self.scenario.training.epochs and self.phase == "update"

    @property
    def last_record(self) -> PhaseRecord | None:
        return self.records[-1] if self.records else None

    def record_of(self, phase: str, layer_index: int | None = None) -> PhaseRecord | None:
        """This step's record of ``phase`` (for forward/backward, of that layer)."""
        for record in reversed(self.records):
            if record.phase == phase and (layer_index is None or record.layer_index == layer_index):
                return record
        if phase == "update" and self.phase != "update":
            return None
        return self._last_update if phase == "update" else None

    def layer_arrays(self, i: int) -> dict[str, NDArray[Any]]:
        """What this step has so far for layer ``i``: a_prev, z, a, dL_da, dL_dz and gradients."""
        b = self.backend
        out: dict[str, NDArray[Any]] = {}
        if b.x is None:
            return out
        if b.z and b.z[i] is not None:
            out["a_prev"] = b.to_host(b.a_prev(i))
            out["z"] = b.to_host(b.z[i])
            out["a"] = b.to_host(b.a[i])
        for key, store in (("dL_da", b.dL_da), ("dL_dz", b.dL_dz)):
            if store and store[i] is not None:
                out[key] = b.to_host(store[i])
        for name in self.scenario.layers[i].param_names:
            if name in b.grads:
                out[name] = b.to_host(b.grads[name])
        return {k: _read_only(v) for k, v in out.items()}

    # --------------------------------------------------------------- stepping
    def step(self, granularity: Granularity = "phase") -> PhaseRecord:
        """Advance by one phase, layer, batch or epoch; return the last record made."""
        if granularity not in GRANULARITIES:
            raise ValueError(f"unknown step size {granularity!r}; use one of {GRANULARITIES}")
        # Overflow and NaN are what a debugger exists to show: the diagnostics
        # report them with their place, so NumPy's own warnings would only
        # scribble over the terminal. (Set once a call, not once a phase: it costs.)
        with np.errstate(all="ignore"):
            return self._step(granularity)

    def _step(self, granularity: Granularity) -> PhaseRecord:
        record = self._advance()
        if granularity == "layer":
            return record
        if granularity == "phase":
            while self.phase in ("forward", "backward") and not self._pass_done():
                record = self._advance()
            return record
        while self.phase != "update":
            record = self._advance()
        if granularity == "epoch":
            while self.batch_in_epoch != 0:
                record = self._step("batch")
        return record

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

    def _pass_done(self) -> bool:
        last = len(self.layer_names) - 1
        if self.phase == "forward":
            return self.layer_index == last
        if self.phase == "backward":
            return self.layer_index == 0
        return True

    def _advance(self) -> PhaseRecord:
        nxt = self.next_phase
        if nxt == "input":
            record = self._input()
        elif nxt == "forward":
            i = 0 if self.phase != "forward" else (self.layer_index or 0) + 1
            record = self._forward(i)
        elif nxt == "loss":
            record = self._compute_loss()
        elif nxt == "backward":
            last = len(self.layer_names) - 1
            i = last if self.phase != "backward" else (self.layer_index or 0) - 1
            record = self._backward(i)
        else:
            record = self._update()
        self.records.append(record)
        if not self._replaying:
            for listener in self.listeners:
                listener(self)
        return record

    def _record(self, phase: str, **kwargs: Any) -> PhaseRecord:
        arrays = kwargs.pop("arrays", {})
        return PhaseRecord(
            phase=phase,
            step_index=self.step_index,
            epoch=self.epoch,
            arrays=HostArrays(arrays, self.backend.to_host),
            **kwargs,
        )

    def _input(self) -> PhaseRecord:
        if not self._replaying and (
            self._edited_since_keyframe or self.step_index % self.keyframe_every == 0
        ):
            self.history.push(self._snapshot())
            self._edited_since_keyframe = False
        size = self.scenario.training.batch_size
        start = self.batch_in_epoch * size
        self._batch_indices = self._order[start : start + size]
        data = self.scenario.data
        self.backend.begin(data.x_train[self._batch_indices], data.y_train[self._batch_indices])
        self.records = []
        self._pending = None
        self.phase, self.layer_index = "input", None
        return self._record(
            "input",
            arrays={"x": self.backend.x, "y": self.backend.y, "indices": self._batch_indices},
        )

    def _forward(self, i: int) -> PhaseRecord:
        self.backend.forward_layer(i)
        self.phase, self.layer_index = "forward", i
        b = self.backend
        return self._record(
            "forward",
            layer_index=i,
            layer_name=self.layer_names[i],
            arrays={"a_prev": b.a_prev(i), "z": b.z[i], "a": b.a[i]},
            complete=i == len(self.layer_names) - 1,
        )

    def _compute_loss(self) -> PhaseRecord:
        b = self.backend
        self._loss = b.compute_loss()
        names = self.scenario.metrics
        if names:
            self._batch_metrics = metrics.compute(names, b.to_host(b.y), b.to_host(b.a[-1]))
        else:
            self._batch_metrics = {}
        self.phase, self.layer_index = "loss", None
        return self._record(
            "loss",
            loss=self._loss,
            metrics=dict(self._batch_metrics),
            arrays={"y_pred": b.a[-1], "y_true": b.y, "dL_da": b.dL_da[-1]},
        )

    def _backward(self, i: int) -> PhaseRecord:
        b = self.backend
        b.backward_layer(i)
        self.phase, self.layer_index = "backward", i
        layer = self.scenario.layers[i]
        arrays = {"dL_da": b.dL_da[i], "dL_dz": b.dL_dz[i]}
        arrays.update({name: b.grads[name] for name in layer.param_names})
        if i == 0:  # layer order, like params, though backward fills them last layer first
            self._grads = {name: b.grads[name] for name in self.scenario.param_names}
        return self._record(
            "backward", layer_index=i, layer_name=layer.name, arrays=arrays, complete=i == 0
        )

    def pending_update(self) -> dict[str, optimizers.ParamUpdate] | None:
        """The changes the optimizer will apply, once the backward pass is complete."""
        if self.phase != "backward" or not self._pass_done():
            return None
        if self._pending is None:
            self._pending, self._pending_state = optimizers.update(
                self.scenario.optimizer,
                self.opt_state,
                {name: self.backend.grads[name] for name in self.scenario.param_names},
                self.backend.xp,
            )
        return self._pending

    def _update(self) -> PhaseRecord:
        updates = self.pending_update()
        assert updates is not None and self._pending_state is not None
        old = self.backend.params
        new = optimizers.apply(old, updates)
        self.backend.set_params(new)
        self.opt_state = self._pending_state
        self._pending = self._pending_state = None
        arrays: dict[str, Any] = {}
        measured: dict[str, Any] = {}  # the backend's own arrays, for the step's statistics
        grads = self.backend.grads
        for name, upd in updates.items():
            change_key = f"{name}.change"
            arrays[name] = measured[name] = old[name]
            arrays[f"{name}.grad"] = grads[name]
            arrays[change_key] = measured[change_key] = upd.change
            arrays[f"{name}.new"] = new[name]
            read = upd.terms.__getitem__
            for term in upd.terms:  # read on demand: some terms are worked out only if shown
                arrays[f"{name}.{term}"] = functools.partial(read, term)
        self.phase, self.layer_index = "update", None
        record = self._record("update", loss=self._loss, arrays=arrays)
        self._last_update = record
        self._finish_step()
        self._after_step(measured)
        return record

    def _finish_step(self) -> None:
        loss = self._loss if self._loss is not None else math.nan
        stats = StepStats(self.step_index, self.epoch, loss, dict(self._batch_metrics))
        self.step_history.append(stats)
        n = len(self._batch_indices)
        self._epoch_count += n
        self._epoch_sums["loss"] = self._epoch_sums.get("loss", 0.0) + loss * n
        for key, value in self._batch_metrics.items():
            self._epoch_sums[key] = self._epoch_sums.get(key, 0.0) + value * n
        self.step_index += 1
        self.batch_in_epoch += 1
        if self.batch_in_epoch * self.scenario.training.batch_size >= len(self._order):
            self._finish_epoch()

    def _finish_epoch(self) -> None:
        count = max(self._epoch_count, 1)
        means = {k: v / count for k, v in self._epoch_sums.items()}
        val_loss, val_metrics = self.evaluate("validation")
        self.epoch_history.append(
            EpochStats(
                epoch=self.epoch,
                loss=means.pop("loss", math.nan),
                metrics=means,
                val_loss=val_loss,
                val_metrics=val_metrics or {},
            )
        )
        self.epoch += 1
        self.batch_in_epoch = 0
        self._epoch_sums, self._epoch_count = {}, 0
        self._order = epoch_order(self.scenario, self.epoch)

    def evaluate(
        self, split: Literal["train", "validation"] = "validation"
    ) -> tuple[float | None, dict[str, float] | None]:
        """Loss and metrics of the current weights on a whole split (None when it is empty)."""
        data = self.scenario.data
        x, y = (data.x_val, data.y_val) if split == "validation" else (data.x_train, data.y_train)
        if len(x) == 0:
            return None, None
        z, y_pred = (np.asarray(v, dtype=np.float64) for v in self.backend.predict(x))
        fused = losses.FUSED.get(self.scenario.loss) == self.scenario.layers[-1].activation
        value = losses.compute(self.scenario.loss, y, y_pred, z, fused).value
        return value, metrics.compute(self.scenario.metrics, y, y_pred)

    # --------------------------------------------------------------- updates
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
        found = update_arrays(self, param)
        if found is None:
            return []
        arrays = found[1]
        if top_k is not None:
            order = top_indices(arrays.change, top_k)
        else:
            stop = arrays.size if limit is None else min(arrays.size, offset + limit)
            order = np.arange(offset, stop)
        return [arrays.row(int(flat)) for flat in order]

    # ------------------------------------------------------------ time travel
    def _snapshot(self) -> Snapshot:
        # No copies: parameters and optimizer slots are replaced, never written in
        # place (``optimizers.apply`` and ``set_weight`` build new arrays), so
        # holding references keeps the old values intact.
        return Snapshot(
            step_index=self.step_index,
            epoch=self.epoch,
            batch_in_epoch=self.batch_in_epoch,
            params=dict(self.backend.params),
            opt_step=self.opt_state.step,
            opt_slots={p: dict(slots) for p, slots in self.opt_state.slots.items()},
            epoch_sums=dict(self._epoch_sums),
            epoch_count=self._epoch_count,
            step_history_len=len(self.step_history),
            epoch_history_len=len(self.epoch_history),
        )

    def back(self) -> bool:
        """Return to the start of the previous training step (or of this one, mid-step).

        Stepping forward again gives the same numbers bit for bit. Returns False
        when the history holds nothing that far back. Between steps, a weight
        edited by hand since the step ended is restored first, one edit at a time.

        The history keeps a snapshot every ``keyframe_every`` steps (and at each
        step after a hand edit); the steps between are recomputed from the
        nearest snapshot, which gives the same numbers since stepping is
        deterministic.
        """
        mid_step = self.phase != "update"
        if not mid_step and self.history.edit_at(self.step_index) is not None:
            # An edit made here is undone before the step that led here.
            self.history.drop_plain_at(self.step_index)
            newest = self.history.newest
            assert newest is not None
            self._undo_edit(newest)
            return True
        target = self.step_index if mid_step else self.step_index - 1
        base = self.history.base_for(target)
        if base is None:
            return False
        self._restore(base)
        self._replaying = True
        try:
            while self.step_index < target:
                self.step("batch")
        finally:
            self._replaying = False
        self.phase, self.layer_index = "update", None
        self.records = []
        self._pending = self._pending_state = None
        self._last_update = None
        self._grads, self._loss, self._batch_metrics = {}, None, {}
        self.backend.x = None
        self.log.append(
            LogEntry(
                self.step_index, "info", f"went back to the start of step {self.step_index + 1}"
            )
        )
        for listener in self.listeners:
            listener(self)
        return True

    def _restore(self, snap: Snapshot) -> None:
        self.backend.set_params(snap.params)
        self.opt_state = optimizers.OptState(snap.opt_step, snap.opt_slots)
        self.step_index, self.epoch, self.batch_in_epoch = (
            snap.step_index,
            snap.epoch,
            snap.batch_in_epoch,
        )
        self._epoch_sums, self._epoch_count = dict(snap.epoch_sums), snap.epoch_count
        del self.step_history[snap.step_history_len :]
        del self.epoch_history[snap.epoch_history_len :]
        self._order = epoch_order(self.scenario, self.epoch)
        self.phase, self.layer_index = "update", None

    @property
    def oldest_reachable_step(self) -> int | None:
        """How far back ``back()`` can go: the earliest step start still in the history."""
        return self.history.oldest_step

    def _undo_edit(self, snap: Snapshot) -> None:
        self.history.pop()
        self._edited_since_keyframe = True  # any edit left below still differs from a replay
        self.backend.set_params(snap.params)
        self._pending = self._pending_state = None
        self.log.append(
            LogEntry(self.step_index, "info", f"undid the edit {snap.edit}", kind="edit")
        )
        for listener in self.listeners:
            listener(self)

    def set_weight(self, param: str, index: tuple[int, ...], value: float) -> float:
        """Change one number of a parameter by hand; returns the old value. The log notes it.

        Between steps the history keeps the weights from before the edit, so
        ``back()`` undoes it; mid-step, ``back()`` undoes it with the step.
        """
        host = self.backend.to_host(self.backend.params[param]).copy()
        old = float(host[index])
        where = ", ".join(str(i) for i in index)
        if self.phase == "update":
            edit = f"{param}[{where}]: {old:.6g} → {value:.6g}"
            self.history.push(replace(self._snapshot(), edit=edit))
        self._edited_since_keyframe = True  # replays must start after the edit
        host[index] = value
        params = dict(self.backend.params)
        params[param] = self.backend.from_host(host)
        self.backend.set_params(params)
        self._pending = self._pending_state = None
        self.log.append(
            LogEntry(
                self.step_index,
                "info",
                f"edited {param}[{where}]: {old:.6g} → {value:.6g}",
                kind="edit",
            )
        )
        return old

    # ------------------------------------------------ breakpoints and diagnostics
    def _after_step(self, update: dict[str, Any]) -> None:
        if self._replaying:  # recomputing steps already diagnosed
            return
        self.stats = StepStatistics.capture(self, update, self.stats)
        for found in self.diagnostics.observe(self.stats):
            self.log.append(
                LogEntry(self.step_index, "warning", found.text, found.layer, found.kind)
            )

    def parse_expression(self, text: str) -> Expression:
        """Parse a breakpoint expression against this network; raises ExpressionError."""
        return parse(text, self._vocabulary)

    def add_breakpoint(self, text: str) -> Breakpoint:
        """Add a breakpoint (enabled); raises ExpressionError when ``text`` does not parse."""
        breakpoint_ = Breakpoint(text, self.parse_expression(text))
        self.breakpoints.append(breakpoint_)
        return breakpoint_

    def remove_breakpoint(self, i: int) -> Breakpoint:
        """Remove and return breakpoint ``i`` (0-based)."""
        return self.breakpoints.pop(i)

    def toggle_breakpoint(self, i: int) -> bool:
        """Enable or disable breakpoint ``i``; returns whether it is now enabled."""
        breakpoint_ = self.breakpoints[i]
        breakpoint_.enabled = not breakpoint_.enabled
        return breakpoint_.enabled

    def hit_breakpoint(self, until: Expression | None = None) -> BreakHit | None:
        """The breakpoint (or NaN/Inf) hit by the step just finished, or None.

        Checked only between full steps; asking twice about one step gives the
        same answer and logs it once (level ``break``). ``until`` is an extra
        expression checked first, as :meth:`run_until` does.
        """
        stats = self.stats
        if stats is None or stats.step != self.step_index or self.phase != "update":
            return None
        if not self.records:  # went back: the step's arrays are gone
            return None
        if self._hit is not None and self._hit[0] is stats:
            return self._hit[1]
        stop_on_nan = bool(self.diagnostics.settings["stop_on_nan"])
        with np.errstate(all="ignore"):  # measuring an overflowed step overflows too
            hit = evaluate_breakpoints(stats, self.breakpoints, stop_on_nan, until)
        self._hit = (stats, hit)
        if hit is not None:
            self.log.append(LogEntry(self.step_index, "break", hit.describe(), kind=hit.kind))
        return hit

    def run_until(
        self,
        expr: str | None = None,
        max_steps: int | None = None,
        on_step: Callable[[Debugger], None] | None = None,
    ) -> RunResult:
        """Step by batch until ``expr``, an enabled breakpoint or a NaN/Inf hits.

        Without ``max_steps`` it stops at the end of the scenario's epochs; with
        it, after that many steps (going on past the last epoch if asked to).
        ``on_step`` is called after each step (a progress bar, say). Raises
        ExpressionError, before stepping, when ``expr`` does not parse.
        """
        until = self.parse_expression(expr) if expr is not None else None
        return run_until_hit(self, until, max_steps, on_step)
