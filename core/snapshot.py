"""A run as it stood at one step boundary, for drawing while the run steps on.

While a run continues on the engine's thread, the screen draws from the latest
:class:`RunSnapshot` the engine published, and never waits for the engine's lock.
Taking one is cheap, because nothing is copied that the engine does not replace
anyway: a step's records, parameters and gradients are new arrays each step
(the engine never writes into an array it has handed out), so a snapshot holds
references to them; the run's growing logs are read up to their length at that
moment. Whatever a pane derives from the step (the ranking of the update table,
a heat map's block sums) is worked out once per snapshot and kept with it
(:meth:`RunSnapshot.derived`), not once per redraw.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from .records import EpochStats, LogEntry, PhaseRecord, StepLog, StepStats, UpdateArrays
from .runview import (
    Batch,
    InputMap,
    LayerView,
    RunKind,
    RunReading,
    UpdateState,
)

if TYPE_CHECKING:
    from .watch.breakpoints import Breakpoint

T = TypeVar("T")
PHASES = ("input", "forward", "loss", "backward", "update")


class Prefix(Sequence[T]):
    """The first ``n`` items of a sequence that only grows at its end (a log)."""

    def __init__(self, items: Sequence[T], n: int) -> None:
        self._items = items
        self._n = n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            start, stop, stride = index.indices(self._n)
            return list(self._items[start:stop:stride])
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError("index out of range")
        return self._items[index]

    def __iter__(self) -> Iterator[T]:
        return itertools.islice(iter(self._items), self._n)


def history_columns(history: Sequence[StepStats], start: int) -> dict[str, NDArray[np.float64]]:
    """The loss and each metric of ``history[start:]`` as arrays (a metric's only at the
    steps that have it), in the order they first appeared. A run's own :class:`StepLog`
    (or a snapshot's prefix of one) is read column by column, without building a
    :class:`StepStats` a step: a chart that follows a fast run reads hundreds of new
    steps a frame."""
    stop = len(history)
    log = history._items if isinstance(history, Prefix) else history
    if isinstance(log, StepLog):
        return log.figure_columns(start, stop)
    figures: dict[str, list[float]] = {}
    for stats in history[start:stop]:
        figures.setdefault("loss", []).append(stats.loss)
        for name, value in stats.metrics.items():
            figures.setdefault(name, []).append(value)
    return {name: np.array(values, dtype=np.float64) for name, values in figures.items()}


class _Heavy:
    """What a detailed snapshot reads of the run's tensors (host copies on a GPU)."""

    def __init__(self, run: RunReading, n: int) -> None:
        self.params = run.params
        self.grads = run.grads
        self.records: dict[tuple[str, int | None], PhaseRecord | None] = {
            (phase, None): run.record_of(phase) for phase in PHASES
        }
        for phase in ("forward", "backward"):
            for i in range(n):
                self.records[(phase, i)] = run.record_of(phase, i)
        self.layer_arrays = [dict(run.layer_arrays(i)) for i in range(n)]
        layers = run.layers
        self.updates = {
            name: run.update_arrays(name) for layer in layers for name in layer.param_names
        }
        self.grad_norms = {layer.name: run.grad_norm(layer.name) for layer in layers}
        self.recorded: dict[str, int | None] = {
            what: run.recorded_step(what) for what in ("params", "grads")
        }
        self.next_batch = run.next_batch()


class RunSnapshot:
    """What a run showed at one step boundary; satisfies :class:`RunReading`.

    Made by the engine's thread while it holds the run (between two steps), read
    by the UI thread without it.
    """

    def __init__(
        self, run: RunReading, detailed: bool = False, heavy_from: RunSnapshot | None = None
    ) -> None:
        """``detailed``: the screen draws every pane from this one (a few times a second),
        so what the panes derive is worked out beforehand. ``heavy_from``: a summary
        snapshot, for the panes redrawn at every frame (counters, loss, logs), which
        copies no tensor: parameters, gradients and a layer's arrays are
        ``heavy_from``'s (a GPU run copies them to the host only for a detailed one)."""
        self._run = run  # read only for what never changes during a run
        self.detailed = detailed
        self.kind: RunKind = run.kind
        self.title = run.title
        self.description = run.description
        self.where = run.where
        self.input_shape = run.input_shape
        self.layers: Sequence[LayerView] = run.layers
        self.layer_names = list(run.layer_names)
        self.loss_name = run.loss_name
        self.fused_output = run.fused_output
        self.update_rule = run.update_rule
        self.term_names = run.term_names
        self.metric_names = run.metric_names
        self.can_train = run.can_train
        self.can_edit = run.can_edit
        self.can_go_back = run.can_go_back
        self.goes_back_exactly = run.goes_back_exactly
        self.shows_phases = run.shows_phases
        self.can_gradcheck = run.can_gradcheck
        self.can_set_learning_rate = run.can_set_learning_rate
        self.phase = run.phase
        self.next_phase = run.next_phase
        self.layer_index = run.layer_index
        self.step_index = run.step_index
        self.epoch = run.epoch
        self.batch_in_epoch = run.batch_in_epoch
        self.batch_size = run.batch_size
        self.total_steps = run.total_steps
        self.total_epochs = run.total_epochs
        self.steps_per_epoch = run.steps_per_epoch
        self.finished = run.finished
        self.step_number = run.step_number
        self.epoch_number = run.epoch_number
        self.loss = run.loss
        self.penalty = run.penalty
        self.learning_rate = run.learning_rate
        self._metrics = dict(run.metrics)
        self.step_history: Sequence[StepStats] = Prefix(run.step_history, len(run.step_history))
        self.epoch_history: Sequence[EpochStats] = Prefix(run.epoch_history, len(run.epoch_history))
        self.log: Sequence[LogEntry] = Prefix(run.log, len(run.log))
        self.records: Sequence[PhaseRecord] = tuple(run.records)
        self.last_record = run.last_record
        if heavy_from is not None:
            self._heavy: _Heavy = heavy_from._heavy
        else:
            self._heavy = _Heavy(run, len(self.layers))
        self.no_input_map = run.no_input_map
        self.breakpoints: Sequence[Breakpoint] = tuple(run.breakpoints)
        self.oldest_reachable_step = run.oldest_reachable_step
        self._derived: dict[Hashable, Any] = {}
        self._derived_lock = threading.Lock()

    # ----------------------------------------------------------- what it held
    @property
    def metrics(self) -> dict[str, float]:
        return dict(self._metrics)

    @property
    def params(self) -> dict[str, NDArray[Any]]:
        return dict(self._heavy.params)

    @property
    def grads(self) -> dict[str, NDArray[Any]]:
        return dict(self._heavy.grads)

    def record_of(self, phase: str, layer_index: int | None = None) -> PhaseRecord | None:
        return self._heavy.records.get((phase, layer_index))

    def layer_arrays(self, i: int) -> Mapping[str, NDArray[Any]]:
        return self._heavy.layer_arrays[i]

    def update_arrays(self, param: str) -> tuple[UpdateState, UpdateArrays] | None:
        return self._heavy.updates.get(param)

    def grad_norm(self, layer: str) -> float | None:
        return self._heavy.grad_norms.get(layer)

    def recorded_step(self, what: Literal["params", "grads"]) -> int | None:
        return self._heavy.recorded[what]

    def next_batch(self) -> Batch | None:
        return self._heavy.next_batch

    def batch(self, indices: NDArray[np.int64]) -> Batch | None:
        return self._run.batch(indices)  # the data itself never changes

    def input_map(self, cols: int, rows: int, layer: int | None = None) -> InputMap | None:
        """Always None: a map is a forward pass of the weights, asked of the run itself
        (holding its lock, off the UI thread)."""
        return None

    # ------------------------------------------------------------ derived data
    def derived(self, key: Hashable, work_out: Callable[[], T]) -> T:
        """``work_out()``, done once for this snapshot whichever thread asks first
        (the engine's, before it publishes the snapshot, or the UI's)."""
        with self._derived_lock:
            if key in self._derived:
                found: T = self._derived[key]
                return found
        value = work_out()
        with self._derived_lock:
            self._derived.setdefault(key, value)
            kept: T = self._derived[key]
        return kept


__all__ = ["Prefix", "RunSnapshot", "history_columns"]
