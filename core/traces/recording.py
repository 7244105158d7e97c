"""Traces: a recorded run in one ``.npz`` file, saved atomically and read without pickle.

A trace holds, per training step, the loss, the metrics and each parameter's
gradient norm; per epoch, what Keras reports (with validation values); the
debugger's log; and the parameters and gradients every K steps, with K
doubled as the run grows so the file stays under a chosen size. Metadata —
the scenario's network, loss, optimizer and training settings, the backend —
is a JSON document stored as a ``uint8`` array, so the whole file loads with
``allow_pickle=False``.

Array names: ``step/loss``, ``step/epoch``, ``step/metric/<name>``,
``step/grad_norm`` (steps, params), ``step/penalty`` (the weight penalty inside
each step's loss, for a network with regularizers only); ``epoch/end``, ``epoch/loss``,
``epoch/metric/<name>``, ``epoch/val_loss``, ``epoch/val_metric/<name>``
(NaN where there was no validation data); ``param_steps`` and
``params/<name>`` (recorded, *shape), ``grad_steps`` and ``grads/<name>``.
Recorded steps count the training steps done: parameters at step s are those
after s steps, gradients at step s are those of the s-th step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..safetext import clip, visible_tree
from ..spec.arrayfile import ArrayFileError, OverCap, data_cap, load_npz, npz_members
from ..spec.types import LayerSpec

if TYPE_CHECKING:
    from ..run.debugger import Debugger, LogEntry

FORMAT = "backprop-tui-trace"
VERSION = 1
MB = 1024 * 1024
# Room kept for the JSON header's fixed part and for each archive member's
# zip and .npy headers, so the estimate stays above the real size.
HEADER_RESERVE = 64 * 1024
MEMBER_RESERVE = 512
MAX_LOG_ENTRIES = 50_000
ZIP_MAGIC = b"PK\x03\x04"

F64 = NDArray[np.float64]


class TraceError(Exception):
    """A trace file that cannot be read or written; ``str(err)`` names the file, in one line."""

    def __init__(self, message: str, file: str | os.PathLike[str]) -> None:
        self.message = message
        self.file = str(file)
        super().__init__(f"{self.file}: {message}")


@dataclass(frozen=True, eq=False)
class Trace:
    """A recorded run. ``steps`` is the number of training steps recorded."""

    header: dict[str, Any]
    loss: F64
    step_epoch: NDArray[np.int64]
    metrics: dict[str, F64]
    grad_norm: F64
    epochs: dict[str, F64]
    param_steps: NDArray[np.int64]
    params: dict[str, F64]
    grad_steps: NDArray[np.int64]
    grads: dict[str, F64]
    log: list[dict[str, Any]] = field(default_factory=list)
    path: str | None = None
    # A two-input network's training and validation data (x_train, y_train, x_val,
    # y_val), so that a replay can draw the input plane; empty otherwise.
    plane: dict[str, F64] = field(default_factory=dict)
    # Each step's weight penalty, the part of ``loss`` the regularizers make; None
    # for a network without them (and for traces written before it was kept).
    penalty: F64 | None = None

    @property
    def steps(self) -> int:
        return len(self.loss)

    @property
    def start_step(self) -> int:
        return int(self.header["start_step"])

    @property
    def param_names(self) -> list[str]:
        return list(self.header["param_names"])

    def arrays(self) -> dict[str, NDArray[Any]]:
        """Every array as it is stored, the header included."""
        header = dict(self.header, log=self.log)
        out: dict[str, NDArray[Any]] = {
            "header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
            "step/loss": self.loss,
            "step/epoch": self.step_epoch,
            "step/grad_norm": self.grad_norm,
            "param_steps": self.param_steps,
            "grad_steps": self.grad_steps,
        }
        out.update({f"step/metric/{k}": v for k, v in self.metrics.items()})
        out.update({f"epoch/{k}": v for k, v in self.epochs.items()})
        out.update({f"params/{k}": v for k, v in self.params.items()})
        out.update({f"grads/{k}": v for k, v in self.grads.items()})
        out.update({f"plane/{k}": v for k, v in self.plane.items()})
        if self.penalty is not None:
            out["step/penalty"] = self.penalty
        return out


# ------------------------------------------------------------------------ saving
def save_trace(path: str | os.PathLike[str], trace: Trace) -> int:
    """Write ``trace`` to ``path`` atomically; return the file's size in bytes.

    The archive is written to a temporary file beside ``path``, flushed to
    disk and renamed over it, so a crash or a kill at any moment leaves either
    the previous file or the new one, never a mix.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise TraceError(f"cannot be written ({err.strerror}); check the folder", path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            arrays: dict[str, Any] = trace.arrays()  # savez's stub types **kwds too narrowly
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(directory)
    return target.stat().st_size


def _sync_folder(directory: Path) -> None:
    # The rename is durable once the folder's entry is on disk too (POSIX only).
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------ loading
def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Read a trace written by :func:`save_trace`; a damaged or foreign file is a TraceError.

    Every array's size is checked against the data cap (``BACKPROP_TUI_MAX_DATA_MB``)
    from the zip directory before it is read, and every text in the header and
    the log has its control characters made visible: a trace comes from another
    machine, and may come from someone else.
    """
    name = str(path)
    file = Path(path)
    try:
        with open(file, "rb") as handle:
            magic = handle.read(6)
    except FileNotFoundError:
        raise TraceError("no such file; record one with backprop-tui run --save", name) from None
    except IsADirectoryError:
        raise TraceError("is a folder, not a trace file", name) from None
    except OSError as err:
        raise TraceError(f"cannot be read ({err.strerror or err})", name) from None
    if magic.startswith(b"\x93NUMPY"):
        raise TraceError("is a single NumPy array, not a backprop-tui trace", name)
    if not magic.startswith(ZIP_MAGIC):
        raise TraceError("is not a backprop-tui trace (not an .npz archive)", name)
    try:
        cap = data_cap()
    except ArrayFileError as err:
        raise TraceError(f"cannot be opened: {err}", name) from None
    try:
        members = npz_members(file, name)
        if "header" not in members:
            raise TraceError(
                "is an .npz archive but not a backprop-tui trace (it has no header)", name
            )
        arrays = load_npz(file, name, cap=cap)
    except OverCap as err:
        raise TraceError(_unprefixed(str(err), name), name) from None
    except ArrayFileError as err:
        detail = _unprefixed(str(err), name)
        if "not a readable .npz archive" in detail:
            detail = "the archive is cut short or corrupted"
        raise TraceError(f"is damaged ({detail}); record it again", name) from None
    header = _header(arrays.pop("header"), name)
    try:
        return _assemble(header, arrays, name)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise TraceError(
            f"is damaged (inconsistent contents: {clip(str(err), 80)}); record it again", name
        ) from None


def _unprefixed(message: str, name: str) -> str:
    for prefix in (f"{name}: ", f"{name} "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def _header(raw: NDArray[Any], name: str) -> dict[str, Any]:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise TraceError("is not a backprop-tui trace (its header is not JSON text)", name)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TraceError(
            "is damaged (its header is not valid JSON); record it again", name
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise TraceError("is not a backprop-tui trace (its header names another format)", name)
    version = header.get("version")
    if not isinstance(version, int) or version < 1:
        raise TraceError("is damaged (its header has no format version); record it again", name)
    if version > VERSION:
        raise TraceError(
            f"was written by a newer backprop-tui (trace format {version}, this one reads "
            f"up to {VERSION}); upgrade backprop-tui to open it",
            name,
        )
    safe = visible_tree(header)
    assert isinstance(safe, dict)
    return safe


def _expect(value: object, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it is of ``kind`` (a bool is no number here), else a ValueError naming it."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ValueError(f"{what} is {type(value).__name__}")
    if not isinstance(value, kinds):
        raise ValueError(f"{what} is {type(value).__name__}")
    return value


def _check_metadata(header: dict[str, Any]) -> None:
    """Every field a replay reads exists with its type, so a replay never trips on one."""
    meta = _expect(header.get("scenario"), dict, "scenario")
    for key in ("name", "description", "loss"):
        _expect(meta.get(key), str, f"scenario.{key}")
    for key in ("seed", "inputs", "steps_per_epoch", "train_samples", "validation_samples"):
        _expect(meta.get(key), int, f"scenario.{key}")
    layers = _expect(meta.get("layers"), list, "scenario.layers")
    if not layers:
        raise ValueError("scenario.layers is empty")
    for i, layer in enumerate(layers):
        _expect(layer, dict, f"scenario.layers[{i}]")
        for key in ("name", "type", "activation"):
            _expect(layer.get(key), str, f"scenario.layers[{i}].{key}")
        for key in ("inputs", "units"):
            _expect(layer.get(key), int, f"scenario.layers[{i}].{key}")
        _expect(layer.get("use_bias"), bool, f"scenario.layers[{i}].use_bias")
        for key in SHAPE_FIELDS:
            for n in _expect(layer.get(key, []), list, f"scenario.layers[{i}].{key}"):
                _expect(n, int, f"scenario.layers[{i}].{key}[]")
        _expect(layer.get("padding", "valid"), str, f"scenario.layers[{i}].padding")
        for key in ("rate", "momentum", "epsilon"):
            _expect(layer.get(key, 0.0), (int, float), f"scenario.layers[{i}].{key}")
        for key in ("kernel_initializer", "bias_initializer"):
            init = _expect(layer.get(key), dict, f"scenario.layers[{i}].{key}")
            _expect(init.get("name"), str, f"scenario.layers[{i}].{key}.name")
            _expect(init.get("options", {}), dict, f"scenario.layers[{i}].{key}.options")
            if set(init) - {"name", "options"}:
                raise ValueError(f"scenario.layers[{i}].{key} has unknown keys")
        for key in ("kernel_regularizer", "bias_regularizer"):
            if layer.get(key) is None:
                continue
            reg = _expect(layer[key], dict, f"scenario.layers[{i}].{key}")
            if set(reg) - {"l1", "l2"}:
                raise ValueError(f"scenario.layers[{i}].{key} has unknown keys")
            for factor in reg.values():
                if not math.isfinite(_expect(factor, (int, float), f"scenario.layers[{i}].{key}")):
                    raise ValueError(f"scenario.layers[{i}].{key} is not finite")
    for n in _expect(meta.get("input_shape", []), list, "scenario.input_shape"):
        _expect(n, int, "scenario.input_shape[]")
    optimizer = _expect(meta.get("optimizer"), dict, "scenario.optimizer")
    _expect(optimizer.get("name"), str, "scenario.optimizer.name")
    _expect(optimizer.get("options"), dict, "scenario.optimizer.options")
    for key in ("metrics", "breakpoints"):
        for item in _expect(meta.get(key, []), list, f"scenario.{key}"):
            _expect(item, str, f"scenario.{key}[]")
    training = _expect(meta.get("training"), dict, "scenario.training")
    if set(training) - {"epochs", "batch_size", "shuffle"}:
        raise ValueError("scenario.training has unknown keys")
    _expect(meta.get("diagnostics", {}), dict, "scenario.diagnostics")
    for key in ("class_names", "path"):
        if meta.get(key) is not None:
            _expect(meta[key], (list, str), f"scenario.{key}")
    backend = _expect(header.get("backend"), dict, "backend")
    for key in ("name", "device", "dtype"):
        _expect(backend.get(key), str, f"backend.{key}")
    for key in ("start_step", "steps"):
        if _expect(header.get(key), int, key) < 0:
            raise ValueError(f"{key} is negative")
    _expect(header.get("params_every", 0), int, "params_every")
    last = -1
    for change in _expect(header.get("lr_changes", []), list, "lr_changes"):
        if not isinstance(change, list) or len(change) != 2:
            raise ValueError("lr_changes[] is not a pair [step, rate]")
        first = _expect(change[0], int, "lr_changes[][0]")
        rate = _expect(change[1], (int, float), "lr_changes[][1]")
        if first <= last or not (math.isfinite(rate) and rate > 0):
            raise ValueError("lr_changes is not a list of [step, positive rate] in step order")
        last = first
    for key in ("created", "stopped"):
        if header.get(key) is not None:
            _expect(header[key], str, key)
    for item in _expect(header.get("param_names"), list, "param_names"):
        _expect(item, str, "param_names[]")
    _expect(header.get("param_shapes"), dict, "param_shapes")


LOG_LEVELS = ("info", "warning", "error", "break")


def _check_log(log: object) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = _expect(log, list, "the log")
    for i, item in enumerate(entries):
        _expect(item, dict, f"log[{i}]")
        _expect(item.get("step"), int, f"log[{i}].step")
        _expect(item.get("position", 0), int, f"log[{i}].position")
        if item.get("level") not in LOG_LEVELS:
            raise ValueError(f"log[{i}].level is not one of {', '.join(LOG_LEVELS)}")
        _expect(item.get("text"), str, f"log[{i}].text")
        _expect(item.get("kind", "event"), str, f"log[{i}].kind")
        if item.get("layer") is not None:
            _expect(item["layer"], str, f"log[{i}].layer")
    return entries


def _assemble(header: dict[str, Any], arrays: dict[str, NDArray[Any]], name: str) -> Trace:
    _check_metadata(header)
    names = [str(n) for n in header["param_names"]]
    metric_names = [str(m) for m in header["scenario"]["metrics"]]
    steps = int(header["steps"])
    start = int(header["start_step"])

    def vector(key: str, dtype: type[np.generic], length: int) -> NDArray[Any]:
        array = np.asarray(arrays[key])
        if array.dtype.kind not in ("iu" if dtype is np.int64 else "iuf"):
            raise ValueError(f"{key} holds {array.dtype}, not the numbers it should")
        if array.shape != (length,):
            raise ValueError(f"{key} has shape {array.shape}, expected ({length},)")
        return array.astype(dtype)

    loss = vector("step/loss", np.float64, steps)
    penalty = vector("step/penalty", np.float64, steps) if "step/penalty" in arrays else None
    grad_norm = np.asarray(arrays["step/grad_norm"])
    if grad_norm.dtype.kind != "f":
        raise ValueError(f"step/grad_norm holds {grad_norm.dtype}, not numbers")
    if grad_norm.shape != (steps, len(names)):
        raise ValueError(f"step/grad_norm has shape {grad_norm.shape}")
    count = len(np.asarray(arrays["epoch/end"]))
    epoch_keys = [k for k in arrays if k.startswith("epoch/")]
    shapes = {n: tuple(int(d) for d in header["param_shapes"][n]) for n in names}
    stored: dict[str, tuple[NDArray[np.int64], dict[str, F64]]] = {}
    for kind, at_key in (("params", "param_steps"), ("grads", "grad_steps")):
        at = np.asarray(arrays[at_key])
        if at.dtype.kind not in "iu":
            raise ValueError(f"{at_key} holds {at.dtype}, not whole numbers")
        at = at.astype(np.int64)
        if at.ndim != 1 or np.any(np.diff(at) <= 0) or np.any((at < start) | (at > start + steps)):
            raise ValueError(f"{at_key} are not increasing steps of the recording")
        values: dict[str, F64] = {}
        for n in names:
            array = arrays[f"{kind}/{n}"]
            if array.shape != (len(at), *shapes[n]):
                raise ValueError(f"{kind}/{n} has shape {array.shape}")
            if array.dtype.kind != "f":
                raise ValueError(f"{kind}/{n} holds {array.dtype}, not floating-point numbers")
            values[n] = array
        stored[kind] = (at, values)
    log = _check_log(header.get("log", []))
    meta = header["scenario"]
    plane = _check_plane(arrays, int(meta["inputs"]), int(meta["layers"][-1]["units"]))
    return Trace(
        header={k: v for k, v in header.items() if k != "log"},
        loss=loss,
        step_epoch=vector("step/epoch", np.int64, steps),
        metrics={m: vector(f"step/metric/{m}", np.float64, steps) for m in metric_names},
        grad_norm=grad_norm,
        epochs={k.removeprefix("epoch/"): vector(k, np.float64, count) for k in epoch_keys},
        param_steps=stored["params"][0],
        params=stored["params"][1],
        grad_steps=stored["grads"][0],
        grads=stored["grads"][1],
        log=log,
        path=name,
        plane=plane,
        penalty=penalty,
    )


PLANE_KEYS = ("x_train", "y_train", "x_val", "y_val")
MAX_PLANE_POINTS = 100_000  # beyond this a trace keeps no data: the map would hide it anyway


def _check_plane(arrays: dict[str, NDArray[Any]], inputs: int, outputs: int) -> dict[str, F64]:
    """The recorded data of a two-input network, checked; empty when the trace has none."""
    found = {k.removeprefix("plane/"): v for k, v in arrays.items() if k.startswith("plane/")}
    if not found:
        return {}
    if set(found) != set(PLANE_KEYS) or inputs != 2:
        raise ValueError("its plane data is incomplete")
    plane: dict[str, F64] = {}
    for split in ("train", "val"):
        x, y = np.asarray(found[f"x_{split}"]), np.asarray(found[f"y_{split}"])
        if x.dtype.kind != "f" or y.dtype.kind != "f" or x.ndim != 2 or y.ndim != 2:
            raise ValueError(f"plane/x_{split} and plane/y_{split} are not tables of numbers")
        if (
            x.shape[1] != 2
            or y.shape[1] != outputs
            or len(x) != len(y)
            or len(x) > MAX_PLANE_POINTS
        ):
            raise ValueError(f"plane/x_{split} has shape {x.shape}, y {y.shape}")
        plane[f"x_{split}"], plane[f"y_{split}"] = x.astype(np.float64), y.astype(np.float64)
    return plane


def plane_of(dbg: Debugger) -> dict[str, F64]:
    """The data a replay draws the input plane with: a two-input network's, if not too big."""
    data = dbg.scenario.data
    if dbg.scenario.sample_shape != (2,) or len(data.x_train) + len(data.x_val) > MAX_PLANE_POINTS:
        return {}
    return {
        "x_train": data.x_train,
        "y_train": data.y_train,
        "x_val": data.x_val,
        "y_val": data.y_val,
    }


# ------------------------------------------------------------------------ recording
SHAPE_FIELDS = ("input_shape", "output_shape", "kernel_size", "strides")
OPTION_FIELDS = ("padding", "rate", "momentum", "epsilon")


def _shape_fields(layer: LayerSpec) -> dict[str, Any]:
    """A layer's shapes and options beyond Dense's, for a replay to show it (optional keys:
    traces of Dense networks from before them still load)."""
    out: dict[str, Any] = {key: list(getattr(layer, key)) for key in SHAPE_FIELDS}
    out.update({key: getattr(layer, key) for key in OPTION_FIELDS})
    return out


def scenario_metadata(dbg: Debugger) -> dict[str, Any]:
    """What a replay needs to show the network without the scenario file or its data."""
    s = dbg.scenario
    return {
        "name": s.name,
        "description": s.description,
        "seed": s.seed,
        "path": s.path,
        "inputs": s.inputs,
        "layers": [
            {
                "name": layer.name,
                "type": layer.type,
                "inputs": layer.inputs,
                "units": layer.units,
                "activation": layer.activation,
                "use_bias": layer.use_bias,
                "kernel_initializer": dataclasses.asdict(layer.kernel_initializer),
                "bias_initializer": dataclasses.asdict(layer.bias_initializer),
                **{
                    key: reg.as_dict()
                    for key, reg in (
                        ("kernel_regularizer", layer.kernel_regularizer),
                        ("bias_regularizer", layer.bias_regularizer),
                    )
                    if reg is not None
                },
                **_shape_fields(layer),
            }
            for layer in s.layers
        ],
        "input_shape": list(s.input_shape),
        "loss": s.loss,
        "optimizer": {"name": s.optimizer.name, "options": dict(s.optimizer.options)},
        "metrics": list(s.metrics),
        "training": dataclasses.asdict(s.training),
        "steps_per_epoch": s.steps_per_epoch(),
        "train_samples": len(s.data.x_train),
        "validation_samples": len(s.data.x_val),
        "breakpoints": list(s.breakpoints),
        "diagnostics": dict(s.diagnostics),
        "class_names": None if s.data.class_names is None else list(s.data.class_names),
    }


class _Column:
    """Numbers appended a row at a time into an array that doubles as it fills."""

    def __init__(self, dtype: type[np.generic], width: int | None = None) -> None:
        self._data: NDArray[Any] = np.empty((64,) if width is None else (64, width), dtype)
        self._size = 0

    def append(self, value: float | list[float]) -> None:
        if self._size == len(self._data):
            self._data = np.concatenate([self._data, np.empty_like(self._data)])
        self._data[self._size] = value
        self._size += 1

    def __len__(self) -> int:
        return self._size

    def array(self) -> NDArray[Any]:
        """What was appended, as a fresh array (later appends do not change it)."""
        return self._data[: self._size].copy()


class TraceRecorder:
    """Records a debugger's run as it goes; attach with ``dbg.listeners.append(rec.observe)``.

    The run must go forward only while it is recorded (no ``back()``).

    Parameters and gradients are kept every ``params_every`` steps (1 at
    first, doubled whenever keeping them would take the file past
    ``max_bytes``), plus the last step. Should the per-step records alone
    reach the cap, recording stops there and the trace says so.
    """

    def __init__(
        self,
        dbg: Debugger,
        max_bytes: int,
        path: str | os.PathLike[str] | None = None,
        checkpoint_s: float | None = None,
    ) -> None:
        self.dbg = dbg
        self.max_bytes = max_bytes
        self.path = path
        # Saving now and then, when a path is given, leaves a usable file if the run is killed.
        self.checkpoint_s = checkpoint_s
        self._saved_at = time.monotonic()
        self.start_step = dbg.step_index
        self.param_names = list(dbg.scenario.param_names)
        self.metric_names = list(dbg.scenario.metrics)
        self.shapes = {n: tuple(v.shape) for n, v in dbg.params.items()}
        # 8 bytes a number, however long the run: Python lists of floats took about 32.
        self.loss = _Column(np.float64)
        self.step_epoch = _Column(np.int64)
        regularized = any(layer.regularizers for layer in dbg.scenario.layers)
        self.penalty = _Column(np.float64) if regularized else None
        self.metrics = {m: _Column(np.float64) for m in self.metric_names}
        self.grad_norm = _Column(np.float64, width=len(self.param_names))
        # A column a figure for the epochs too: xor ends one every step, and a dict a
        # row held some 400 bytes where the trace keeps 8 a number.
        epoch_keys = ["end", "loss", "val_loss"]
        epoch_keys += [f"{p}metric/{m}" for m in self.metric_names for p in ("", "val_")]
        self.epoch_columns = {k: _Column(np.float64) for k in epoch_keys}
        self.log: list[dict[str, Any]] = []
        self.log_bytes = 0
        self.log_dropped = 0
        self._log_seen = len(dbg.log)
        self._epochs_seen = len(dbg.epoch_history)
        self.params_every = 1
        self.snapshots: dict[int, tuple[dict[str, Any], dict[str, Any] | None]] = {}
        itemsize = max(np.asarray(v).itemsize for v in dbg.params.values())
        self.snapshot_bytes = 2 * itemsize * dbg.scenario.param_count + 2 * len(self.shapes) * 8
        self.stopped: str | None = None
        # The data a replay draws the input plane on, while it takes at most an eighth of
        # the cap: the weights are what a trace is for.
        self.plane = plane_of(dbg)
        self.plane_bytes = sum(v.nbytes + MEMBER_RESERVE for v in self.plane.values())
        if self.plane_bytes > (max_bytes - HEADER_RESERVE) // 8:
            self.plane, self.plane_bytes = {}, 0
        self._keep(self.start_step, with_grads=False)

    # --------------------------------------------------------------- sizes
    def _fixed_bytes(self) -> int:
        per_step = 8 * (2 + len(self.metric_names) + len(self.param_names))
        per_step += 0 if self.penalty is None else 8
        per_epoch = 8 * (3 + 2 * len(self.metric_names))
        members = 8 + 3 * len(self.metric_names) + 2 * len(self.param_names)
        return (
            HEADER_RESERVE
            + MEMBER_RESERVE * members
            + per_step * len(self.loss)
            + per_epoch * len(self.epoch_columns["end"])
            + self.log_bytes
            + self.plane_bytes
        )

    def _room_for_snapshots(self) -> int:
        return self.max_bytes - self._fixed_bytes()

    # ----------------------------------------------------------- recording
    def observe(self, dbg: Debugger) -> None:
        """A debugger listener: records each training step once it is complete."""
        if dbg.phase == "update" and dbg.step_index > self.start_step + len(self.loss):
            self.record()
            due = self.checkpoint_s is not None and (
                time.monotonic() - self._saved_at >= self.checkpoint_s
            )
            if due and self.path is not None:
                self.save()

    def save(self) -> int:
        """Write what has been recorded to ``path`` (atomically); return the size in bytes."""
        if self.path is None:
            raise ValueError("the recorder was given no path to save to")
        size = save_trace(self.path, self.trace())
        self._saved_at = time.monotonic()
        return size

    def record(self) -> None:
        """Record the step the debugger has just completed."""
        dbg = self.dbg
        if self.stopped is not None:
            return
        stats = dbg.step_history[-1]
        self.loss.append(float(stats.loss))
        self.step_epoch.append(int(stats.epoch))
        if self.penalty is not None:
            self.penalty.append(np.nan if dbg.penalty is None else float(dbg.penalty))
        for m in self.metric_names:
            self.metrics[m].append(float(stats.metrics.get(m, np.nan)))
        grads = dbg.grads
        self.grad_norm.append(
            [
                float(np.linalg.norm(np.asarray(grads[n], dtype=np.float64)))
                for n in self.param_names
            ]
        )
        for epoch in dbg.epoch_history[self._epochs_seen :]:
            row = {"end": float(dbg.step_index), "loss": float(epoch.loss)}
            for m in self.metric_names:
                row[f"metric/{m}"] = float(epoch.metrics.get(m, np.nan))
                row[f"val_metric/{m}"] = float(epoch.val_metrics.get(m, np.nan))
            row["val_loss"] = np.nan if epoch.val_loss is None else float(epoch.val_loss)
            for key, column in self.epoch_columns.items():
                column.append(row[key])
        self._epochs_seen = len(dbg.epoch_history)
        self._take_log(dbg.log[self._log_seen :], dbg.step_index)
        self._log_seen = len(dbg.log)
        if (dbg.step_index - self.start_step) % self.params_every == 0:
            self._keep(dbg.step_index, with_grads=True)
        self._thin()
        if self._room_for_snapshots() < 0:
            self.stopped = (
                f"recording stopped after step {dbg.step_index}: the per-step records "
                f"reached the {self.max_bytes / MB:g} MB cap"
            )

    def _take_log(self, entries: list[LogEntry], position: int) -> None:
        for entry in entries:
            if len(self.log) >= MAX_LOG_ENTRIES:
                self.log_dropped += 1
                continue
            item = {"position": position, **dataclasses.asdict(entry)}
            self.log.append(item)
            self.log_bytes += len(json.dumps(item)) + 2

    def _keep(self, step: int, with_grads: bool) -> None:
        dbg = self.dbg
        params = dict(dbg.params)  # host arrays that are never written in place
        grads = dict(dbg.grads) if with_grads and dbg.grads else None
        self.snapshots[step] = (params, grads)

    def _thin(self) -> None:
        # one snapshot's room stays free for the final step, kept by trace()
        while self.snapshots and (len(self.snapshots) + 1) * self.snapshot_bytes > (
            self._room_for_snapshots()
        ):
            self.params_every *= 2
            if self.params_every > max(1, 2 * (self.dbg.step_index - self.start_step)):
                self.snapshots.clear()  # not even one fits besides the last
                break
            self.snapshots = {
                s: v
                for s, v in self.snapshots.items()
                if (s - self.start_step) % self.params_every == 0
            }

    # ------------------------------------------------------------- output
    def trace(self) -> Trace:
        """Everything recorded so far, with the current step's parameters and gradients."""
        dbg = self.dbg
        snapshots = dict(self.snapshots)
        last = self.start_step + len(self.loss)
        room = self._room_for_snapshots()
        fits = (len(snapshots) + 1) * self.snapshot_bytes <= room
        current = dbg.step_index == last and dbg.phase == "update"
        if last not in snapshots and fits and current:
            snapshots[last] = (dict(dbg.params), dict(dbg.grads) if dbg.grads else None)
        param_steps = sorted(snapshots)
        grad_steps = [s for s in param_steps if snapshots[s][1] is not None]
        header: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "scenario": scenario_metadata(dbg),
            "backend": {
                "name": dbg.backend.name,
                "device": str(dbg.backend.device),
                "dtype": dbg.dtype,
            },
            "start_step": self.start_step,
            "steps": len(self.loss),
            "params_every": self.params_every if self.snapshots else 0,
            "param_names": self.param_names,
            "param_shapes": {n: list(s) for n, s in self.shapes.items()},
            "max_bytes": self.max_bytes,
            "stopped": self.stopped,
            "log_dropped": self.log_dropped,
            # Learning rates set while it ran: [first step index, rate], in step order.
            "lr_changes": [[first, rate] for first, rate in dbg.lr_changes],
        }
        return Trace(
            header=header,
            loss=self.loss.array(),
            step_epoch=self.step_epoch.array(),
            metrics={m: v.array() for m, v in self.metrics.items()},
            grad_norm=self.grad_norm.array(),
            epochs=self._epoch_arrays(),
            param_steps=np.array(param_steps, dtype=np.int64),
            params=self._stack(snapshots, param_steps, 0),
            grad_steps=np.array(grad_steps, dtype=np.int64),
            grads=self._stack(snapshots, grad_steps, 1),
            log=list(self.log),
            plane=dict(self.plane),
            penalty=None if self.penalty is None else self.penalty.array(),
        )

    def _epoch_arrays(self) -> dict[str, F64]:
        return {k: column.array() for k, column in self.epoch_columns.items()}

    def _stack(
        self,
        snapshots: dict[int, tuple[dict[str, Any], dict[str, Any] | None]],
        steps: list[int],
        part: int,
    ) -> dict[str, F64]:
        out: dict[str, F64] = {}
        for n in self.param_names:
            rows = [np.asarray(snapshots[s][part][n]) for s in steps]  # type: ignore[index]
            dtype = rows[0].dtype if rows else np.float64
            out[n] = np.stack(rows) if rows else np.zeros((0, *self.shapes[n]), dtype=dtype)
        return out
