"""Parameter sweeps: range syntax, axes and cells, cost before spending, the runner, exports.

``from fluxwidget import sweep`` is the entry point (`fluxwidget.sweep.api.sweep`); the pure
parts (`plan_sweep`, `parse_values`, `estimate_cost`, the exports) work without a kernel or a
server.
"""

from .api import CostNotConfirmed, SweepRun, sweep
from .axes import (
    DEFAULT_MAX_CELLS,
    PROMPT_SR,
    Axis,
    AxisSpec,
    Cell,
    Mode,
    SeedMode,
    SweepPlan,
    field_kind,
    parse_axis,
    plan_sweep,
    sweepable_fields,
    to_axis,
)
from .cost import (
    CONFIRM_ABOVE_USD,
    DEFAULT_PRICE,
    DEFAULT_ROUNDING,
    CostEstimate,
    Rounding,
    UnitPrice,
    billed_megapixels,
    estimate_cost,
)
from .errors import SweepError
from .export import (
    DEFAULT_MAX_PIXELS,
    ExportCell,
    GridLayout,
    grid_image,
    grid_images,
    html_report,
    thumbnail_jpeg,
    write_exports,
)
from .ranges import SYNTAX, format_value, format_values, parse_values
from .runner import DEFAULT_CONCURRENCY, SweepFolderMismatch, SweepProgress, SweepRunner

__all__ = [
    "CONFIRM_ABOVE_USD",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_CELLS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PRICE",
    "DEFAULT_ROUNDING",
    "PROMPT_SR",
    "SYNTAX",
    "Axis",
    "AxisSpec",
    "Cell",
    "CostEstimate",
    "CostNotConfirmed",
    "ExportCell",
    "GridLayout",
    "Mode",
    "Rounding",
    "SeedMode",
    "SweepError",
    "SweepFolderMismatch",
    "SweepPlan",
    "SweepProgress",
    "SweepRun",
    "SweepRunner",
    "UnitPrice",
    "billed_megapixels",
    "estimate_cost",
    "field_kind",
    "format_value",
    "format_values",
    "grid_image",
    "grid_images",
    "html_report",
    "parse_axis",
    "parse_values",
    "plan_sweep",
    "sweep",
    "sweepable_fields",
    "thumbnail_jpeg",
    "to_axis",
    "write_exports",
]
