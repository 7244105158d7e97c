"""The command line's malloc tuning takes effect on glibc and is harmless to call again."""

from __future__ import annotations

import platform

from backprop_tui.core.system.allocator import keep_freed_memory


def test_keep_freed_memory_takes_effect_on_glibc() -> None:
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is expected
    assert keep_freed_memory() is expected  # idempotent
