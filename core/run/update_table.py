"""The numbers of the update table, read from a debugger's public views, row by row.

Shared by :meth:`Debugger.update_rows` and the app's update pane, and it works
on a recorded replay too, since it reads only the views both offer.

The pending update (once the backward pass is done) comes from
``dbg.pending_update()``; the applied one from the update phase's record. Only
the rows on screen are turned into :class:`UpdateRow`; ranking by |change| is one
pass over the array, so a 784×512 kernel costs about what a small one does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..records import UpdateRow


@dataclass(frozen=True, eq=False)
class UpdateArrays:
    """One parameter's update as host arrays of its shape; ``new`` is None while pending."""

    param: str
    value: NDArray[Any]
    grad: NDArray[Any]
    change: NDArray[Any]
    terms: dict[str, NDArray[Any]]
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


def _host(dbg: Any, array: Any) -> NDArray[Any]:
    backend = getattr(dbg, "backend", None)
    to_host = getattr(backend, "to_host", None)
    return np.asarray(to_host(array) if to_host is not None else array)


def update_arrays(dbg: Any, param: str) -> tuple[str, UpdateArrays] | None:
    """("pending" | "applied", the arrays) for ``param``, or None when there is no update to show."""
    pending = dbg.pending_update()
    if pending is not None and param in pending:
        upd = pending[param]
        terms = {k: _host(dbg, v) for k, v in upd.terms.items()}
        arrays = UpdateArrays(
            param, dbg.params[param], dbg.grads[param], _host(dbg, upd.change), terms, None
        )
        return "pending", arrays
    record = dbg.record_of("update")
    if record is None or dbg.phase not in ("update", "input") or param not in record.arrays:
        return None
    a = record.arrays
    prefix = f"{param}."
    terms = {
        key[len(prefix) :]: a[key]
        for key in a
        if key.startswith(prefix) and key[len(prefix) :] not in ("grad", "change", "new")
    }
    arrays = UpdateArrays(
        param, a[param], a[f"{prefix}grad"], a[f"{prefix}change"], terms, a[f"{prefix}new"]
    )
    return "applied", arrays


def top_indices(values: NDArray[Any], k: int) -> NDArray[np.int64]:
    """Flat indices of the ``k`` largest |values|, largest first (ties in index order).

    A sample sets a threshold that at least ``k`` values pass; only those are sorted.
    Falls back to a full partition when the sample guesses too high.
    """
    magnitude = np.abs(np.asarray(values, dtype=np.float64).reshape(-1))
    if not np.isfinite(magnitude.max(initial=0.0)):  # one pass; NaN and inf rank first
        magnitude = np.where(np.isnan(magnitude), np.inf, magnitude)
    n = magnitude.size
    k = min(k, n)
    if k <= 0:
        return np.arange(0)
    candidates: NDArray[np.int64] | None = None
    if n > 16 * k and n > 4096:
        sample = magnitude[::16]
        rank = max(sample.size - max(4 * k // 16, 8), 0)
        threshold = np.partition(sample, rank)[rank]
        found = np.flatnonzero(magnitude >= threshold)
        if found.size >= k:
            candidates = found
    if candidates is None:
        candidates = np.argpartition(-magnitude, k - 1)[:k] if k < n else np.arange(n)
    order = np.lexsort((candidates, -magnitude[candidates]))
    top: NDArray[np.int64] = candidates[order][:k]
    return top
