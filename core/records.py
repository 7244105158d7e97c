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
    complete: bool = True  # False while a forward or backward pass is half done
    penalty: float | None = None  # the weight penalty inside ``loss`` (None: no regularizer)

    @classmethod
    def make(
        cls,
        phase: str,
        step_index: int,
        epoch: int,
        arrays: Mapping[str, NDArray[Any]],
        layer_index: int | None = None,
        layer_name: str | None = None,
        loss: float | None = None,
        metrics: Mapping[str, float] | None = None,
        complete: bool = True,
        penalty: float | None = None,
    ) -> PhaseRecord:
        """The same record as the constructor's, made without its frozen ``__setattr__``
        per field: the engine makes several a step, and on a small network the
        constructor cost as much as a layer's forward pass."""
        record = object.__new__(cls)
        record.__dict__.update(
            phase=phase,
            step_index=step_index,
            epoch=epoch,
            layer_index=layer_index,
            layer_name=layer_name,
            loss=loss,
            metrics={} if metrics is None else metrics,
            arrays=arrays,
            complete=complete,
            penalty=penalty,
        )
        return record

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


_INT32 = (-(2**31), 2**31)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class _Column:
    """One figure per row of a :class:`_Table`, as compactly as its values allow.

    Numbers are never rounded: integers sit in int32 and floats in float32 until
    a value needs more (then the column is widened to 64 bits, once), and a
    column of consecutive integers (step and epoch counters) is not stored at
    all until a value breaks the run. Rows before ``since`` and rows in ``gaps``
    lack the figure (a metric a step did not measure).
    """

    __slots__ = ("data", "gaps", "kind", "since", "start")

    def __init__(self, kind: Literal["count", "int", "float"], capacity: int, since: int) -> None:
        self.kind = kind
        self.since = since
        self.gaps: set[int] = set()
        self.start: int | None = None  # kind "count": the value of row ``since``
        self.data: NDArray[Any] | None = None
        if kind != "count":
            self.data = np.zeros(capacity, dtype=np.int32 if kind == "int" else np.float32)

    def resize(self, capacity: int) -> None:
        if self.data is not None:
            data = np.zeros(capacity, dtype=self.data.dtype)
            keep = min(capacity, len(self.data))
            data[:keep] = self.data[:keep]
            self.data = data

    def _widen(self, dtype: type[np.generic], capacity: int, rows: int) -> None:
        data = np.zeros(capacity, dtype=dtype)
        if self.data is not None:
            data[:rows] = self.data[:rows]
        elif self.start is not None:  # the run of counts, written out
            data[self.since : rows] = np.arange(self.start, self.start + rows - self.since)
        self.data = data

    def put(self, i: int, value: float, capacity: int) -> None:
        if self.kind == "count":
            if self.start is None:
                self.start = int(value) - (i - self.since)
            if int(value) == self.start + i - self.since and not self.gaps:
                return
            self.kind = "int"
            last = self.start + i - 1 - self.since
            wide = _INT32[0] <= min(self.start, last) and max(self.start, last) < _INT32[1]
            self._widen(np.int32 if wide else np.int64, capacity, i)
        data = self.data
        assert data is not None
        if data.dtype == np.int32 and not _INT32[0] <= value < _INT32[1]:
            self._widen(np.int64, capacity, i)
        elif data.dtype == np.float32 and not _fits_float32(value):
            self._widen(np.float64, capacity, i)
        assert self.data is not None
        self.data[i] = value

    def get(self, i: int) -> float | int | None:
        if i < self.since or i in self.gaps:
            return None
        if self.data is None:
            assert self.start is not None
            return self.start + i - self.since
        value = self.data[i]
        return int(value) if self.kind != "float" else float(value)

    def truncate(self, rows: int) -> None:
        self.gaps = {g for g in self.gaps if g < rows}
        if rows <= self.since:
            self.start = None

    @property
    def nbytes(self) -> int:
        return (0 if self.data is None else self.data.nbytes) + 64 * len(self.gaps)


def _fits_float32(value: float) -> bool:
    """Whether float32 holds ``value`` exactly (NaN and ±Inf included)."""
    if math.isnan(value) or math.isinf(value):
        return True
    if abs(value) > _FLOAT32_MAX:
        return False
    return float(np.float32(value)) == value


