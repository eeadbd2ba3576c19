"""Parameter sweeps: axes and range syntax, cells validated before sending, cost, the runner.

``from fluxwidget import sweep`` is the entry point (`fluxwidget.sweep.api.sweep`); the pure
parts (`plan_sweep`, `parse_values`, `estimate_cost`) work without a kernel or a server.
"""

from .api import CostNotConfirmed, SweepRun, sweep
from .axes import Axis, Cell, SweepPlan, parse_axis, plan_sweep
from .cost import DEFAULT_PRICE, CostEstimate, UnitPrice, billed_megapixels, estimate_cost
from .errors import SweepError
from .ranges import format_values, parse_values
from .runner import DEFAULT_CONCURRENCY, SweepFolderMismatch, SweepProgress, SweepRunner

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PRICE",
    "Axis",
    "Cell",
    "CostEstimate",
    "CostNotConfirmed",
    "SweepError",
    "SweepFolderMismatch",
    "SweepPlan",
    "SweepProgress",
    "SweepRun",
    "SweepRunner",
    "UnitPrice",
    "billed_megapixels",
    "estimate_cost",
    "format_values",
    "parse_axis",
    "parse_values",
    "plan_sweep",
    "sweep",
]
