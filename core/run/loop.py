"""The training loop as a state machine: input → forward (layer by layer) → loss →
backward (layer by layer) → update, and the counters and histories it keeps.

It knows nothing of listeners, diagnostics, breakpoints or time travel: those
watch it from :class:`~backprop_tui.core.Debugger`. So recomputing steps to go
back in time is just stepping this loop again.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..backends import Backend
from ..layers import draw_masks
from ..maths import losses, metrics, optimizers
from ..records import EpochLog, EpochStats, HostArrays, PhaseRecord, StepLog, StepStats
from ..spec.scenario import Scenario


def epoch_order(scenario: Scenario, epoch: int) -> NDArray[np.int64]:
    """The order the training samples are visited in during ``epoch`` (0-based)."""
    n = len(scenario.data.x_train)
    if not scenario.training.shuffle:
        return np.arange(n)
    return np.random.default_rng([scenario.seed, 2, epoch]).permutation(n)


NEXT_PHASE = {"input": "forward", "forward": "loss", "loss": "backward", "backward": "update"}


class TrainingLoop:
    """One training run's state and the phase that comes next.

    ``phase`` is the phase most recently completed (a fresh loop stands where a
    finished step does, at ``"update"``). ``pending`` holds the optimizer's
    changes from the moment the backward pass completes until they are applied.
    """

    def __init__(self, scenario: Scenario, backend: Backend) -> None:
        self.scenario = scenario
        self.backend = backend
        self.layer_count = len(scenario.layers)
        trainable = {name: backend.params[name] for name in scenario.param_names}
        self.opt_state = optimizers.init(scenario.optimizer, trainable, backend.xp)
        self.phase = "update"
        self.layer_index: int | None = None  # last layer done inside forward/backward
        self.step_index = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.records: list[PhaseRecord] = []  # this step's records, in order
        self.last_update: PhaseRecord | None = None
        self.pending: PhaseRecord | None = None  # the update about to be applied, as a record
        self._pending: dict[str, optimizers.ParamUpdate] | None = None
        self._pending_state: optimizers.OptState | None = None
        self._pending_arrays: dict[str, Any] = {}
        self.step_history = StepLog()
        self.epoch_history = EpochLog()
        self.order = epoch_order(scenario, 0)
        self.batch_indices: NDArray[np.int64] = np.arange(0)
        self.batch_metrics: dict[str, float] = {}
        self.epoch_sums: dict[str, float] = {}
        self.epoch_count = 0
        self.grads: dict[str, Any] = {}
        self.loss: float | None = None
        self.penalty: float | None = None  # the part of ``loss`` the weight penalties make
        self.measured: dict[str, Any] = {}  # the last update's old weights and changes
        # Learning rates set while it runs: (first step index it applies to, rate), in
        # step order. Going back before a change drops it, so the steps that follow use
        # the rate in force there, as a run that never changed it would.
        self.lr_changes: list[tuple[int, float]] = []
        self._optimizer = scenario.optimizer

    # ------------------------------------------------------------- position
    def pass_done(self) -> bool:
        if self.phase == "forward":
            return self.layer_index == self.layer_count - 1
        if self.phase == "backward":
            return self.layer_index == 0
        return True

    @property
    def next_phase(self) -> str:
        if self.phase == "update":
            return "input"
        if self.phase in ("forward", "backward") and not self.pass_done():
            return self.phase
        return NEXT_PHASE[self.phase]

    def record_of(self, phase: str, layer_index: int | None = None) -> PhaseRecord | None:
        for record in reversed(self.records):
            if record.phase == phase and (layer_index is None or record.layer_index == layer_index):
                return record
        if phase == "update" and self.phase == "update":
            return self.last_update
        return None

    # ------------------------------------------------------------ learning rate
    def learning_rate_at(self, step_index: int) -> float:
        """The learning rate step ``step_index`` (0-based) updates with."""
        rate = self.scenario.optimizer.learning_rate
        for first, value in self.lr_changes:
            if first > step_index:
                break
            rate = value
        return rate

    @property
    def optimizer(self) -> optimizers.OptimizerSpec:
        """The scenario's optimizer with the learning rate of the step in progress (or next)."""
        return self.optimizer_at(self.step_index)

    def optimizer_at(self, step_index: int) -> optimizers.OptimizerSpec:
        """The scenario's optimizer with the learning rate of step ``step_index``."""
        rate = self.learning_rate_at(step_index)
        if self._optimizer.learning_rate != rate:
            options = {**self.scenario.optimizer.options, "learning_rate": rate}
            self._optimizer = dataclasses.replace(self.scenario.optimizer, options=options)
        return self._optimizer

    def set_learning_rate(self, rate: float) -> None:
        """Update with ``rate`` from the step in progress (or the next one) on."""
        first = self.step_index
        self.lr_changes = [c for c in self.lr_changes if c[0] < first]
        if self.learning_rate_at(first) != rate:
            self.lr_changes.append((first, rate))
        if self._pending is not None:  # backward is done: the pending update used the old rate
            self.compute_pending()

    def forget_lr_changes_after(self, step_index: int) -> None:
        """Going back to ``step_index``: the rates set later are undone."""
        self.lr_changes = [c for c in self.lr_changes if c[0] <= step_index]

    # ------------------------------------------------------------- stepping
    def advance(self) -> PhaseRecord:
        """Do the next phase (or the next layer of a pass) and record it."""
        nxt = self.next_phase
        if nxt == "input":
            record = self._input()
        elif nxt == "forward":
            i = 0 if self.phase != "forward" else (self.layer_index or 0) + 1
            record = self._forward(i)
        elif nxt == "loss":
            record = self._compute_loss()
        elif nxt == "backward":
            i = self.layer_count - 1 if self.phase != "backward" else (self.layer_index or 0) - 1
            record = self._backward(i)
        else:
            record = self._update()
        self.records.append(record)
        return record

    def _record(self, phase: str, arrays: dict[str, Any], **kwargs: Any) -> PhaseRecord:
        return PhaseRecord.make(
            phase, self.step_index, self.epoch, HostArrays(arrays, self.backend.to_host), **kwargs
        )

    def _input(self) -> PhaseRecord:
        size = self.scenario.training.batch_size
        start = self.batch_in_epoch * size
        self.batch_indices = self.order[start : start + size]
        data = self.scenario.data
        masks = draw_masks(self.scenario, self.step_index, len(self.batch_indices))
        self.backend.begin(
            data.x_train[self.batch_indices], data.y_train[self.batch_indices], masks
        )
        self.records = []
        self.drop_pending()
        self.phase, self.layer_index = "input", None
        return self._record(
            "input",
            arrays={"x": self.backend.x, "y": self.backend.y, "indices": self.batch_indices},
        )

    def _forward(self, i: int) -> PhaseRecord:
        b = self.backend
        b.forward_layer(i)
        self.phase, self.layer_index = "forward", i
        arrays = {"a_prev": b.a_prev(i), "z": b.z[i], "a": b.a[i]}
        if i in b.masks:
            arrays["mask"] = b.masks[i]
        return self._record(
            "forward",
            layer_index=i,
            layer_name=self.scenario.layers[i].name,
            arrays=arrays,
            complete=i == self.layer_count - 1,
        )

    def _compute_loss(self) -> PhaseRecord:
        b = self.backend
        self.loss = b.compute_loss()
        self.penalty = b.penalty_value
        names = self.scenario.metrics
        if names:
            self.batch_metrics = metrics.compute(names, b.to_host(b.y), b.to_host(b.a[-1]))
        else:
            self.batch_metrics = {}
        self.phase, self.layer_index = "loss", None
        return self._record(
            "loss",
            loss=self.loss,
            penalty=self.penalty,
            metrics=dict(self.batch_metrics),
            arrays={"y_pred": b.a[-1], "y_true": b.y, "dL_da": b.dL_da[-1]},
        )

    def _backward(self, i: int) -> PhaseRecord:
        b = self.backend
        b.backward_layer(i)
        self.phase, self.layer_index = "backward", i
        layer = self.scenario.layers[i]
        arrays = {"dL_da": b.dL_da[i], "dL_dz": b.dL_dz[i]}
        if i > 0:  # the layer below's upstream gradient comes with this layer's step
            arrays["dL_da_below"] = b.dL_da[i - 1]
        arrays.update({name: b.grads[name] for name in layer.param_names})
        for name in layer.param_names:
            if name in b.penalty_grads:
                arrays[f"{name}.penalty"] = b.penalty_grads[name]
        if i == 0:  # layer order, like params, though backward fills them last layer first
            self.grads = {name: b.grads[name] for name in self.scenario.param_names}
            self.compute_pending()
        return self._record(
            "backward", layer_index=i, layer_name=layer.name, arrays=arrays, complete=i == 0
        )

    # --------------------------------------------------------------- update
    def compute_pending(self) -> None:
        """Work out the optimizer's changes now, on the engine's side, so that
        the update table only ever reads them."""
        updates, state = optimizers.update(
            self.optimizer, self.opt_state, dict(self.grads), self.backend.xp
        )
        self._pending, self._pending_state = updates, state
        params = self.backend.params
        arrays: dict[str, Any] = {}
        for name, upd in updates.items():
            arrays[name] = params[name]
            arrays[f"{name}.grad"] = self.grads[name]
            arrays[f"{name}.change"] = upd.change
            if name in self.backend.penalty_grads:  # the gradient's weight-penalty part
                arrays[f"{name}.penalty"] = self.backend.penalty_grads[name]
            read = upd.terms.__getitem__
            for term in upd.terms:  # read on demand: some terms are worked out only if shown
                arrays[f"{name}.{term}"] = functools.partial(read, term)
        self._pending_arrays = arrays
        self.pending = self._record("update", loss=self.loss, arrays=arrays, complete=False)

    def drop_pending(self) -> None:
        self._pending = self._pending_state = None
        self._pending_arrays = {}
        self.pending = None

    def _update(self) -> PhaseRecord:
        if self._pending is None:  # weights edited after backward: recompute from them
            self.compute_pending()
        updates, state = self._pending, self._pending_state
        assert updates is not None and state is not None
        old = self.backend.params
        if len(updates) == len(old):
            new = optimizers.apply(old, updates)
        else:  # non-trainable numbers take the values the forward pass worked out
            trainable = {name: old[name] for name in updates}
            new = {**old, **optimizers.apply(trainable, updates), **self.backend.state_updates}
        self.backend.set_params(new)
        self.opt_state = state
        arrays = dict(self._pending_arrays)
        self.drop_pending()
        measured: dict[str, Any] = {}  # the backend's own arrays, for the step's statistics
        for name, upd in updates.items():
            measured[name] = old[name]
            measured[f"{name}.change"] = upd.change
            arrays[f"{name}.new"] = new[name]
        self.measured = measured
        self.phase, self.layer_index = "update", None
        record = self._record("update", loss=self.loss, arrays=arrays)
        self.last_update = record
        self._finish_step()
        return record

    def _finish_step(self) -> None:
        loss = self.loss if self.loss is not None else math.nan
        self.step_history.append(
            StepStats(self.step_index, self.epoch, loss, dict(self.batch_metrics))
        )
        n = len(self.batch_indices)
        self.epoch_count += n
        self.epoch_sums["loss"] = self.epoch_sums.get("loss", 0.0) + loss * n
        for key, value in self.batch_metrics.items():
            self.epoch_sums[key] = self.epoch_sums.get(key, 0.0) + value * n
        self.step_index += 1
        self.batch_in_epoch += 1
        if self.batch_in_epoch * self.scenario.training.batch_size >= len(self.order):
            self._finish_epoch()

    def _finish_epoch(self) -> None:
        count = max(self.epoch_count, 1)
        means = {k: v / count for k, v in self.epoch_sums.items()}
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
        self.epoch_sums, self.epoch_count = {}, 0
        self.order = epoch_order(self.scenario, self.epoch)

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
        # As Keras' evaluate: the weight penalties count in the loss on held-out data too.
        value = losses.compute(self.scenario.loss, y, y_pred, z, fused).value
        if self.backend.regularizers:
            value += self.backend.penalty()
        return value, metrics.compute(self.scenario.metrics, y, y_pred)

    def forget_step(self) -> None:
        """Stand between steps with nothing of a step in progress (after going back)."""
        self.phase, self.layer_index = "update", None
        self.records = []
        self.drop_pending()
        self.last_update = None
        self.grads, self.loss, self.batch_metrics = {}, None, {}
        self.penalty = None
        self.backend.x = None