class _Table:
    """Rows of named figures kept as :class:`_Column` s: some bytes a figure
    instead of a Python object a row. ``del table[n:]`` forgets the newest rows."""

    def __init__(self) -> None:
        self._n = 0
        self._capacity = 0
        self._columns: dict[str, _Column] = {}
        # The newest row as it was appended: each step reads it back, and building
        # it again from the columns would cost that step an object a read.
        self._newest: Any = None

    def _item(self, i: int) -> Any:
        raise NotImplementedError

    def _at(self, index: int) -> Any:
        i = self._index(index)
        if i == self._n - 1 and self._newest is not None:
            return self._newest
        return self._item(i)

    def __len__(self) -> int:
        return self._n

    def _column(self, name: str, kind: Literal["count", "int", "float"]) -> _Column:
        column = self._columns.get(name)
        if column is None:
            column = self._columns[name] = _Column(kind, self._capacity, self._n)
        return column

    def _append(self, row: Mapping[str, tuple[Literal["count", "int", "float"], float]]) -> None:
        if self._n == self._capacity:
            # Grown by a quarter, not doubled: at most a fifth of the columns stands empty.
            self._capacity = max(64, self._capacity + self._capacity // 4)
            for column in self._columns.values():
                column.resize(self._capacity)
        i = self._n
        for name, column in self._columns.items():
            if name not in row:
                column.gaps.add(i)
        for name, (kind, value) in row.items():
            self._column(name, kind).put(i, value, self._capacity)
        self._n += 1

    def _index(self, index: int) -> int:
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError(f"{type(self).__name__} index out of range")
        return index

    def _slice(self, index: slice) -> range:
        return range(*index.indices(self._n))

    def __delitem__(self, index: slice) -> None:
        start, stop, stride = index.indices(self._n)
        if stop != self._n or stride != 1:
            raise ValueError("only the newest rows can be forgotten: del log[n:]")
        self._n = min(self._n, start)
        self._newest = None
        for name in [k for k, c in self._columns.items() if c.since >= self._n]:
            del self._columns[name]  # no row left that has it
        for column in self._columns.values():
            column.truncate(self._n)

    def _figures(self, i: int, prefix: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, column in self._columns.items():
            if name.startswith(prefix):
                value = column.get(i)
                if value is not None:
                    out[name[len(prefix) :]] = float(value)
        return out

    def _float_column(self, name: str) -> NDArray[np.float64]:
        column = self._columns.get(name)
        if column is None or column.data is None:
            return np.zeros(0)
        view = column.data[: self._n]
        if view.dtype != np.float64:
            return view.astype(np.float64)  # exact: float32 held these values exactly
        view = view.view()
        view.flags.writeable = False
        return view

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self._columns.values())


class StepLog(_Table, Sequence[StepStats]):
    """Every finished step's loss and metrics, kept as columns of numbers.

    A run of a million steps keeps a few bytes a figure here (consecutive step
    numbers none at all), where a :class:`StepStats` object a step held some
    290. Reading an item builds its ``StepStats``; ``del log[n:]`` forgets the
    steps after the first ``n`` (going back in time), and ``append`` adds one.
    """

    def append(self, stats: StepStats) -> None:
        self._newest = stats
        row: dict[str, tuple[Literal["count", "int", "float"], float]] = {
            "step": ("count", stats.step),
            # Not stored while each step is an epoch of its own (xor), int32 otherwise.
            "epoch": ("count", stats.epoch),
            "loss": ("float", stats.loss),
        }
        row.update({f"m:{k}": ("float", v) for k, v in stats.metrics.items()})
        self._append(row)

    def _item(self, i: int) -> StepStats:
        c = self._columns
        step, epoch, loss = c["step"].get(i), c["epoch"].get(i), c["loss"].get(i)
        assert step is not None and epoch is not None and loss is not None
        return StepStats(int(step), int(epoch), float(loss), self._figures(i, "m:"))

    @overload
    def __getitem__(self, index: int) -> StepStats: ...
    @overload
    def __getitem__(self, index: slice) -> list[StepStats]: ...
    def __getitem__(self, index: int | slice) -> StepStats | list[StepStats]:
        if isinstance(index, slice):
            return [self._item(i) for i in self._slice(index)]
        found: StepStats = self._at(index)
        return found

    def losses(self) -> NDArray[np.float64]:
        """The loss of every step, as one read-only array."""
        return self._float_column("loss")

    def figure_columns(self, start: int, stop: int) -> dict[str, NDArray[np.float64]]:
        """The loss and each metric of rows ``start..stop`` as new float64 arrays (a
        metric's only at the rows that have it), in the order they first appeared:
        what ``[row.loss for row in log[start:stop]]`` and each metric's values give,
        without building a :class:`StepStats` a row. Safe to call while another thread
        appends: rows below ``stop`` are never written again, and an array a column
        outgrows is replaced only once the old rows are copied into its successor."""
        out: dict[str, NDArray[np.float64]] = {}
        for name, column in list(self._columns.items()):
            if name != "loss" and not name.startswith("m:"):
                continue
            lo = max(start, column.since)
            data = column.data
            if data is None or stop <= lo:
                values = np.zeros(0)
            else:
                values = data[lo:stop].astype(np.float64)
                gaps = [g - lo for g in list(column.gaps) if lo <= g < stop]
                if gaps:
                    values = np.delete(values, gaps)
            out[name.removeprefix("m:")] = values
        return out


class EpochLog(_Table, Sequence[EpochStats]):
    """Every finished epoch's figures, kept as columns like :class:`StepLog`.

    A run whose epoch is one batch (xor) finishes an epoch a step; an
    :class:`EpochStats` object an epoch would hold some 400 bytes each. The
    newest is kept as it came too: each step reads it (its validation figures).
    """

    def append(self, stats: EpochStats) -> None:
        self._newest = stats
        row: dict[str, tuple[Literal["count", "int", "float"], float]] = {
            "epoch": ("count", stats.epoch),
            "loss": ("float", stats.loss),
        }
        row.update({f"m:{k}": ("float", v) for k, v in stats.metrics.items()})
        if stats.val_loss is not None:
            row["val_loss"] = ("float", stats.val_loss)
        row.update({f"v:{k}": ("float", v) for k, v in stats.val_metrics.items()})
        self._append(row)

    def _item(self, i: int) -> EpochStats:
        c = self._columns
        epoch, loss = c["epoch"].get(i), c["loss"].get(i)
        assert epoch is not None and loss is not None
        val = c["val_loss"].get(i) if "val_loss" in c else None
        return EpochStats(
            epoch=int(epoch),
            loss=float(loss),
            metrics=self._figures(i, "m:"),
            val_loss=None if val is None else float(val),
            val_metrics=self._figures(i, "v:"),
        )

    @overload
    def __getitem__(self, index: int) -> EpochStats: ...
    @overload
    def __getitem__(self, index: slice) -> list[EpochStats]: ...
    def __getitem__(self, index: int | slice) -> EpochStats | list[EpochStats]:
        if isinstance(index, slice):
            return [self._item(i) for i in self._slice(index)]
        found: EpochStats = self._at(index)
        return found
