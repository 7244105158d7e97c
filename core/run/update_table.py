"""The numbers of the update table, read from records, row by row.

The pending update is a record the loop makes on the engine's side the moment
the backward pass completes; the applied one is the update phase's record. So
reading a table never computes an update. Only the rows on screen are turned
into :class:`UpdateRow`; ranking by |change| is one pass over the array, so a
784×512 kernel costs about what a small one does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..records import PhaseRecord, UpdateArrays, UpdateRow

__all__ = ["UpdateArrays", "UpdateRow", "from_record", "top_indices"]

_OWN = ("grad", "change", "new")


def from_record(record: PhaseRecord, param: str) -> UpdateArrays | None:
    """``param``'s update as an update record holds it (``new`` None while pending)."""
    a = record.arrays
    if param not in a or f"{param}.change" not in a:
        return None
    prefix = f"{param}."
    names = [key[len(prefix) :] for key in a if key.startswith(prefix)]
    terms = _Terms(a, prefix, tuple(name for name in names if name not in _OWN))
    new = a.get(f"{prefix}new")
    return UpdateArrays(param, a[param], a[f"{prefix}grad"], a[f"{prefix}change"], terms, new)


class _Terms(Mapping[str, NDArray[Any]]):
    """A parameter's optimizer terms, each read from the record when first asked for:
    Adam's m̂ and v̂ are worked out only for the parameters whose rows are shown."""

    def __init__(
        self, arrays: Mapping[str, NDArray[Any]], prefix: str, names: tuple[str, ...]
    ) -> None:
        self._arrays = arrays
        self._prefix = prefix
        self._names = names

    def __getitem__(self, name: str) -> NDArray[Any]:
        if name not in self._names:
            raise KeyError(name)
        return self._arrays[self._prefix + name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


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
