"""NumPy files from others, opened under a memory cap: ``.npy``, ``.npz``, and the cap itself.

``np.load`` believes the file: an ``.npz`` member of 1.5 MB can inflate to
gigabytes (a zip bomb), and a ``.npy`` header can claim any shape, which NumPy
allocates before reading a byte. Here every array's size is known before it
is read — from the zip directory and the ``.npy`` header — and checked against
the cap, so a crafted file is refused in milliseconds with memory untouched.

The cap is ``BACKPROP_TUI_MAX_DATA_MB`` megabytes (default 8192, so a real
data set of a few GB opens). A member that would inflate over
:data:`BOMB_RATIO` times past :data:`BOMB_FLOOR` is refused as a likely zip
bomb unless the variable is set, in which case only the cap applies.
Pickled objects are never loaded.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

CAP_VARIABLE = "BACKPROP_TUI_MAX_DATA_MB"
DEFAULT_CAP_MB = 8192
MB = 1024 * 1024
# Real data compresses a few times, rarely a hundred; deflate reaches about a thousand on zeros.
BOMB_RATIO = 100
BOMB_FLOOR = 256 * MB


class ArrayFileError(Exception):
    """An array file that cannot or may not be read; the message is one sentence."""


class OverCap(ArrayFileError):
    """The file is readable, but would take more memory than the cap allows."""


@dataclass(frozen=True)
class Cap:
    """How many bytes one file's arrays may take in memory, and whether the user chose it."""

    nbytes: int
    chosen: bool

    def how_to_raise(self) -> str:
        return f"set {CAP_VARIABLE} to more megabytes (now {self.nbytes // MB:,}) to allow it"


def data_cap() -> Cap:
    """The cap from ``BACKPROP_TUI_MAX_DATA_MB``, or the default (8 GB)."""
    raw = os.environ.get(CAP_VARIABLE, "").strip()
    if not raw:
        return Cap(DEFAULT_CAP_MB * MB, chosen=False)
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if not megabytes > 0 or megabytes != megabytes:
        raise ArrayFileError(
            f"{CAP_VARIABLE} must be a number of megabytes above 0, not {raw[:20]!r}"
        )
    return Cap(int(megabytes * MB), chosen=True)


def human(nbytes: int) -> str:
    """``3.2 GB``, ``14 MB``, ``512 bytes``."""
    if nbytes >= 1000 * MB:
        return f"{nbytes / (1024 * MB):.1f} GB"
    if nbytes >= MB:
        return f"{nbytes / MB:.0f} MB"
    if nbytes >= 1024:
        return f"{nbytes / 1024:.0f} KB"
    return f"{nbytes} bytes"


def check_file_size(path: Path, cap: Cap, what: str) -> int:
    """The file's size in bytes; an error if it is over the cap."""
    size = path.stat().st_size
    if size > cap.nbytes:
        raise OverCap(
            f"{what} is {human(size)}, over the {human(cap.nbytes)} cap on data read into "
            f"memory; {cap.how_to_raise()}"
        )
    return size


def _header(handle: IO[bytes], what: str) -> tuple[tuple[int, ...], np.dtype[Any], bool, int]:
    """(shape, dtype, fortran order, bytes of data) from a ``.npy`` stream at its start."""
    start = handle.read(8)
    if start[:6] != b"\x93NUMPY" or len(start) < 8:
        if start[:1] == b"\x80":  # the pickle protocol's opening byte
            raise ArrayFileError(
                f"{what} holds Python objects (a pickle); save plain numeric arrays"
            )
        raise ArrayFileError(f"{what} is not a readable NumPy array")
    version = (start[6], start[7])
    try:
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"version {version}")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError):
        raise ArrayFileError(f"{what} is not a readable NumPy array") from None
    if dtype.hasobject:
        raise ArrayFileError(f"{what} holds Python objects; save plain numeric arrays")
    count = 1
    for dim in shape:
        count *= int(dim)
    return tuple(int(d) for d in shape), dtype, bool(fortran), count * dtype.itemsize


