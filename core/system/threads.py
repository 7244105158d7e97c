"""How many threads the engine's BLAS (and torch) may use, chosen for the machine and its load.

OpenBLAS starts one thread per core and, after each call, keeps them spinning
for a while in case another call comes. On a machine where every core is
taken — by another process, or by the app's own UI thread — those threads spin
against the work they should let run: a step of 784→512→512→10 at batch 32
went from 9 ms to 134–244 ms on a busy 2-core machine with the default
threads, against 12–25 ms with one. At the sizes a debugger steps (batches of
tens), more threads bring little even on a quiet machine, so the choice leans
to fewer:

- a machine with 4 cores or fewer gets one thread: one core stays free for the
  UI thread, and what is left is too little to split;
- a bigger machine gets half the cores left once one is kept for the UI thread
  and one for each other process its load average shows busy, and at most
  ``MAX_THREADS``. Half, because the load average lags and the choice is made
  once: jobs that start later find free cores instead of spinning threads.

The asymmetry behind it, measured on 784→512→512→10 on a shared 2-core machine:
a second thread saved at most 5% of a quiet step, and cost 1.5× to 6× as soon
as anything else ran.

``--threads N`` on the command line or ``BACKPROP_TUI_THREADS=N`` override
the choice; without them, a thread count the user gave the libraries themselves
(``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OMP_NUM_THREADS``) is left as
it is. Like the malloc tuning, this is process-wide, so the library never
applies it on import: the command line does, once, at start-up.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ENV_VARIABLE = "BACKPROP_TUI_THREADS"
SMALL_MACHINE = 4  # cores; at or under this, one BLAS thread
MAX_THREADS = 8  # past this, at debugger batch sizes, threads only add wake-up costs
# Read at load by libraries not yet loaded (torch reads OMP_NUM_THREADS when it is
# first imported, which happens only once the torch backend is chosen).
_LIBRARY_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count chosen and, in a few words, why."""

    threads: int
    reason: str


def choose_threads(cores: int, load: float | None, override: int | None = None) -> ThreadChoice:
    """The BLAS thread count for ``cores`` usable cores and a 1-minute ``load`` average.

    ``load`` is None where the system does not say. ``override`` (from ``--threads``
    or the environment) wins when given; it must be at least 1.
    """
    if override is not None:
        if override < 1:
            raise ValueError(f"threads must be at least 1, not {override}")
        return ThreadChoice(override, "as asked")
    if cores <= SMALL_MACHINE:
        return ThreadChoice(1, f"{cores} cores: one is left to the UI thread")
    busy = 0 if load is None else max(0, round(load))
    threads = max(1, min(MAX_THREADS, (cores - 1 - busy) // 2))
    reason = f"{cores} cores: one left to the UI thread, half the rest to later work"
    if busy:
        reason += f", {busy} busy with other work (load {load:.1f})"
    return ThreadChoice(threads, reason)


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, within a cgroup's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def _cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs a cgroup v2 container may use (``cpu.max``), or None when unlimited or unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def load_average() -> float | None:
    """The 1-minute load average, or None where the system does not keep one."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def override_from(value: str | None) -> int | None:
    """``BACKPROP_TUI_THREADS`` read as a thread count; None when unset or empty."""
    if value is None or not value.strip():
        return None
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"{ENV_VARIABLE} must be a whole number, not {value!r}") from None
    if threads < 1:
        raise ValueError(f"{ENV_VARIABLE} must be at least 1, not {threads}")
    return threads


def apply_threads(threads: int) -> None:
    """Limit every thread pool loaded in this process, and the ones loaded later, to ``threads``."""
    from threadpoolctl import threadpool_limits

    for variable in _LIBRARY_VARIABLES:
        os.environ[variable] = str(threads)
    threadpool_limits(limits=threads)  # BLAS and OpenMP pools already loaded
    torch = sys.modules.get("torch")  # set directly only if already loaded: never import it
    if torch is not None:
        torch.set_num_threads(threads)


def configure_threads(override: int | None = None) -> ThreadChoice:
    """Choose the thread count for this machine now (``override`` or the environment
    winning) and apply it; returns the choice."""
    if override is None:
        override = override_from(os.environ.get(ENV_VARIABLE))
    if override is None:
        for variable in _LIBRARY_VARIABLES:
            if os.environ.get(variable, "").strip().isdigit():
                return ThreadChoice(int(os.environ[variable]), f"as {variable} says")
    choice = choose_threads(usable_cores(), load_average(), override)
    apply_threads(choice.threads)
    return choice
