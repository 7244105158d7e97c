"""The engine of backprop-tui: scenarios, backends, optimizers and the :class:`Debugger`.

Nothing here imports Textual, Rich or torch; the torch backend imports torch
only when it is chosen.
"""

from .errors import BackendUnavailable, ExpressionError, ScenarioError
from .records import EpochStats, PhaseRecord, StepStats, UpdateRow
from .run.debugger import Debugger, LogEntry
from .spec.scenario import Scenario, load_scenario

__all__ = [
    "BackendUnavailable",
    "Debugger",
    "EpochStats",
    "ExpressionError",
    "LogEntry",
    "PhaseRecord",
    "Scenario",
    "ScenarioError",
    "StepStats",
    "UpdateRow",
    "load_scenario",
]
