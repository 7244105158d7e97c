"""The engine of backprop-tui: scenarios, backends, optimizers, the :class:`Debugger`,
the :class:`Replay` of a recorded run, and :class:`RunView`, the interface both satisfy.

Nothing here imports Textual, Rich or torch; the torch backend imports torch
only when it is chosen. Users and the app import from here, never from deep paths.
"""

from .attach import AttachError, attach  # imports torch only when called
from .errors import BackendUnavailable, ExpressionError, NotPossible, ScenarioError
from .records import EpochStats, LogEntry, PhaseRecord, StepStats, UpdateArrays, UpdateRow
from .run.debugger import Debugger
from .run.gradcheck import GradCheckResult, gradient_check
from .run.update_table import top_indices
from .runview import (
    GRANULARITIES,
    MAX_MAP_POINTS,
    Batch,
    Granularity,
    InputMap,
    LayerView,
    PlanePoints,
    RunKind,
    RunReading,
    RunView,
)
from .snapshot import RunSnapshot
from .spec.scenario import Scenario, bundled_dir, load_scenario
from .traces.recording import TraceError, TraceRecorder, load_trace
from .traces.replay import Replay
from .watch.breakpoints import BreakHit, Breakpoint, RunResult

__all__ = [
    "GRANULARITIES",
    "MAX_MAP_POINTS",
    "AttachError",
    "BackendUnavailable",
    "Batch",
    "BreakHit",
    "Breakpoint",
    "Debugger",
    "EpochStats",
    "ExpressionError",
    "GradCheckResult",
    "Granularity",
    "InputMap",
    "LayerView",
    "LogEntry",
    "NotPossible",
    "PhaseRecord",
    "PlanePoints",
    "Replay",
    "RunKind",
    "RunReading",
    "RunResult",
    "RunSnapshot",
    "RunView",
    "Scenario",
    "ScenarioError",
    "StepStats",
    "TraceError",
    "TraceRecorder",
    "UpdateArrays",
    "UpdateRow",
    "attach",
    "bundled_dir",
    "gradient_check",
    "load_scenario",
    "load_trace",
    "top_indices",
]
