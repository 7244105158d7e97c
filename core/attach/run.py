"""``AttachedRun``: the user's own PyTorch model, optimizer and data, stepped as a
:class:`~backprop_tui.core.RunView`.

One training step is the plain loop, cut into phases::

    input     the next batch of ``data``
    forward   optimizer.zero_grad(); output = model(x)  (module by module)
    loss      loss = loss_fn(output, y)   (or the model's own loss)
    backward  loss.backward()             (module by module); clip_grad_norm_
    update    optimizer.step(); scheduler.step()

The forward pass runs whole when its first layer is asked for, with hooks
keeping every module call's output; stepping by layer then reveals the calls
one by one, in the order they finished. The backward pass does the same with
dL/d(output) of each call, revealed from the last layer to the first. Nothing
is computed differently from the plain loop, so after N steps the parameters
and optimizer state are bit for bit those of the plain loop (on the CPU).

The update table is measured: each parameter is copied before
``optimizer.step()`` and its change read after, beside the optimizer's own
state for it (``exp_avg``, ``momentum_buffer``…), this step's learning rate
and the clipping factor. Before the update, when stepping by phase or layer
(so that the run stops there), the pending update is worked out when the
backward pass ends by stepping a deep copy of the optimizer over copies of
the parameters (:mod:`.pending`); stepping by batch or epoch skips it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ..errors import NotPossible
from ..records import (
    EpochLog,
    EpochStats,
    HostArrays,
    LogEntry,
    PhaseRecord,
    StepLog,
    StepStats,
    UpdateArrays,
)
from ..run.gradcheck import GradCheckResult
from ..run.update_table import from_record
from ..runview import GRANULARITIES, Batch, Granularity, LayerView, RunKind, RunView, UpdateState
from ..spec.expression_tree import Expression
from ..watch.breakpoints import BreakHit, Breakpoint, RunResult
from ..watch.breakpoints import run_until as run_until_hit
from ..watch.watcher import Watch
from .batches import Entry, Feed, batch_x, batch_y, call_model, check_loss, loss_of, to_host
from .chain import chain_lines
from .checks import check_inputs
from .collective import reduce_for_breakpoints, world
from .errors import AttachError
from .hooks import (
    Call,
    LayerInfo,
    Tracer,
    discover_layers,
    drivable,
    first_tensor,
    never_in_place,
    unhooked,
)
from .live import LiveArrays, LiveTerms
from .names import parse_on_modules
from .pending import pending_update
from .state import StepState, edit_text, finish_statistics
from .stats import layer_spec, names_by_layer, square_sums
from .travel import MIN_KEYFRAME_EVERY, Keyframes, restore, take
from .views import layer_view, state_terms, term_names_of, update_rule_of

__all__ = ["AttachedRun"]

FINISHED = "training finished: {epochs} epochs, {steps} steps; train on with E (one more epoch)"
NEXT_PHASE = {"input": "forward", "forward": "loss", "loss": "backward", "backward": "update"}
Edit = tuple[str, tuple[int, ...], float, float]  # param, index, old, new


def _read_only(array: NDArray[Any]) -> NDArray[Any]:
    view = array.view()
    view.flags.writeable = False
    return view


class AttachedRun:
    """A training run of the user's model, stepped a phase, a layer, a batch or an epoch."""

    kind: RunKind = "attached"
    can_train = True
    can_edit = True
    can_go_back = True
    shows_phases = True
    can_gradcheck = True
    can_set_learning_rate = False  # the script's optimizer (and scheduler) set it
    penalty: float | None = None  # a model's own penalties are part of its loss

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[Any, Any], torch.Tensor] | None,
        optimizer: torch.optim.Optimizer,
        data: Iterable[Any],
        epochs: int = 1,
        scheduler: Any = None,
        clip_grad_norm: float | None = None,
        history_mb: float = 256.0,
        keyframe_every: int | None = None,
        breakpoints: Sequence[str] = (),
        diagnostics: Mapping[str, float | bool] | None = None,
    ) -> None:
        check_inputs(model, loss_fn, optimizer, data, epochs, scheduler, clip_grad_norm)
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.scheduler, self.clip = scheduler, clip_grad_norm
        self.epochs = epochs
        self._extra_epochs = 0
        self._params: dict[str, nn.Parameter] = dict(model.named_parameters())
        self._param_ids = {id(p): name for name, p in self._params.items()}
        self.feed = Feed(data)
        if keyframe_every is None and world() is not None:
            # Every rank must go back from the same step (its replay meets the others'
            # collectives), so the spacing may not follow each rank's own clock.
            keyframe_every = MIN_KEYFRAME_EVERY
        self.keyframes = Keyframes(int(history_mb * 1024 * 1024), keyframe_every)
        self.tracer = Tracer(model)
        self.tracer.install()
        first = self.feed.entry(0, epochs)
        if first is None:
            raise AttachError("data yielded no batch at all; give it at least one")
        self._entry: Entry | None = first
        self._infos, self._sample_output, self._metric_names = self._discover(first)
        self._layers = tuple(
            layer_view(info, self._params, call.output, call.a_prev)
            for info, call in self._sample_output
        )
        self._by_call = {(id(info.module), info.call): i for i, info in enumerate(self._infos)}
        self.tracer.layers = {id(info.module) for info in self._infos}
        # Once the layers are known only their modules keep hooks: a container's calls
        # (nn.Sequential, the model itself) then take torch's quick path without hooks.
        self.tracer.remove()
        # A plain nn.Sequential is driven child by child (see Tracer.drive), with no hooks.
        self._children = drivable(model, self._infos) if loss_fn is not None else None
        if self._children is None:
            self._hook_layers()
        else:
            self.tracer.keep_copies = not never_in_place(self._children, loss_fn)
        self._driven_modules = [m for c in self._children or () for m in c.modules()]
        self._activation = {v.name: v.activation or v.kind.lower() for v in self._layers}
        # What the diagnostics read of each layer, fixed once the layers are known.
        self.layer_specs = tuple(
            layer_spec(v.name, v.kind, v.activation, _spec_units(v)) for v in self._layers
        )
        self.param_names_by_layer = {info.name: info.param_names for info in self._infos}
        self.stat_names = names_by_layer(self.param_names_by_layer)  # as the statistics read them
        self._input_shape = self._first_input_shape(first)
        device = next(iter(self._params.values())).device
        self._device = device
        self.goes_back_exactly = (
            device.type == "cpu" or torch.are_deterministic_algorithms_enabled()
        )
        self.watch = Watch(diagnostics or {}, self.parse_expression, tuple(breakpoints))
        self._listeners: list[Callable[[RunView], None]] = []
        # counters: ``epoch`` counts finished epochs, as the scenario loop does
        self.phase = "update"
        self.layer_index: int | None = None
        self.step_index = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        # This step's records so far, each made when first read: stepping by batch, most
        # steps' records never are (see :meth:`_advance`).
        self._made: list[PhaseRecord | Callable[[], PhaseRecord]] = []
        self.last_update: PhaseRecord | None = None
        self.step_history = StepLog()
        self.epoch_history = EpochLog()
        self._sums: dict[str, float] = {}
        self._count = 0
        self.state = StepState()
        self._edits: dict[int, list[Edit]] = {}
        self._mid_edits: dict[int, list[Edit]] = {}
        self._version = 0
        self._after_update: tuple[int, dict[str, torch.Tensor]] | None = None
        # Σ x² of those copies, by id, for the next step's statistics (its old weights)
        self._after_sums: dict[int, tuple[Any, float]] = {}
        self._params_host: tuple[int, dict[str, NDArray[Any]]] | None = None
        self._grads_host: tuple[int, dict[str, NDArray[Any]]] | None = None
        self._term_names = term_names_of(optimizer, clip_grad_norm is not None)
        self._fine = True  # stepping by phase or layer: the pending update is shown
        self.distributed = world() is not None
        self._grads_stay = _grads_stay(optimizer, clip_grad_norm, self.distributed)
        self.pending: PhaseRecord | None = None
        self._live = LiveTerms()

    # ------------------------------------------------------------- discovery
    def _discover(
        self, entry: Entry
    ) -> tuple[list[LayerInfo], list[tuple[LayerInfo, Call]], tuple[str, ...]]:
        """One forward pass that changes nothing (no gradient; random state and buffers
        put back) to learn which modules run, in what order."""
        buffers = [(b, b.detach().clone()) for b in self.model.buffers()]
        rng = entry.rng
        tracer = self.tracer
        tracer.start()
        try:
            with torch.no_grad():
                output, y = call_model(self.model, entry.batch, self.loss_fn is not None)
                if self.loss_fn is None:
                    loss_of(output)
                else:  # a loss that is not a scalar is refused here, before any training
                    check_loss(self.loss_fn(output, y))
        finally:
            tracer.stop()
            with torch.no_grad():
                for live, saved in buffers:
                    live.copy_(saved)
            rng.restore()
        infos = discover_layers(self.model, tracer.calls)
        by_call = {(id(c.module), c.number): c for c in tracer.calls}
        outputs = [(info, by_call[(id(info.module), info.call)]) for info in infos]
        head = first_tensor(output)
        metrics: tuple[str, ...] = ()
        if _classifies(head, y):
            metrics = ("accuracy",)
        tracer.calls = []
        return infos, outputs, metrics

    def _hook_layers(self) -> None:
        self.tracer.install({id(info.module): info.module for info in self._infos}.values())

    def _call_model(self, batch: Any) -> tuple[Any, Any]:
        """The model on ``batch``, each layer's call kept by the tracer."""
        children = self._children
        if children is not None and not _same_children(self.model, children):
            # A hook was put on the model since (it must run), or its children changed:
            # the layers get their hooks and the model is called as it is.
            self._children = children = None
            self.tracer.keep_copies = True
            self._hook_layers()
        if children is not None:
            if not self.tracer.keep_copies and not all(map(unhooked, self._driven_modules)):
                self.tracer.keep_copies = True  # a hook put on since may write in place
            return call_model(self.model, batch, True, lambda x: self.tracer.drive(children, x))
        self.tracer.start()
        try:
            return call_model(self.model, batch, self.loss_fn is not None)
        finally:
            self.tracer.stop()

    def _first_input_shape(self, entry: Entry) -> tuple[int, ...]:
        x = batch_x(entry.batch, self.loss_fn is not None)
        return tuple(int(n) for n in x.shape[1:]) if x is not None else ()

    # ---------------------------------------------------------- what it is
    @property
    def title(self) -> str:
        return type(self.model).__name__

    @property
    def description(self) -> str:
        count = sum(p.numel() for p in self._params.values())
        return (
            f"your {type(self.model).__name__}: {count:,} parameters in {len(self._layers)} "
            f"layers, {type(self.optimizer).__name__}, loss {self.loss_name}"
        )

    @property
    def where(self) -> str:
        dtype = str(next(iter(self._params.values())).dtype).replace("torch.", "")
        return f"torch {self._device} {dtype}"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._input_shape

    @property
    def layers(self) -> Sequence[LayerView]:
        return self._layers

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self._layers]

    @property
    def loss_name(self) -> str:
        if self.loss_fn is None:
            return "the model's own loss"
        fn = self.loss_fn
        return getattr(fn, "__name__", None) or type(fn).__name__

    @property
    def fused_output(self) -> bool:
        return False

    @property
    def update_rule(self) -> str:
        return update_rule_of(self.optimizer)

    @property
    def term_names(self) -> tuple[str, ...]:
        return self._term_names

    @property
    def metric_names(self) -> tuple[str, ...]:
        return self._metric_names

    # ------------------------------------------------------------ counters
    @property
    def next_phase(self) -> str:
        if self.phase == "update":
            return "input"
        if self.phase in ("forward", "backward") and not self._pass_done():
            return self.phase
        return NEXT_PHASE[self.phase]

    def _pass_done(self) -> bool:
        if self.phase == "forward":
            return self.layer_index == len(self._layers) - 1
        if self.phase == "backward":
            return self.layer_index == 0
        return True

    @property
    def batch_size(self) -> int:
        entry = self._entry if self._entry is not None else self.feed.entries.get(0)
        if entry is None:
            return 0
        x = batch_x(entry.batch, self.loss_fn is not None)
        return int(x.shape[0]) if x is not None and x.ndim else 1

    @property
    def steps_per_epoch(self) -> int:
        if self.feed.length is not None:
            return self.feed.length
        ended = sorted(self.feed.ended)
        return ended[0] + 1 if ended else 0

    @property
    def total_epochs(self) -> int:
        return self.epochs + self._extra_epochs

    @property
    def total_steps(self) -> int:
        return self.total_epochs * self.steps_per_epoch

    @property
    def finished(self) -> bool:
        return self.epoch >= self.total_epochs and self.phase == "update"

    @property
    def step_number(self) -> int:
        return self.step_index + (0 if self.phase == "update" else 1)

    @property
    def epoch_number(self) -> int:
        if self.phase != "update":
            return self.epoch + 1
        return self.step_history[-1].epoch + 1 if self.step_history else 0

    def extend(self, epochs: int) -> None:
        """Train ``epochs`` more than asked for at first."""
        if epochs < 1:
            raise ValueError("extend by one epoch or more")
        self._extra_epochs += epochs
        self.watch.note(self.step_number, f"training goes on: {self.total_epochs} epochs in all")

    # ------------------------------------------------------------- numbers
    @property
    def loss(self) -> float | None:
        return self.state.loss

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.state.metrics)

    @property
    def params(self) -> dict[str, NDArray[Any]]:
        """Every parameter as a read-only host copy, by ``named_parameters()`` name."""
        if self._params_host is None or self._params_host[0] != self._version:
            host = {k: _read_only(to_host(p).copy()) for k, p in self._params.items()}
            self._params_host = (self._version, host)
        return dict(self._params_host[1])

    @property
    def grads(self) -> dict[str, NDArray[Any]]:
        """The gradients of the last backward pass, before any clipping."""
        grads = self.state.grads
        if self._grads_host is None or self._grads_host[0] != id(grads):
            host = {k: _read_only(to_host(g)) for k, g in grads.items()}
            self._grads_host = (id(grads), host)
        return dict(self._grads_host[1])

    @property
    def activations(self) -> dict[str, NDArray[Any]]:
        """Each layer's output in the last forward pass, as host arrays."""
        out: dict[str, NDArray[Any]] = {}
        for view, call in zip(self._layers, self.state.calls, strict=False):
            if call is not None and call.output is not None:
                out[view.name] = _read_only(to_host(call.output))
        return out

    @property
    def log(self) -> list[LogEntry]:
        return self.watch.log

    @property
    def records(self) -> list[PhaseRecord]:
        """This step's records so far, in the order its phases and layers were done."""
        made = self._made
        for k, item in enumerate(made):
            if not isinstance(item, PhaseRecord):
                made[k] = item()
        return made  # type: ignore[return-value]  # every item is a record now

    @property
    def last_record(self) -> PhaseRecord | None:
        return self._made_record(-1) if self._made else None

    def _made_record(self, k: int) -> PhaseRecord:
        item = self._made[k]
        if not isinstance(item, PhaseRecord):
            item = self._made[k] = item()
        return item

    def record_of(self, phase: str, layer_index: int | None = None) -> PhaseRecord | None:
        for record in reversed(self.records):
            if record.phase == phase and (layer_index is None or record.layer_index == layer_index):
                return record
        if phase == "update" and self.phase == "update":
            return self.last_update
        return None

    def layer_arrays(self, i: int) -> dict[str, NDArray[Any]]:
        out: dict[str, NDArray[Any]] = {}
        forward = self.record_of("forward", i)
        if forward is not None:
            out.update({k: forward.arrays[k] for k in forward.arrays})
        backward = self.record_of("backward", i)
        if backward is not None:
            out.update({k: backward.arrays[k] for k in backward.arrays})
        return out

    def update_arrays(self, param: str) -> tuple[UpdateState, UpdateArrays] | None:
        """Once the backward pass is done, the pending update (worked out on a copy of the
        optimizer when stepping by phase or layer); after the update, the applied one."""
        if self.pending is not None:
            found = from_record(self.pending, param)
            return ("pending", found) if found is not None else None
        if self.phase not in ("update", "input") or self.last_update is None:
            return None
        found = from_record(self.last_update, param)
        return ("applied", found) if found is not None else None

    def grad_norm(self, layer: str) -> float | None:
        stats = self.watch.stats
        if stats is not None and self.phase == "update" and stats.step == self.step_index:
            return stats.grad_norm(layer)
        i = self.layer_names.index(layer)
        if not self.state.grads or not self._layers[i].param_names:
            return None  # a module without parameters has no gradient of its own
        total = 0.0
        for name in self._layers[i].param_names:
            g = self.state.grads.get(name)
            if g is not None:
                total += float(g.double().square().sum())
        return float(np.sqrt(total))

    def recorded_step(self, what: Literal["params", "grads"]) -> int | None:
        return None

    def next_batch(self) -> Batch | None:
        if self.phase != "update" or self._entry is None:
            return None
        return self._batch_of(self._entry)

    def _batch_of(self, entry: Entry) -> Batch:
        with_fn = self.loss_fn is not None
        x, y = batch_x(entry.batch, with_fn), batch_y(entry.batch, with_fn)
        hx = to_host(x) if x is not None else np.zeros((0,))
        n = hx.shape[0] if hx.ndim else 1
        hy = to_host(y) if y is not None else np.zeros((n, 0))
        indices = np.arange(entry.first_sample, entry.first_sample + n, dtype=np.int64)
        return Batch(indices, hx, hy)

    def batch(self, indices: NDArray[np.int64]) -> Batch | None:
        return None  # the data is the user's iterable: samples cannot be looked up by id

    @property
    def no_input_map(self) -> str | None:
        return "an input map needs a scenario with two inputs; this is your own model"

    def input_map(self, cols: int, rows: int, layer: int | None = None) -> None:
        return None

    @property
    def breakpoints(self) -> list[Breakpoint]:
        return self.watch.breakpoints

    @property
    def oldest_reachable_step(self) -> int | None:
        return self.keyframes.oldest

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
        # Only a step that stops between backward and update shows the pending update.
        self._fine = granularity in ("phase", "layer")
        start = time.perf_counter()
        try:
            return self._step(granularity)
        finally:  # the stepping's own time spaces the keyframes, not the user's reading
            self.keyframes.spent += time.perf_counter() - start

    def _step(self, granularity: Granularity) -> PhaseRecord:
        self._advance()
        if granularity == "phase":
            while self.phase in ("forward", "backward") and not self._pass_done():
                self._advance()
        elif granularity != "layer":
            while self.phase != "update":
                self._advance()
            if granularity == "epoch":
                while self.batch_in_epoch != 0 and not self.finished:
                    self._advance()
                    while self.phase != "update":
                        self._advance()
        return self._made_record(-1)

    def _advance(self, quiet: bool = False) -> None:
        """One phase (or layer) further. Its record is made when first read: stepping by
        batch, a three-layer MLP made thirteen records a step, and the next step dropped
        them unread."""
        record: PhaseRecord | Callable[[], PhaseRecord]
        nxt = self.next_phase
        if nxt == "input":
            record = self._input()
        elif nxt == "forward":
            record = self._forward(0 if self.phase != "forward" else (self.layer_index or 0) + 1)
        elif nxt == "loss":
            record = self._loss()
        elif nxt == "backward":
            last = len(self._layers) - 1
            record = self._backward(
                last if self.phase != "backward" else (self.layer_index or 0) - 1
            )
        else:
            record = self._update(quiet)
        self._made.append(record)
        if not quiet:
            self._tell()

    def _record(self, phase: str, arrays: Mapping[str, Any], **kwargs: Any) -> PhaseRecord:
        return _make_record(phase, self.step_index, self.epoch, lambda: arrays, kwargs)

    def _later(
        self, phase: str, arrays: Callable[[], Mapping[str, Any]], **kwargs: Any
    ) -> Callable[[], PhaseRecord]:
        """The record of the phase just done, made when first read (see :meth:`_advance`);
        ``arrays`` gives its arrays then, from what the step holds for the rest of it."""
        return functools.partial(_make_record, phase, self.step_index, self.epoch, arrays, kwargs)

    def _input(self) -> Callable[[], PhaseRecord]:
        entry = self._entry
        if entry is None:  # the data ran out and training was extended since
            entry = self.feed.entry(self.step_index, self.total_epochs)
            if entry is None:
                raise NotPossible(FINISHED.format(epochs=self.total_epochs, steps=self.step_index))
            self._entry = entry
            self._start_epoch_if_new(entry)
        k = self.step_index
        self._apply(self._edits.get(k, ()))
        if self.keyframes.due(k) or k in self._edits or self.keyframes.oldest is None:
            before = self.keyframes.base_for(k - 1)
            if before is not None and before.batches_until < k:
                # the batches it replays from count against the cap, once each
                start = max(before.step, before.batches_until)
                before.nbytes += self.feed.bytes_between(start, k)
                before.batches_until = k
            kept = self._after_update
            copies = kept[1] if kept is not None and kept[0] == self._version else None
            self.keyframes.push(
                take(k, self.model, self.optimizer, self.scheduler, self._counters(), copies)
            )
            oldest = self.keyframes.oldest
            if oldest is not None:
                self.feed.forget_before(oldest)
        self._apply(self._mid_edits.get(k, ()))
        self.state = StepState(entry=entry)
        self.pending = None
        self._made = []
        self.phase, self.layer_index = "input", None
        return self._later("input", functools.partial(self._input_arrays, entry))

    def _input_arrays(self, entry: Entry) -> dict[str, Any]:
        batch = self._batch_of(entry)
        return {"x": batch.x, "y": batch.y, "indices": batch.indices}

    def _forward(self, i: int) -> Callable[[], PhaseRecord]:
        state = self.state
        if i == 0:
            assert state.entry is not None
            # The last step is over: what showed it between steps (its statistics, its
            # update record: from here neither pane nor breakpoint reads them) goes now,
            # so that this step's tensors can take the memory of that step's.
            self.last_update = None
            self.watch.forget()
            self.optimizer.zero_grad()
            output, y = self._call_model(state.entry.batch)
            state.output, state.y = output, y
            calls: list[Call | None] = [None] * len(self._layers)
            for c in self.tracer.calls:
                index = self._by_call.get((id(c.module), c.number))
                if index is not None:
                    calls[index] = c
            state.calls = calls
            if self.loss_fn is None:
                state.loss_tensor = loss_of(output)
        self.phase, self.layer_index = "forward", i
        return self._later(
            "forward",
            functools.partial(_forward_arrays, state.calls[i]),
            layer_index=i,
            layer_name=self._layers[i].name,
            complete=i == len(self._layers) - 1,
        )

    def _loss(self) -> Callable[[], PhaseRecord]:
        state = self.state
        if self.loss_fn is not None:
            state.loss_tensor = check_loss(self.loss_fn(state.output, state.y))
        assert state.loss_tensor is not None
        state.loss = float(state.loss_tensor.detach())
        head = first_tensor(state.output)
        state.metrics = {}
        if "accuracy" in self._metric_names and head is not None and _classifies(head, state.y):
            assert isinstance(state.y, torch.Tensor)
            state.metrics["accuracy"] = _hits(head.detach(), state.y) / max(state.y.numel(), 1)
        self.phase, self.layer_index = "loss", None
        return self._later(
            "loss",
            functools.partial(_loss_arrays, head, state.y),
            loss=state.loss,
            metrics=dict(state.metrics),
        )

    def _backward(self, i: int) -> Callable[[], PhaseRecord]:
        state = self.state
        if i == len(self._layers) - 1:
            assert state.loss_tensor is not None
            state.loss_tensor.backward()  # type: ignore[no-untyped-call]
            self.tracer.collect_grads()
            if self._grads_stay:  # backward's own tensors (no graph: no detached twin to make)
                grads = {
                    n: _detached(p.grad) for n, p in self._params.items() if p.grad is not None
                }
            else:
                grads = {
                    n: p.grad.detach().clone()
                    for n, p in self._params.items()
                    if p.grad is not None
                }
            state.grads = grads
            square_sums(state.sums, grads.values())
            if self.clip is not None:
                live = [p for p in self._params.values() if p.grad is not None]
                total = torch.nn.utils.clip_grad_norm_(live, self.clip)
                state.grad_norm = float(total)
                state.clip_factor = min(1.0, self.clip / (state.grad_norm + 1e-6))
        if i == 0 and self._fine:
            clip = state.clip_factor if self.clip is not None else None
            found = pending_update(self.optimizer, self._params, state.grads, clip)
            if found is not None:
                self.pending = self._record("update", found, loss=state.loss, complete=False)
        self.phase, self.layer_index = "backward", i
        return self._later(
            "backward",
            functools.partial(self._backward_arrays, state, i),
            layer_index=i,
            layer_name=self._layers[i].name,
            complete=i == 0,
        )

    def _backward_arrays(self, state: StepState, i: int) -> dict[str, Any]:
        call = state.calls[i]
        grad = call.grad if call is not None and call.grad is not None else np.zeros((0,))
        arrays: dict[str, Any] = {"dL_da": grad, "dL_dz": grad}
        # the grad_fn chain, worked out when a pane reads it (most steps' never are)
        arrays["grad_fn"] = functools.partial(self._chain, state, i)
        for name in self._layers[i].param_names:
            if name in state.grads:
                arrays[name] = state.grads[name]
        return arrays

    def _chain(self, state: StepState, i: int) -> tuple[str, ...]:
        """Layer ``i``'s backward in step ``state`` as autograd ran it (see :mod:`.chain`)."""
        call = state.calls[i] if i < len(state.calls) else None
        if call is None:
            return ("this module did not run in this step",)
        source = None
        input_grad = None
        for k, other in enumerate(state.calls):
            if other is not None and other.output is not None and other.output is call.a_prev:
                source, input_grad = self._layers[k].name, other.grad
        return chain_lines(call, input_grad, source, self._param_ids, state.grads)

    def _update(self, quiet: bool) -> PhaseRecord:
        state = self.state
        self.pending = None
        params = self._params
        lr_of: dict[int, float] = {}
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                lr_of[id(p)] = float(group["lr"])
        kept = self._after_update
        if kept is not None and kept[0] == self._version:  # unchanged since the last update
            old = kept[1]
        else:
            old = {n: p.detach().clone() for n, p in params.items()}
        # The last update's record may still hold the optimizer's own state tensors.
        self.last_update = None
        self._live.before_change()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self._version += 1
        new_params: dict[str, torch.Tensor] = {}
        changes: dict[str, torch.Tensor] = {}
        measured: dict[str, Any] = {}
        for name, p in params.items():
            # Parameter by parameter, so each is measured while it is in the cache.
            new = new_params[name] = p.detach().clone()
            change = changes[name] = new - old[name]
            measured[name], measured[f"{name}.change"] = old[name], change
            if not quiet:
                square_sums(state.sums, (new, change))
        self._after_update = (self._version, new_params)  # never written: copies
        # Σ x² of this step's old weights, worked out by the last step as its new ones
        # (its statistics, which held them, went when this step began computing)
        before, sums = self._after_sums, state.sums
        self._after_sums = {id(t): sums[id(t)] for t in new_params.values() if id(t) in sums}
        self._term_names = term_names_of(self.optimizer, self.clip is not None)
        self.phase, self.layer_index = "update", None
        clip = state.clip_factor if self.clip is not None else None
        # The optimizer's state now: load_state_dict (going back) replaces it whole.
        build = functools.partial(
            _update_arrays,
            params,
            old,
            new_params,
            changes,
            state.grads,
            self.optimizer.state,
            lr_of,
            clip,
        )
        terms = LiveArrays(build, to_host)
        self._live.hand_out(terms)
        record = PhaseRecord.make("update", self.step_index, self.epoch, terms, loss=state.loss)
        self.last_update = record
        stats = None
        if not quiet:
            loss = reduce_for_breakpoints(state.loss) if self.distributed else state.loss
            sums.update(before)
            stats = finish_statistics(self, state, loss, new_params, measured, None)
        self._finish_step(state)
        if stats is not None:
            self.watch.observe(stats)
        return record

    def _finish_step(self, state: StepState) -> None:
        loss = state.loss if state.loss is not None else float("nan")
        step_epoch = state.entry.epoch if state.entry is not None else self.epoch
        self.step_history.append(StepStats(self.step_index, step_epoch, loss, dict(state.metrics)))
        n = state.entry.batch_len if state.entry is not None else 1
        self._count += n
        self._sums["loss"] = self._sums.get("loss", 0.0) + loss * n
        for key, value in state.metrics.items():
            self._sums[key] = self._sums.get(key, 0.0) + value * n
        self.step_index += 1
        self.batch_in_epoch += 1
        entry = self.feed.entry(self.step_index, self.total_epochs)
        self._entry = entry
        if entry is None or entry.epoch != step_epoch:
            self._finish_epoch()

    def _start_epoch_if_new(self, entry: Entry) -> None:
        if entry.epoch > self.epoch:
            self.epoch = entry.epoch
            self.batch_in_epoch = 0

    def _finish_epoch(self) -> None:
        count = max(self._count, 1)
        means = {k: v / count for k, v in self._sums.items()}
        loss = means.pop("loss", float("nan"))
        self.epoch_history.append(EpochStats(epoch=self.epoch, loss=loss, metrics=means))
        self.epoch += 1
        self.batch_in_epoch = 0
        self._sums, self._count = {}, 0

    # --------------------------------------------------------- time travel
    def _counters(self) -> dict[str, Any]:
        return {
            "step_index": self.step_index,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "sums": dict(self._sums),
            "count": self._count,
            "steps": len(self.step_history),
            "epochs": len(self.epoch_history),
        }

    def _goto(self, target: int) -> bool:
        """Stand between steps at the start of step ``target`` (0-based), recomputing
        from the nearest keyframe."""
        frame = self.keyframes.base_for(target)
        if frame is None:
            return False
        self._live.before_change()  # a record still held keeps the state it showed
        restore(frame, self.model, self.optimizer, self.scheduler)
        c = frame.counters
        self.step_index, self.epoch, self.batch_in_epoch = (
            c["step_index"],
            c["epoch"],
            c["batch_in_epoch"],
        )
        self._sums, self._count = dict(c["sums"]), c["count"]
        del self.step_history[c["steps"] :]
        del self.epoch_history[c["epochs"] :]
        self._entry = self.feed.entry(frame.step, self.total_epochs)
        self.phase, self.layer_index = "update", None
        while self.step_index < target:
            self._advance(quiet=True)
            while self.phase != "update":
                self._advance(quiet=True)
        self._apply(self._edits.get(target, ()))
        self._version += 1
        self.phase, self.layer_index = "update", None
        self._made = []
        self.last_update = None
        self.pending = None
        self.state = StepState()
        return True

    def back(self) -> bool:
        """To the start of the previous step (or of this one, mid-step); between steps, a
        weight edited since the step ended is put back first, one edit at a time."""
        k = self.step_index
        if self.phase == "update" and self._edits.get(k):
            param, index, old, new = self._edits[k].pop()
            if not self._edits[k]:
                del self._edits[k]
            self._apply([(param, index, new, old)])
            self._version += 1
            self.watch.note(
                self.step_number, f"undid the edit {edit_text(param, index, old, new)}", kind="edit"
            )
            self._tell()
            return True
        target = k if self.phase != "update" else k - 1
        if target < 0 or self.keyframes.base_for(target) is None:
            return False
        for later in [s for s in self._mid_edits if s >= target]:
            del self._mid_edits[later]
        for later in [s for s in self._edits if s > target]:
            del self._edits[later]
        self.keyframes.drop_after(target)
        if not self._goto(target):
            return False
        for breakpoint_ in self.watch.breakpoints:
            breakpoint_.held = False  # arriving at a step again is a new edge
        self.watch.note(self.step_number, f"went back to the start of step {target + 1}")
        self._tell()
        return True

    def _apply(self, edits: Sequence[Edit]) -> None:
        if not edits:  # most steps: no torch.no_grad() context to enter and leave
            return
        applied = False
        with torch.no_grad():
            for param, index, _old, new in edits:
                self._params[param][index] = new
                applied = True
        if applied:  # copies taken of the parameters before (after the update) are stale
            self._version += 1

    @property
    def learning_rate(self) -> float | None:
        """The first parameter group's learning rate (the update table shows each group's)."""
        groups = self.optimizer.param_groups
        return float(groups[0]["lr"]) if groups and "lr" in groups[0] else None

    def set_learning_rate(self, rate: float) -> None:
        raise NotPossible(
            "the learning rate of your own model is your script's: set it on the optimizer "
            "(or its scheduler) there"
        )

    def set_weight(self, param: str, index: tuple[int, ...], value: float) -> float:
        """Change one number of a parameter; returns the old value. Mid-step, the step
        restarts from its input with it and steps back to where it was."""
        p = self._params[param]
        old = float(p.detach()[index])
        edit: Edit = (param, tuple(index), old, float(value))
        k = self.step_index
        self.keyframes.drop_after(k)
        text = f"edited {edit_text(*edit)}"
        if self.phase == "update":
            self._edits.setdefault(k, []).append(edit)
            self._apply([edit])
            self._version += 1
        else:
            reached = len(self._made)
            self._mid_edits.setdefault(k, []).append(edit)
            self._goto(k)
            for _ in range(reached):
                self._advance(quiet=True)
            text += f"; step {k + 1} restarted from its input with it"
        self.watch.note(self.step_number, text, kind="edit")
        return old

    # ---------------------------------------------- breakpoints, diagnostics
    def parse_expression(self, text: str) -> Expression:
        return parse_on_modules(text, self._activation, self._metric_names)

    def add_breakpoint(self, text: str) -> Breakpoint:
        return self.watch.add_breakpoint(text)

    def remove_breakpoint(self, i: int) -> Breakpoint:
        return self.watch.remove_breakpoint(i)

    def toggle_breakpoint(self, i: int) -> bool:
        return self.watch.toggle_breakpoint(i)

    def hit_breakpoint(self, until: Expression | None = None) -> BreakHit | None:
        if self.phase != "update" or not self._made:
            return None
        return self.watch.hit(self.step_index, until)

    def run_until(
        self,
        expr: str | None = None,
        max_steps: int | None = None,
        on_step: Callable[[RunView], None] | None = None,
    ) -> RunResult:
        until = self.parse_expression(expr) if expr is not None else None
        return run_until_hit(self, until, max_steps, on_step)

    def gradient_check(self, layer: str | None = None) -> GradCheckResult:
        from .gradcheck import check_attached

        return check_attached(self, layer)

    def close(self) -> None:
        """Take the hooks off the model."""
        self.tracer.remove()


