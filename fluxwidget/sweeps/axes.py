"""Sweep axes and their cells: what each cell of an X/Y/Z sweep sends, checked before sending.

An axis is a field and its values. Fields are those of `FluxLoraInput` (``guidance_scale``,
``num_inference_steps``, ``seed``, ``image_size``, ...), ``loras[i].scale`` and ``loras[i].path``
(of a LoRA already in the base input), and ``prompt_sr`` — Prompt search/replace: the first value
is searched for in the prompt and replaced by each value in turn (the first cell keeps the prompt).

`plan_sweep` expands a base input and up to three axes into cells — grid (cartesian; X fastest,
then Y, then Z, one grid per Z value) or zip (paired) — gives every cell a seed, and validates
every cell before anything is sent.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import itertools
import json
import os
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from ..client.uploads import check_local_file, check_mask, local_files
from ..errors import SweepError
from ..schema import (
    FieldProblem,
    FluxLoraInput,
    ImageSize,
    InpaintingInput,
    InputError,
    model_for_fields,
    validate_input,
)
from .ranges import format_value, format_values, parse_values

__all__ = [
    "DEFAULT_MAX_CELLS",
    "PROMPT_SR",
    "SEED_LIMIT",
    "Axis",
    "AxisSpec",
    "Cell",
    "Mode",
    "SeedMode",
    "SweepPlan",
    "field_kind",
    "parse_axis",
    "plan_sweep",
    "sweepable_fields",
    "to_axis",
]

Mode = Literal["grid", "zip"]
SeedMode = Literal["fixed", "per_cell", "per_row"]

PROMPT_SR = "prompt_sr"
DEFAULT_MAX_CELLS = 10_000
MAX_LISTED_PROBLEMS = 20
SEED_LIMIT = 2**32
"""Drawn seeds are in ``range(SEED_LIMIT)``."""
PLAN_FORMAT = "fluxwidget-sweep"
PLAN_VERSION = 1

_LORA_FIELD = re.compile(r"loras\[(\d+)\]\.(scale|path)")
_SIZE = re.compile(r"(\d+)\s*[x×]\s*(\d+)", re.IGNORECASE)
_AXIS_NAMES = ("x", "y", "z")


FILE_FIELDS = frozenset({"image_url", "mask_url"})
"""Fields whose values are files (or URLs): grid labels show their file name only."""


def sweepable_fields() -> list[str]:
    """Every field an axis can sweep, as written in an axis (the union of the flux-lora
    family's fields: an ``image_url`` or ``strength`` axis makes the cells image-to-image)."""
    fields = [name for name in InpaintingInput.model_fields if name != "loras"]
    return [*fields, "loras[i].scale", "loras[i].path", PROMPT_SR]


def _problem(field: str, value: Any, message: str) -> SweepError:
    return SweepError([FieldProblem(field, value, message)], heading="invalid sweep")


def _check_field(name: str) -> None:
    if name == PROMPT_SR or _LORA_FIELD.fullmatch(name):
        return
    if name in InpaintingInput.model_fields and name != "loras":
        return
    allowed = sweepable_fields()
    close = difflib.get_close_matches(name, [*allowed, "loras[0].scale"], n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise _problem("axis", name, f"{name!r} cannot be swept{hint}; use one of {', '.join(allowed)}")


def field_kind(name: str) -> type:
    """The type of one axis value: int, float, bool or str (sizes and paths are text)."""
    lora = _LORA_FIELD.fullmatch(name)
    if lora:
        return float if lora.group(2) == "scale" else str
    info = InpaintingInput.model_fields.get(name)
    if info is None:
        return str
    for kind in (bool, int, float):
        if info.annotation is kind or kind in get_args(info.annotation):
            return kind
    return str


def _size_text(value: Any) -> str | None:
    """An image size as axis text: a preset name or ``WxH``; None when it is not one."""
    if isinstance(value, ImageSize):
        return f"{value.width}x{value.height}"
    if isinstance(value, Mapping) and set(value) == {"width", "height"}:
        return f"{value['width']}x{value['height']}"
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return f"{value[0]}x{value[1]}"
    if isinstance(value, str):
        size = _SIZE.fullmatch(value.strip())
        return f"{size.group(1)}x{size.group(2)}" if size else value.strip()
    return None


def _coerce(name: str, label: str, value: Any) -> Any:
    """One Python value as the axis kind, or SweepError."""
    kind = field_kind(name)
    if name == "image_size":
        text = _size_text(value)
        if text is not None:
            return text
    elif (kind is bool and isinstance(value, bool)) or (
        kind is int and isinstance(value, int) and not isinstance(value, bool)
    ):
        return value
    elif kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif kind is str and isinstance(value, str):
        return value
    wanted = {int: "a whole number", float: "a number", bool: "True or False"}.get(kind, "text")
    raise _problem(label, value, f"{value!r} is not allowed; each value must be {wanted}")


@dataclass(frozen=True)
class Axis:
    """One sweep axis: a field, its values (a list, or range text), and its label.

    The label defaults to the field and names the axis in grids, cells and errors.
    """

    field: str
    values: tuple[Any, ...]
    label: str = ""

    def __post_init__(self) -> None:
        name = self.field.strip()
        _check_field(name)
        label = self.label.strip() or name
        raw: Any = self.values
        if isinstance(raw, str):
            values = parse_values(raw, field_kind(name), field=label)
            if name == "image_size":
                values = [_coerce(name, label, v) for v in values]
        elif isinstance(raw, (Mapping, ImageSize)) or not isinstance(raw, Iterable):
            values = [_coerce(name, label, raw)]
        else:
            values = [_coerce(name, label, v) for v in raw]
        if not values:
            raise _problem(label, raw, "has no values")
        object.__setattr__(self, "field", name)
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "values", tuple(values))

    @classmethod
    def of(cls, field: str, values: str | Iterable[Any], label: str = "") -> Axis:
        """An axis from range text or any iterable of values (the typed spelling)."""
        return cls(field, cast(Any, values), label)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def text(self) -> str:
        """The axis as ``field=values`` text that `parse_axis` reads back."""
        return f"{self.field}={format_values(self.values)}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"field": self.field, "values": list(self.values), "label": self.label}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Axis:
        """The axis `to_json` wrote."""
        return cls(str(data["field"]), tuple(data["values"]), str(data.get("label", "")))


AxisSpec = Axis | str | tuple[str, Any] | tuple[str, Any, str]
"""An axis as `Axis`, ``"field=values"`` text, ``(field, values)`` or ``(field, values, label)``."""


def parse_axis(text: str, label: str = "") -> Axis:
    """An axis from ``field=values`` text, e.g. ``"loras[0].scale=0.4-1.2 [3]"``."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip():
        raise _problem(
            "axis",
            text,
            f"{text!r} is not an axis; write field=values, e.g. guidance_scale=2,3.5,5",
        )
    return Axis(name.strip(), cast(Any, values), label)  # the text is parsed in Axis


def to_axis(spec: AxisSpec | None) -> Axis | None:
    """An `Axis` from any accepted spelling (None stays None)."""
    if spec is None or isinstance(spec, Axis):
        return spec
    if isinstance(spec, str):
        return parse_axis(spec)
    if isinstance(spec, tuple) and len(spec) in (2, 3):
        label = str(spec[2]) if len(spec) == 3 else ""
        return Axis(str(spec[0]), cast(Any, spec[1]), label)
    raise _problem("axis", spec, "an axis is Axis, 'field=values' or (field, values)")


@dataclass(frozen=True)
class Cell:
    """One cell of a sweep: where it sits, what its axes set, and the full input it sends."""

    id: str
    index: int
    coords: tuple[int, int, int]
    """(x, y, z) indices; 0 for an absent axis (and y, z in zip mode)."""
    axis_values: dict[str, Any]
    """Axis label → this cell's value."""
    input: FluxLoraInput

    @property
    def title(self) -> str:
        """The cell's axis values as ``label=value, ...``."""
        return ", ".join(f"{k}={format_value(v)}" for k, v in self.axis_values.items())

    @property
    def seed(self) -> int | None:
        """The seed this cell sends."""
        return self.input.seed

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "index": self.index,
            "coords": list(self.coords),
            "axis_values": dict(self.axis_values),
            "input": self.input.to_payload(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cell:
        """The cell `to_json` wrote."""
        x, y, z = (int(c) for c in data["coords"])
        return cls(
            id=str(data["id"]),
            index=int(data["index"]),
            coords=(x, y, z),
            axis_values=dict(data["axis_values"]),
            input=model_for_fields(data["input"]).model_validate(data["input"]),
        )


@dataclass(frozen=True)
class SweepPlan:
    """A sweep's definition and every cell it sends, validated. `to_json` is stored in runs."""

    base: FluxLoraInput
    x: Axis | None
    y: Axis | None
    z: Axis | None
    mode: Mode
    seed_mode: SeedMode
    seed: int | None
    """The seed the plan started from (fixed: every cell's; per_*: the first); None with a
    seed axis or when per-cell/per-row seeds were drawn at random."""
    cells: tuple[Cell, ...] = field(repr=False)

    @property
    def axes(self) -> tuple[Axis | None, Axis | None, Axis | None]:
        """(x, y, z)."""
        return (self.x, self.y, self.z)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(nx, ny, nz): columns, rows and grids (zip mode: one row of cells)."""
        if self.mode == "zip":
            return (len(self.cells), 1, 1)
        nx, ny, nz = (len(a) if a is not None else 1 for a in self.axes)
        return (nx, ny, nz)

    @property
    def inputs(self) -> list[FluxLoraInput]:
        """Every cell's input, in cell order (e.g. for `estimate_cost`)."""
        return [cell.input for cell in self.cells]

    def cell_at(self, x: int, y: int = 0, z: int = 0) -> Cell:
        """The cell at column x, row y of grid z."""
        nx, ny, _ = self.shape
        return self.cells[x + nx * (y + ny * z)]

    def legend(self) -> dict[str, str]:
        """The parameters no axis varies, as text (for a grid's legend)."""
        swept = {a.field for a in self.axes if a is not None}
        if PROMPT_SR in swept:
            swept.add("prompt")
        base = self.base
        out: dict[str, str] = {}
        defaults = FluxLoraInput(prompt="-")
        for name in type(base).model_fields:
            if name in swept or name in {"loras", "sync_mode"}:
                continue
            value = getattr(base, name)
            if name == "seed":
                if self.seed_mode == "fixed" and self.cells:
                    out[name] = format_value(self.cells[0].input.seed)
                continue
            if name == "image_size" and (
                value is None
                or ({"image_url", "mask_url"} & swept and name not in base.model_fields_set)
            ):
                out[name] = "the input image's"
                continue
            quiet = {"num_images", "enable_safety_checker", "output_format", "acceleration"}
            if name in quiet and value == getattr(defaults, name):
                continue  # shown only when not the default
            out[name] = format_value(value.model_dump() if isinstance(value, ImageSize) else value)
        for i, lora in enumerate(base.loras):
            scale = f"loras[{i}].scale" in swept
            path = f"loras[{i}].path" in swept
            if not (scale and path):
                shown = [lora.path if not path else "(swept)", ""]
                shown[1] = "(swept)" if scale else format_value(lora.scale)
                out[f"loras[{i}]"] = f"{shown[0]} @ {shown[1]}"
        return out

    def to_json(self) -> dict[str, Any]:
        """The whole plan as JSON-ready data (what a run folder stores)."""
        return {
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "base": self.base.to_payload(),
            "axes": {
                name: axis.to_json() if axis is not None else None
                for name, axis in zip(_AXIS_NAMES, self.axes, strict=True)
            },
            "mode": self.mode,
            "seed_mode": self.seed_mode,
            "seed": self.seed,
            "cells": [cell.to_json() for cell in self.cells],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepPlan:
        """The plan `to_json` wrote; ValueError when it is not one."""
        if data.get("format") != PLAN_FORMAT or data.get("version") != PLAN_VERSION:
            raise ValueError(
                f"not a {PLAN_FORMAT} v{PLAN_VERSION} definition "
                f"(format={data.get('format')!r}, version={data.get('version')!r})"
            )
        axes = data.get("axes") or {}
        x, y, z = (Axis.from_json(axes[n]) if axes.get(n) else None for n in _AXIS_NAMES)
        mode, seed_mode = data["mode"], data["seed_mode"]
        if mode not in get_args(Mode) or seed_mode not in get_args(SeedMode):
            raise ValueError(f"unknown mode {mode!r} or seed mode {seed_mode!r}")
        seed = data.get("seed")
        return cls(
            base=model_for_fields(data["base"]).model_validate(data["base"]),
            x=x,
            y=y,
            z=z,
            mode=mode,
            seed_mode=seed_mode,
            seed=None if seed is None else int(seed),
            cells=tuple(Cell.from_json(c) for c in data["cells"]),
        )

    def fingerprint(self) -> str:
        """A stable hash of the definition, seeds included (a changed sweep hashes otherwise)."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()


# --- planning ----------------------------------------------------------------------------------


def _apply(payload: dict[str, Any], axis: Axis, value: Any) -> None:
    """Set one axis value into a cell's payload."""
    lora = _LORA_FIELD.fullmatch(axis.field)
    if lora:
        payload["loras"][int(lora.group(1))][lora.group(2)] = value
    elif axis.field == PROMPT_SR:
        payload["prompt"] = str(payload["prompt"]).replace(str(axis.values[0]), str(value))
    elif axis.field == "image_size":
        size = _SIZE.fullmatch(str(value))
        payload["image_size"] = (
            {"width": int(size.group(1)), "height": int(size.group(2))} if size else value
        )
    else:
        payload[axis.field] = value


def _check_axes(base: FluxLoraInput, axes: list[Axis], mode: str) -> None:
    """Problems of the axes themselves, against the base input, before any cell is built."""
    problems: list[FieldProblem] = []
    seen: dict[str, str] = {}
    for axis in axes:
        if axis.field != PROMPT_SR and axis.field in seen:
            problems.append(
                FieldProblem(axis.label, axis.field, f"is swept on two axes ({seen[axis.field]})")
            )
        seen.setdefault(axis.field, axis.label)
        lora = _LORA_FIELD.fullmatch(axis.field)
        if lora and int(lora.group(1)) >= len(base.loras):
            have = len(base.loras)
            has = f"has {have} LoRA{'s' if have != 1 else ''}" if have else "has no LoRAs"
            problems.append(
                FieldProblem(
                    axis.field,
                    axis.values,
                    f"the base input {has}; add loras[{lora.group(1)}] to it "
                    "(e.g. --lora PATH:1.0) before sweeping its "
                    f"{lora.group(2)}",
                )
            )
        if axis.field == PROMPT_SR and str(axis.values[0]) not in base.prompt:
            problems.append(
                FieldProblem(
                    axis.label,
                    axis.values[0],
                    f"{axis.values[0]!r} is not in the prompt {base.prompt[:80]!r}; Prompt S/R "
                    "searches the prompt for its first value and replaces it by each value",
                )
            )
    labels = [a.label for a in axes]
    for label in sorted({lb for lb in labels if labels.count(lb) > 1}):
        problems.append(FieldProblem(label, label, "two axes have this label; give distinct ones"))
    if mode == "zip" and len({len(a) for a in axes}) > 1:
        lengths = ", ".join(f"{a.label} has {len(a)}" for a in axes)
        problems.append(
            FieldProblem("mode", mode, f"zip pairs values, so every axis needs as many: {lengths}")
        )
    if problems:
        raise SweepError(problems, heading="invalid sweep")


def _seeds(
    count: int,
    coords: list[tuple[int, int, int]],
    seed_mode: str,
    start: int | None,
    rng: random.Random,
) -> tuple[list[int], int | None]:
    """Every cell's seed, and the seed the plan records."""
    if seed_mode == "fixed":
        chosen = start if start is not None else rng.randrange(SEED_LIMIT)
        return [chosen] * count, chosen
    rows = sorted({c[1] for c in coords})
    keys = list(range(count)) if seed_mode == "per_cell" else rows
    if start is not None:
        by_key = {k: start + i for i, k in enumerate(keys)}
    else:
        by_key = dict(zip(keys, rng.sample(range(SEED_LIMIT), len(keys)), strict=True))
    if seed_mode == "per_cell":
        return [by_key[i] for i in range(count)], start
    return [by_key[c[1]] for c in coords], start


def _culprit(axes: list[Axis], problem_field: str) -> Axis | None:
    for axis in axes:
        target = "prompt" if axis.field == PROMPT_SR else axis.field
        if problem_field == target or problem_field.startswith(target + "."):
            return axis
    return None


def _cell_problems(
    invalid: list[tuple[Cell, InputError]], axes: list[Axis], total: int
) -> SweepError:
    """One error for every invalid cell, grouped by cause, each naming its axis values."""
    groups: dict[tuple[str, str], list[str]] = {}
    for cell, error in invalid:
        for problem in error.problems:
            axis = _culprit(axes, problem.field)
            if axis is not None:
                head = f"{axis.label}={format_value(cell.axis_values[axis.label])}"
                same = problem.field == ("prompt" if axis.field == PROMPT_SR else axis.field)
                text = problem.message if same else f"{problem.field}: {problem.message}"
            else:
                head = cell.title or "base"
                text = f"{problem.field}: {problem.message}"
            groups.setdefault((head, text), []).append(cell.id)
    problems = []
    for (head, text), ids in groups.items():
        where = f"cell {ids[0]}" if len(ids) == 1 else f"{len(ids)} cells: {', '.join(ids[:5])}"
        where += ", …" if len(ids) > 5 else ""
        problems.append(FieldProblem(head, ids, f"{text} ({where})"))
    shown = problems[:MAX_LISTED_PROBLEMS]
    return SweepError(
        shown,
        heading=f"{len(invalid)} of {total} sweep cells are invalid; nothing was sent",
        hidden=len(problems) - len(shown),
    )


@functools.lru_cache(maxsize=256)
def _checked_file(path: str, kind: str, _stamp: tuple[int, int]) -> InputError | None:
    """The problem of one local file (None: fit to upload), cached while it is unchanged."""
    try:
        check_local_file(path, field="file", kind=kind)  # type: ignore[arg-type]
    except InputError as exc:
        return exc
    return None


def _file_problems(cells: list[Cell]) -> list[tuple[Cell, InputError]]:
    """Cells naming a local file that could not be uploaded (missing, unreadable, not an image
    or not safetensors) or a local mask of another size than its image: found before anything
    is sent, each distinct file checked once."""
    invalid = []
    for cell in cells:
        problems = []
        for field_name, path, kind in local_files(cell.input):
            try:
                stat = os.stat(os.path.expanduser(path))
                stamp = (stat.st_size, stat.st_mtime_ns)
            except OSError:
                stamp = (-1, -1)
            error = _checked_file(path, kind, stamp)
            if error is not None:
                problems += [FieldProblem(field_name, path, p.message) for p in error.problems]
        if not problems:
            try:
                check_mask(cell.input)
            except InputError as exc:
                problems += exc.problems
        if problems:
            invalid.append((cell, InputError(problems)))
    return invalid


def plan_sweep(
    base: FluxLoraInput | dict[str, Any],
    x: AxisSpec | None = None,
    y: AxisSpec | None = None,
    z: AxisSpec | None = None,
    *,
    mode: Mode = "grid",
    seed_mode: SeedMode = "fixed",
    seed: int | None = None,
    rng: random.Random | None = None,
    max_cells: int = DEFAULT_MAX_CELLS,
) -> SweepPlan:
    """Expand a base input and up to three axes into validated cells.

    Grid mode is cartesian (X fastest, then Y, then Z); zip mode pairs the i-th values of every
    axis (all axes need as many values). Seeds: ``fixed`` gives every cell one seed (`seed`, else
    the base's, else one drawn from `rng`); ``per_cell`` a seed per cell and ``per_row`` one per
    Y value (consecutive from `seed`/the base's when given, else drawn); a ``seed`` axis wins.

    Raises `InputError` (a `SweepError` for the sweep's own problems) listing every invalid
    cell by its axis values and field; nothing is sent by this function.
    """
    if mode not in get_args(Mode):
        raise _problem("mode", mode, "must be 'grid' or 'zip'")
    if seed_mode not in get_args(SeedMode):
        raise _problem("seed_mode", seed_mode, "must be 'fixed', 'per_cell' or 'per_row'")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise _problem("seed", seed, "must be a whole number ≥ 0")
    named = [to_axis(spec) for spec in (x, y, z)]
    axes = [a for a in named if a is not None]
    if isinstance(base, Mapping):  # a mask over swept images: the base takes the first image
        missing = {a.field: a.values[0] for a in axes if a.field in FILE_FIELDS}
        base = {**missing, **base} if "mask_url" in {**missing, **base} else base
    base_input = validate_input(base)
    _check_axes(base_input, axes, mode)

    if mode == "zip":
        n = len(axes[0]) if axes else 1
        combos = [(i, 0, 0) for i in range(n)]
        picks = [[(a, a.values[i]) for a in axes] for i in range(n)]
    else:
        sizes = [len(a) if a is not None else 1 for a in named]
        total = sizes[0] * sizes[1] * sizes[2]
        if total > max_cells:
            raise _problem("cells", total, f"{total} cells is more than the cap of {max_cells}")
        combos = [(cx, cy, cz) for cz, cy, cx in itertools.product(*map(range, sizes[::-1]))]
        picks = [
            [(a, a.values[i]) for a, i in zip(named, combo, strict=True) if a is not None]
            for combo in combos
        ]
    if len(combos) > max_cells:
        raise _problem("cells", len(combos), f"{len(combos)} cells is more than the cap")

    start = seed if seed is not None else base_input.seed
    has_seed_axis = any(a.field == "seed" for a in axes)
    seeds, plan_seed = _seeds(len(combos), combos, seed_mode, start, rng or random.Random())
    if has_seed_axis:
        plan_seed = None

    payload = base_input.to_payload()
    if "image_size" not in base_input.model_fields_set and any(
        a.field in ("image_url", "mask_url") for a in axes
    ):
        payload.pop("image_size", None)  # image-to-image cells: the input image's size
    width = max(4, len(str(len(combos) - 1)))
    cells: list[Cell] = []
    invalid: list[tuple[Cell, InputError]] = []
    for index, (combo, pick) in enumerate(zip(combos, picks, strict=True)):
        data = copy.deepcopy(payload)
        data["seed"] = seeds[index]
        for axis, value in pick:
            _apply(data, axis, value)
        values = {axis.label: value for axis, value in pick}
        cell_id = f"c{index:0{width}d}"
        try:
            cell_input = validate_input(data)
        except InputError as exc:
            invalid.append((Cell(cell_id, index, combo, values, base_input), exc))
            continue
        cells.append(Cell(cell_id, index, combo, values, cell_input))
    if not invalid:
        invalid = _file_problems(cells)
    if invalid:
        raise _cell_problems(invalid, axes, len(combos))
    return SweepPlan(
        base=base_input,
        x=named[0],
        y=named[1],
        z=named[2],
        mode=mode,
        seed_mode=seed_mode,
        seed=plan_seed,
        cells=tuple(cells),
    )
