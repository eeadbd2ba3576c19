"""Parameter sweeps: range syntax, axes and cells, cost before spending, the runner, exports.

Pure: no IPython, no widgets, no CLI. ``from fluxwidget import sweep`` is the notebook's entry
point (`fluxwidget.ui.sweep`); everything here works without a kernel, and the parts that send
nothing (`plan_sweep`, `parse_values`, `estimate_cost`, the exports) without a server.
"""

from ..errors import CostNotConfirmed, SweepError, SweepFolderMismatch
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
from .export import (
    DEFAULT_MAX_PIXELS,
    ExportCell,
    GridLayout,
    ReportSection,
    grid_image,
    grid_images,
    html_report,
    thumbnail_jpeg,
    write_exports,
)
from .ranges import SYNTAX, format_value, format_values, parse_values
from .ranking import (
    MIN_VOTES,
    RankedImage,
    WinRate,
    bradley_terry,
    next_pair,
    rank_images,
    wilson_interval,
    win_rates,
)
from .results import RunImage, RunResults, load_run
from .run import SweepRun, prepare_sweep, sweep_payload
from .runner import DEFAULT_CONCURRENCY, StormPolicy, SweepProgress, SweepRunner

__all__ = [
    "CONFIRM_ABOVE_USD",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_CELLS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PRICE",
    "DEFAULT_ROUNDING",
    "MIN_VOTES",
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
    "RankedImage",
    "ReportSection",
    "Rounding",
    "RunImage",
    "RunResults",
    "SeedMode",
    "StormPolicy",
    "SweepError",
    "SweepFolderMismatch",
    "SweepPlan",
    "SweepProgress",
    "SweepRun",
    "SweepRunner",
    "UnitPrice",
    "WinRate",
    "billed_megapixels",
    "bradley_terry",
    "estimate_cost",
    "field_kind",
    "format_value",
    "format_values",
    "grid_image",
    "grid_images",
    "html_report",
    "load_run",
    "next_pair",
    "parse_axis",
    "parse_values",
    "plan_sweep",
    "prepare_sweep",
    "rank_images",
    "sweep_payload",
    "sweepable_fields",
    "thumbnail_jpeg",
    "to_axis",
    "wilson_interval",
    "win_rates",
    "write_exports",
]