def _grads_stay(optimizer: torch.optim.Optimizer, clip: float | None, distributed: bool) -> bool:
    """Whether the gradients backward leaves in ``.grad`` keep their numbers until the
    next backward, so the run may hold them without a copy: torch's own ``zero_grad``
    drops them (``set_to_none``) rather than zeroing them, torch's optimizers only
    read them, and nothing else writes into them unless clipping scales them in place
    or DDP's reducer owns them (gradients as views of its buckets)."""
    kind = type(optimizer)
    return (
        clip is None
        and not distributed
        and kind.__module__.startswith("torch.optim.")
        and kind.zero_grad is torch.optim.Optimizer.zero_grad
        and "zero_grad" not in vars(optimizer)  # nor replaced on the instance
    )


def _same_children(model: nn.Module, children: list[nn.Module]) -> bool:
    """``model`` is still unhooked and made of ``children``, so driving them is calling it."""
    modules = model._modules
    return (
        unhooked(model)
        and len(modules) == len(children)
        and all(a is b for a, b in zip(modules.values(), children, strict=True))
    )


def _spec_units(view: LayerView) -> int:
    """Units as the diagnostics count them: the channels of an (N, C, H, W) output, else
    the layer's columns."""
    if view.kernel is None and len(view.output_shape) == 3:
        return max(view.output_shape[0], 1)
    return max(view.units, 1)


