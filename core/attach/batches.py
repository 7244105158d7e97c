"""The user's data and the user's model call: batches in, the loss out.

With a ``loss_fn`` a batch is an ``(x, y)`` pair and the model is called as
``model(x)``; without one the model computes its own loss: a dict batch is
passed as keywords (``model(**batch)``), a tuple or list as arguments
(``model(x, y)``), and the loss is the output itself when it is a scalar
tensor, else its ``.loss`` or ``["loss"]``, else the one 0-d tensor of a tuple.
"""

from __future__ import annotations

import ctypes
import random
import struct
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from .errors import AttachError
from .hooks import first_tensor

__all__ = ["Feed", "RngState", "call_model", "loss_of", "to_host"]


def to_host(value: Any) -> NDArray[Any]:
    """A tensor (or anything array-like) as a NumPy array on the host."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        return tensor.cpu().numpy()
    return np.asarray(value)


def call_model(
    model: torch.nn.Module,
    batch: Any,
    with_loss_fn: bool,
    call: Callable[[Any], Any] | None = None,
) -> tuple[Any, Any]:
    """Run ``model`` on ``batch``; return (its output, the target y or None). ``call``:
    what stands for ``model(x)`` with a ``loss_fn`` (the engine driving its layers)."""
    if with_loss_fn:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise AttachError(
                f"with a loss_fn, data must yield (x, y) pairs, but it yielded "
                f"{_describe(batch)}; yield pairs, or pass loss_fn=None if the model "
                "computes its own loss"
            )
        x, y = batch
        return (model(x) if call is None else call(x)), y
    if isinstance(batch, dict):
        return model(**batch), None
    if isinstance(batch, (tuple, list)):
        return model(*batch), None
    return model(batch), None


def loss_of(output: Any) -> torch.Tensor:
    """The loss a model computed itself: the output, ``.loss``, ``["loss"]`` or the 0-d tensor."""
    if isinstance(output, torch.Tensor):
        if output.numel() == 1:
            return output.reshape(())
        raise AttachError(
            f"with loss_fn=None the model must return its loss, but it returned a tensor "
            f"of shape {tuple(output.shape)}; return a scalar loss, or pass a loss_fn"
        )
    found = getattr(output, "loss", None)
    if found is None and isinstance(output, dict):
        found = output.get("loss")
    if isinstance(found, torch.Tensor):
        return loss_of(found)
    if isinstance(output, (tuple, list)):
        scalars = [t for t in output if isinstance(t, torch.Tensor) and t.ndim == 0]
        if len(scalars) == 1:
            return scalars[0]
    raise AttachError(
        f"with loss_fn=None the model must return its loss (a scalar tensor, .loss, "
        f"['loss'] or one 0-d tensor in a tuple), but it returned {_describe(output)}; "
        "return the loss, or pass a loss_fn"
    )


def check_loss(loss: Any) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise AttachError(
            f"the loss must be a scalar tensor, but loss_fn returned {shape}; "
            "reduce it with .mean() or .sum()"
        )
    # already 0-d (the usual case): no view to make, nor a node for backward to pass
    return loss if loss.ndim == 0 else loss.reshape(())


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


def batch_x(batch: Any, with_loss_fn: bool) -> torch.Tensor | None:
    """The input tensor of a batch, for the panes."""
    if with_loss_fn and isinstance(batch, (tuple, list)) and batch:
        return first_tensor(batch[0])
    if isinstance(batch, dict):
        for key in ("input_ids", "x", "inputs", "pixel_values"):
            if isinstance(batch.get(key), torch.Tensor):
                return batch[key]  # type: ignore[no-any-return]
    return first_tensor(batch)


def batch_y(batch: Any, with_loss_fn: bool) -> torch.Tensor | None:
    """The target tensor of a batch, when there is one."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return first_tensor(batch[1]) if with_loss_fn or len(batch) == 2 else None
    if isinstance(batch, dict):
        for key in ("labels", "y", "targets", "target"):
            if isinstance(batch.get(key), torch.Tensor):
                return batch[key]  # type: ignore[no-any-return]
    return None


