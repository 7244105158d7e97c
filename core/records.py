"""Immutable records of what each phase computed: what the app draws.

Arrays stay in the backend's memory (on the GPU, say) until a field is read;
reading converts to a NumPy array on the host and keeps the copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

PHASES = ("input", "forward", "loss", "backward", "update")


class HostArrays(Mapping[str, NDArray[Any]]):
    """A read-only mapping that copies each backend array to the host on first read.

    A value may also be a function of no arguments that gives the array.
    """

    def __init__(self, raw: Mapping[str, Any], to_host: Callable[[Any], NDArray[Any]]) -> None:
        self._raw = dict(raw)
        self._to_host = to_host
        self._host: dict[str, NDArray[Any]] = {}

    def __getitem__(self, key: str) -> NDArray[Any]:
        if key not in self._host:
            raw = self._raw[key]
            if callable(raw):  # worked out only when read (Adam's m̂ and v̂)
                raw = raw()
            # A read-only view, not a copy: the engine never writes into an array
            # it has handed out (parameters and intermediates are replaced), so
            # the view keeps this step's values; the flag keeps readers honest.
            array = np.asarray(self._to_host(raw)).view()
            array.setflags(write=False)
            self._host[key] = array
        return self._host[key]

    def __contains__(self, key: object) -> bool:
        # Mapping's default would read (and so copy to the host) the value.
        return key in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


@dataclass(frozen=True, eq=False)
class PhaseRecord:
    """One finished piece of a training step.

    ``arrays`` holds, by phase:
    input: ``x`` (batch, inputs), ``y`` (batch, units), ``indices`` (batch,);
    forward (one layer): ``a_prev`` (batch, inputs), ``z``, ``a`` (batch, units);
    loss: ``y_pred``, ``y_true``, ``dL_da`` (batch, units);
    backward (one layer): ``dL_da``, ``dL_dz`` (batch, units) and each parameter's
    gradient under its name (with a regularizer: data part plus penalty part, the
    penalty part also under ``<name>.penalty``); update: per parameter ``<name>``, ``<name>.change``
    and ``<name>.new``.
    """

    phase: str
    step_index: int
    epoch: int
    layer_index: int | None = None
    layer_name: str | None = None
    loss: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    arrays: Mapping[str, NDArray[Any]] = field(default_factory=dict)
    complete: bool = True
    penalty: float | None = (
        None  # the weight penalty inside ``loss`` (None: no regularizer)  # False while a forward or backward pass is half done
    )

    def describe(self) -> str:
        where = f" {self.layer_name}" if self.layer_name else ""
        text = f"step {self.step_index + 1} · {self.phase}{where}"
        if self.loss is not None:
            text += f" · loss {self.loss:.6g}"
        return text


@dataclass(frozen=True)
class UpdateRow:
    """One row of the update table: a single number of one parameter."""

    param: str
    index: tuple[int, ...]
    value: float
    gradient: float
    terms: Mapping[str, float]
    change: float
    new_value: float


@dataclass(frozen=True)
class StepStats:
    """Loss and metrics of one training step (on its batch, before its update)."""

    step: int
    epoch: int
    loss: float
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class EpochStats:
    """Per-epoch averages over the batches, and the validation split after the epoch."""

    epoch: int
    loss: float
    metrics: Mapping[str, float]
    val_loss: float | None = None
    val_metrics: Mapping[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        out = {"loss": self.loss, **self.metrics}
        if self.val_loss is not None:
            out["val_loss"] = self.val_loss
            out.update({f"val_{k}": v for k, v in self.val_metrics.items()})
        return out


@dataclass(frozen=True)
class LogEntry:
    """A line of a run's log: an event, a warning or a breakpoint hit."""

    step: int
    level: Literal["info", "warning", "error", "break"]
    text: str
    layer: str | None = None
    kind: str = "event"


@dataclass(frozen=True, eq=False)
class UpdateArrays:
    """One parameter's update as host arrays of its shape; ``new`` is None while pending."""

    param: str
    value: NDArray[Any]
    grad: NDArray[Any]
    change: NDArray[Any]
    terms: Mapping[str, NDArray[Any]]
    new: NDArray[Any] | None

    @property
    def size(self) -> int:
        return int(self.change.size)

    def row(self, flat: int) -> UpdateRow:
        index = tuple(int(i) for i in np.unravel_index(flat, self.change.shape))
        value, change = float(self.value[index]), float(self.change[index])
        new = float(self.new[index]) if self.new is not None else value + change
        return UpdateRow(
            param=self.param,
            index=index,
            value=value,
            gradient=float(self.grad[index]),
            terms={k: float(v[index]) for k, v in self.terms.items()},
            change=change,
            new_value=new,
        )


class StepLog(Sequence[StepStats]):
    """Every finished step's loss and metrics, kept as columns of numbers.

    A run of a million steps keeps about 8 bytes a figure here, where a
    :class:`StepStats` object a step held some 290. Reading an item builds
    its ``StepStats``; ``del log[n:]`` forgets the steps after the first ``n``
    (going back in time), and ``append`` adds one.
    """

    def __init__(self) -> None:
        self._n = 0
        self._step = np.zeros(64, dtype=np.int64)
        self._epoch = np.zeros(64, dtype=np.int64)
        self._loss = np.zeros(64, dtype=np.float64)
        self._metrics: dict[str, NDArray[np.float64]] = {}

    def __len__(self) -> int:
        return self._n

    def _grow(self) -> None:
        size = max(64, 2 * len(self._loss))

        def bigger(old: NDArray[Any], fill: float = 0.0) -> NDArray[Any]:
            new = np.full(size, fill, dtype=old.dtype)
            new[: len(old)] = old
            return new

        self._step, self._epoch, self._loss = (
            bigger(self._step),
            bigger(self._epoch),
            bigger(self._loss),
        )
        self._metrics = {k: bigger(v, math.nan) for k, v in self._metrics.items()}

    def append(self, stats: StepStats) -> None:
        if self._n == len(self._loss):
            self._grow()
        i = self._n
        self._step[i], self._epoch[i], self._loss[i] = stats.step, stats.epoch, stats.loss
        for name, value in stats.metrics.items():
            if name not in self._metrics:
                self._metrics[name] = np.full(len(self._loss), math.nan)
            self._metrics[name][i] = value
        self._n += 1

    def _item(self, i: int) -> StepStats:
        metrics = {k: float(v[i]) for k, v in self._metrics.items() if not math.isnan(v[i])}
        return StepStats(int(self._step[i]), int(self._epoch[i]), float(self._loss[i]), metrics)

    @overload
    def __getitem__(self, index: int) -> StepStats: ...
    @overload
    def __getitem__(self, index: slice) -> list[StepStats]: ...
    def __getitem__(self, index: int | slice) -> StepStats | list[StepStats]:
        if isinstance(index, slice):
            return [self._item(i) for i in range(*index.indices(self._n))]
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError("step log index out of range")
        return self._item(index)

    def __delitem__(self, index: slice) -> None:
        start, stop, stride = index.indices(self._n)
        if stop != self._n or stride != 1:
            raise ValueError("only the newest steps can be forgotten: del log[n:]")
        self._n = min(self._n, start)

    def losses(self) -> NDArray[np.float64]:
        """The loss of every step, as one read-only array."""
        view = self._loss[: self._n].view()
        view.flags.writeable = False
        return view

    @property
    def nbytes(self) -> int:
        arrays = [self._step, self._epoch, self._loss, *self._metrics.values()]
        return sum(a.nbytes for a in arrays)