def _constant(value: float, shape: tuple[int, ...]) -> NDArray[Any]:
    return np.broadcast_to(np.float64(value), shape)


def _detached(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach() if tensor.requires_grad else tensor


def _make_record(
    phase: str,
    step_index: int,
    epoch: int,
    arrays: Callable[[], Mapping[str, Any]],
    kwargs: Mapping[str, Any],
) -> PhaseRecord:
    # PhaseRecord.make: no frozen __setattr__ per field
    return PhaseRecord.make(phase, step_index, epoch, HostArrays(arrays(), to_host), **kwargs)


def _forward_arrays(call: Call | None) -> dict[str, Any]:
    empty = np.zeros((0,))
    return {
        "a_prev": call.a_prev if call is not None and call.a_prev is not None else empty,
        "z": call.output if call is not None and call.output is not None else empty,
        "a": call.output if call is not None and call.output is not None else empty,
    }


def _loss_arrays(head: torch.Tensor | None, y: Any) -> dict[str, Any]:
    empty = np.zeros((0,))
    return {
        "y_pred": head if head is not None else empty,
        "y_true": y if isinstance(y, torch.Tensor) else empty,
    }


def _update_arrays(
    params: Mapping[str, nn.Parameter],
    old: Mapping[str, torch.Tensor],
    new: Mapping[str, torch.Tensor],
    changes: Mapping[str, torch.Tensor],
    grads: Mapping[str, torch.Tensor],
    states: Mapping[Any, Mapping[str, Any]],
    lr_of: Mapping[int, float],
    clip: float | None,
) -> tuple[dict[str, Any], list[str]]:
    """An update record's arrays, by key, and the keys of the optimizer's own (live)
    state tensors among them; see :class:`.live.LiveArrays`."""
    arrays: dict[str, Any] = {}
    live: list[str] = []
    for name, p in params.items():
        shape = tuple(p.shape)
        arrays[name] = old[name]
        grad = grads.get(name)
        arrays[f"{name}.grad"] = (
            grad if grad is not None else functools.partial(_constant, 0.0, shape)
        )
        arrays[f"{name}.change"] = changes[name]
        arrays[f"{name}.new"] = new[name]
        for term, value in state_terms(states, p).items():
            arrays[f"{name}.{term}"] = value
            live.append(f"{name}.{term}")
        # worked out when read (HostArrays calls it): most steps' tables are never shown
        arrays[f"{name}.lr"] = functools.partial(_constant, lr_of.get(id(p), 0.0), shape)
        if clip is not None:
            arrays[f"{name}.clip"] = functools.partial(_constant, clip, shape)
    return arrays, live


def _hits(head: torch.Tensor, y: torch.Tensor) -> int:
    """How many rows of ``head`` have their largest value at ``y`` (the first largest,
    NaN counting as largest, in torch and NumPy alike)."""
    if head.device.type == "cpu" and y.device.type == "cpu" and head.dtype in _NUMPY_FLOATS:
        # NumPy on the tensors' own memory: four torch dispatches cost more than the sums
        return int(np.count_nonzero(head.numpy().argmax(axis=-1) == y.numpy()))
    return int((head.argmax(dim=-1) == y).sum())


_NUMPY_FLOATS = frozenset({torch.float32, torch.float64})


def _classifies(head: torch.Tensor | None, y: Any) -> bool:
    return (
        isinstance(head, torch.Tensor)
        and isinstance(y, torch.Tensor)
        and head.ndim == 2
        and y.ndim == 1
        and not y.is_floating_point()
        and head.shape[0] == y.shape[0]
    )