def batch_bytes(value: Any, depth: int = 0) -> int:
    """Bytes of the tensors in a batch (a tensor, a tuple, a list or a dict of them)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if depth > 4:
        return 0
    if isinstance(value, (tuple, list)):
        return sum(batch_bytes(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return sum(batch_bytes(v, depth + 1) for v in value.values())
    return 0


def batch_len(batch: Any) -> int:
    x = first_tensor(batch)
    return int(x.shape[0]) if x is not None and x.ndim > 0 else 1


@dataclass(frozen=True, eq=False)
class RngState:
    """Every random generator a training step may draw from. ``numpy_raw``: the raw
    bytes of NumPy's Mersenne Twister when ``numpy`` was read (None where they
    cannot be read), to tell cheaply whether it has moved since."""

    torch_cpu: torch.Tensor
    torch_cuda: tuple[torch.Tensor, ...]
    numpy: Any
    python: Any
    numpy_raw: bytes | None = None
    python_raw: bytes | None = None  # the same for Python's own (see _python_bytes)

    @classmethod
    def capture(cls, last: RngState | None = None) -> RngState:
        """The generators' states now. ``last``: the previous capture, whose NumPy and
        Python states are shared when they have not moved since: most training
        draws from torch alone, and a feed keeps a state for every batch, so fresh
        copies (26 kB a batch, and 32 µs for NumPy's alone) would only add up."""
        cuda = tuple(torch.cuda.get_rng_state_all()) if torch.cuda.is_initialized() else ()  # type: ignore[no-untyped-call]
        python_raw = _python_bytes()
        if (
            last is not None
            and python_raw is not None
            and python_raw == last.python_raw
            and _python_gauss() == last.python[2]
        ):
            python = last.python  # not moved: no 625-number tuple built and compared
        else:
            python = random.getstate()
            if last is not None and python == last.python:
                python = last.python
        raw = _mt_bytes()
        # A cached second Gaussian (``has_gauss``, item 3) lives beside the twister's
        # bytes and can be used up without moving them: a state holding one is read again.
        if last is not None and raw is not None and raw == last.numpy_raw and last.numpy[3] == 0:
            numpy, raw = last.numpy, last.numpy_raw
        else:
            numpy = np.random.get_state()
        return cls(torch.get_rng_state(), cuda, numpy, python, raw, python_raw)

    def restore(self) -> None:
        torch.set_rng_state(self.torch_cpu)
        if self.torch_cuda:
            torch.cuda.set_rng_state_all(list(self.torch_cuda))
        np.random.set_state(self.numpy)
        random.setstate(self.python)


_MT_BYTES = 624 * 4 + 4  # NumPy's mt19937_state: uint32 key[624], int pos


_PYTHON_BYTES = 4 + 624 * 4  # CPython's RandomObject after its header: int index, uint32 key[624]


def _python_reader() -> tuple[Any, int] | None:
    """Python's global generator and the address of its raw state, where the memory
    there reads as ``random.getstate()`` says it should (CPython's ``RandomObject``:
    the object header, ``int index``, ``uint32_t state[624]``); None elsewhere."""
    generator = getattr(random.getstate, "__self__", None)
    if generator is None or sys.implementation.name != "cpython":
        return None
    address = id(generator) + object.__basicsize__
    try:
        index, *key = struct.unpack("=i624I", ctypes.string_at(address, _PYTHON_BYTES))
        internal = generator.getstate()[1]
    except (TypeError, ValueError, IndexError, struct.error):
        return None
    if (*key, index) != tuple(internal):
        return None
    return generator, address


_PYTHON = _python_reader()


def _python_bytes() -> bytes | None:
    """The raw state of Python's global Mersenne Twister (a memory read, where
    ``random.getstate()`` builds a tuple of 625 numbers: 8 µs, and 6 more to compare
    two), or None where it cannot be read."""
    if _PYTHON is None or getattr(random.getstate, "__self__", None) is not _PYTHON[0]:
        return None
    return ctypes.string_at(_PYTHON[1], _PYTHON_BYTES)


def _python_gauss() -> Any:
    """The second Gaussian Python's generator keeps beside its state (``getstate()[2]``)."""
    return getattr(_PYTHON[0], "gauss_next", None) if _PYTHON is not None else None


def _mt_bytes() -> bytes | None:
    """The raw state of NumPy's global Mersenne Twister (a memory read, under a
    microsecond), or None where it cannot be read."""
    try:
        bitgen = np.random.mtrand._rand._bit_generator
        if type(bitgen).__name__ != "MT19937":
            return None
        return ctypes.string_at(bitgen.ctypes.state_address, _MT_BYTES)
    except (AttributeError, TypeError, ValueError):
        return None


@dataclass(eq=False)
class Entry:
    """The batch of one training step, where it sits in its epoch, and the random
    state right after it was drawn (where the step itself starts drawing)."""

    batch: Any
    epoch: int  # 0-based epoch the step belongs to
    batch_in_epoch: int
    first_sample: int  # samples of this epoch before it
    rng: RngState

    @property
    def batch_len(self) -> int:
        return batch_len(self.batch)


class Feed:
    """The data, iterated once per epoch as a plain ``for`` loop would, with every
    batch drawn so far kept, so that steps done again after going back see the
    same batches and the same random state."""

    def __init__(self, data: Iterable[Any]) -> None:
        self.data = data
        self.entries: dict[int, Entry] = {}
        self._iterator: Iterator[Any] | None = None
        self._drawn = 0  # steps whose batch came from the iterator
        self._epoch = 0
        self._in_epoch = 0
        self._samples = 0
        self.ended: dict[int, bool] = {}  # step → the data ran out right after it
        self._last_rng: RngState | None = None
        try:
            self.length: int | None = len(data)  # type: ignore[arg-type]
        except TypeError:
            self.length = None

    def entry(self, step: int, epochs: int) -> Entry | None:
        """Step ``step``'s batch (0-based), drawing it if it is the next one; None when
        the data ran out and ``epochs`` epochs are done."""
        found = self.entries.get(step)
        if found is not None:
            found.rng.restore()
            return found
        if step != self._drawn:
            raise RuntimeError(f"batch {step} is neither kept nor next ({self._drawn})")
        batch = self._next(epochs)
        if batch is None:
            return None
        entry = Entry(
            batch, self._epoch, self._in_epoch, self._samples, RngState.capture(self._last_rng)
        )
        self._last_rng = entry.rng
        self.entries[step] = entry
        self._drawn += 1
        self._in_epoch += 1
        self._samples += batch_len(batch)
        return entry

    def _next(self, epochs: int) -> Any:
        if self._iterator is not None:
            try:
                return next(self._iterator)
            except StopIteration:
                self._iterator = None
                self.ended[self._drawn - 1] = True
                self._epoch += 1
                self._in_epoch = self._samples = 0
        if self._epoch >= epochs:
            return None
        self._iterator = iter(self.data)
        try:
            return next(self._iterator)
        except StopIteration:
            raise AttachError("data yielded no batch at all; give it at least one") from None

    def bytes_between(self, start: int, stop: int) -> int:
        """Bytes of the batches kept for steps ``start`` to ``stop - 1``."""
        return sum(
            batch_bytes(entry.batch) for k, entry in self.entries.items() if start <= k < stop
        )

    def forget_before(self, step: int) -> None:
        for old in [k for k in self.entries if k < step]:
            del self.entries[old]