def _read(handle: IO[bytes], what: str, room: int, cap: Cap) -> NDArray[Any]:
    """Read one ``.npy`` stream whose data may take at most ``room`` bytes."""
    shape, dtype, fortran, nbytes = _header(handle, what)
    if nbytes > cap.nbytes:
        raise OverCap(
            f"{what} would take {human(nbytes)} in memory, over the {human(cap.nbytes)} cap "
            f"on data; {cap.how_to_raise()}"
        )
    if nbytes > room:
        raise ArrayFileError(
            f"{what} claims {human(nbytes)} of data but the file holds less; "
            "it is cut short or damaged"
        )
    array = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
    view = array.reshape(-1, order="A").view(np.uint8).data
    done = 0
    while done < nbytes:
        got = handle.readinto(view[done:])  # type: ignore[attr-defined]
        if not got:
            raise ArrayFileError(f"{what} is cut short (the file ends inside the array)")
        done += got
    handle.read(64 * 1024)  # to the member's end, where zipfile checks its CRC
    return array


def load_npy(path: Path, what: str, cap: Cap | None = None) -> NDArray[Any]:
    """One ``.npy`` file, its size checked against the cap before anything is allocated."""
    cap = cap or data_cap()
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            return _read(handle, what, size, cap)
    except OSError as err:
        raise ArrayFileError(f"{what} cannot be read ({err.strerror or err})") from None


def npz_members(path: Path, what: str) -> list[str]:
    """The array names in an ``.npz`` file (``x`` for ``x.npy``), without reading them."""
    try:
        with zipfile.ZipFile(path) as archive:
            return [info.filename.removesuffix(".npy") for info in archive.infolist()]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise ArrayFileError(f"{what} is not a readable .npz archive") from None


def load_npz(
    path: Path, what: str, names: list[str] | None = None, cap: Cap | None = None
) -> dict[str, NDArray[Any]]:
    """Arrays of an ``.npz`` file (all, or ``names``), checked from the zip directory first.

    Every member's inflated size is read from the archive's directory and
    checked, all together, against the cap (and the zip-bomb ratio) before one
    byte is decompressed; each ``.npy`` header is checked against its member's
    size before the array is allocated.
    """
    cap = cap or data_cap()
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
            wanted = list(infos) if names is None else [n for n in names if n in infos]
            total = 0
            for name in wanted:
                info = infos[name]
                total += info.file_size
                label = f"{what}: {name}"
                ratio = info.file_size / max(info.compress_size, 1)
                if not cap.chosen and info.file_size > BOMB_FLOOR and ratio > BOMB_RATIO:
                    raise OverCap(
                        f"{label} would inflate from {human(info.compress_size)} to "
                        f"{human(info.file_size)} ({ratio:.0f}× compressed, as a zip bomb is); "
                        f"if it is real data, {cap.how_to_raise()}"
                    )
                if total > cap.nbytes:
                    raise OverCap(
                        f"{label} would take the arrays to {human(total)} in memory, over the "
                        f"{human(cap.nbytes)} cap on data; {cap.how_to_raise()}"
                    )
            out: dict[str, NDArray[Any]] = {}
            for name in wanted:
                info = infos[name]
                with archive.open(info) as member:
                    out[name] = _read(member, f"{what}: {name}", info.file_size, cap)
            return out
    except ArrayFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as err:
        detail = str(err)[:60] if isinstance(err, zipfile.BadZipFile) else ""
        raise ArrayFileError(
            f"{what} is not a readable .npz archive"
            + (f" ({detail}); it is cut short or damaged" if detail else "")
        ) from None
    except NotImplementedError:  # a compression method zipfile does not know
        raise ArrayFileError(f"{what} uses a compression NumPy does not write") from None
