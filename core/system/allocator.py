"""Keep freed array memory in the process instead of handing it back to the OS.

A debugger step allocates fresh arrays for every intermediate and keeps the
previous step's until the next one is done. With glibc's default settings,
arrays of a few hundred KB are mapped and unmapped on each allocation, and
every step then pays a page fault per 4 KB touched: measured on the glyphs
network, the project's Adam update ran 2–3× slower than the same arithmetic
in a loop that frees its temporaries at once. Raising the mmap and trim
thresholds lets freed blocks be reused. This is a process-wide setting, so
the library never calls it on import: the command line does, and the
benchmarks do for both sides they compare.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
_TRIM_THRESHOLD = 256 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for many same-sized arrays; True when it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        # The name directly: ctypes.util.find_library would run ldconfig at start-up.
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and ok)
