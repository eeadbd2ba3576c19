"""Range syntax for sweep axes, as in Automatic1111's X/Y/Z plot.

Comma-separated items; a numeric item may be a range (bounds inclusive, either may be negative
or a float, a descending range counts down)::

    2, 3.5, 5          a list
    1-5                1, 2, 3, 4, 5 (step 1)
    1-5 (+2)           1, 3, 5 (step 2; the direction comes from the bounds)
    5-1 (-2)           5, 3, 1 (a negative step only with bounds that count down:
                       ``1-5 (-2)`` is an error saying to write ``5-1``)
    0.4-1.2 [3]        0.4, 0.8, 1.2 (3 evenly spaced values)
    -1--3              -1, -2, -3
    1-3, 10, 20-30 (+5)  items mix

Text values (prompts, LoRA paths, sizes) are split on commas with `csv` rules, so a value
containing a comma is written in double quotes: ``"red, blue", green``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ..errors import SweepError
from ..files import is_image_name, is_safetensors_name
from ..schema import FieldProblem

__all__ = ["MAX_VALUES", "SYNTAX", "format_value", "format_values", "parse_values"]

MAX_VALUES = 10_000
"""Most values one axis may expand to."""

SYNTAX = (
    "write values as a list '2,3.5,5', a range '1-5', a range with a step '1-5 (+2)' or a "
    "count of evenly spaced values '0.4-1.2 [3]'; quote a text value that contains a comma"
)

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER = re.compile(rf"\s*({_NUM})\s*")
_RANGE = re.compile(
    rf"\s*(?P<start>{_NUM})\s*-\s*(?P<end>{_NUM})\s*"
    rf"(?:\(\s*(?P<step>{_NUM})\s*\)|\[\s*(?P<count>\d+)\s*\])?\s*"
)
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _error(field: str, text: str, message: str) -> SweepError:
    return SweepError(
        [FieldProblem(field, text, f"{message}; {SYNTAX}")], heading="invalid sweep axis"
    )


def _split(text: str) -> list[str]:
    """Comma-separated items, csv quoting allowed, each stripped (Automatic1111's rule)."""
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    return [item.strip() for row in rows for item in row]


def _decimal(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite():
        raise InvalidOperation(text)
    return value


def _expand(item: str, kind: type, field: str, text: str) -> list[Decimal]:
    """One numeric item: a number or a range, as exact decimals."""
    number = _NUMBER.fullmatch(item)
    if number:
        return [_decimal(number.group(1))]
    match = _RANGE.fullmatch(item)
    if match is None:
        raise _error(field, text, f"{item!r} is not a number or a range")
    start, end = _decimal(match["start"]), _decimal(match["end"])
    direction = 1 if end >= start else -1
    if match["count"] is not None:
        count = int(match["count"])
        if count < 1 or count > MAX_VALUES:
            raise _error(field, text, f"{item!r}: the count must be from 1 to {MAX_VALUES}")
        if count == 1:
            return [start]
        span = end - start
        return [start + span * i / (count - 1) for i in range(count)]
    step = _decimal(match["step"]) if match["step"] is not None else Decimal(1)
    if step == 0:
        raise _error(field, text, f"{item!r}: the step must not be 0")
    if step < 0 and end > start:  # a step counting down between bounds that count up
        down = f"{match['end'].strip()}-{match['start'].strip()}"
        raise _error(
            field,
            text,
            f"{item!r}: a negative step counts down, but {match['start']} is below "
            f"{match['end']}; write {down!r} to count down (or '(+{abs(step)})' to count up)",
        )
    step = abs(step)
    count = int((abs(end - start) / step).to_integral_value(rounding="ROUND_FLOOR")) + 1
    if count > MAX_VALUES:
        raise _error(field, text, f"{item!r} has {count} values, more than {MAX_VALUES}")
    return [start + direction * step * i for i in range(count)]


def _to_int(values: list[Decimal], item: str, field: str, text: str, counted: bool) -> list[int]:
    if counted:  # evenly spaced values rounded to whole numbers, which must stay distinct
        whole = [int(v.to_integral_value(rounding=ROUND_HALF_UP)) for v in values]
        if len(set(whole)) != len(whole):
            raise _error(field, text, f"{item!r} has fewer distinct whole numbers than asked")
        return whole
    if any(v != v.to_integral_value() for v in values):
        raise _error(field, text, f"{item!r}: {field} takes whole numbers")
    return [int(v) for v in values]


def _parse_bool(item: str, field: str, text: str) -> bool:
    word = item.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _error(field, text, f"{item!r} is not true or false")


def parse_values(text: str, kind: type, *, field: str = "values") -> list[Any]:
    """The values `text` describes, as `kind` (int, float, bool or str).

    Raises `SweepError` (an `InputError`) naming `field` and showing the syntax.
    """
    if not isinstance(text, str):
        raise _error(field, repr(text), "values must be given as text")
    try:
        items = _split(text)
    except csv.Error as exc:
        raise _error(field, text, f"cannot split {text!r} ({exc})") from None
    if not items or any(item == "" for item in items):
        raise _error(field, text, f"{text!r} has an empty value")
    values: list[Any] = []
    for item in items:
        if kind is str:
            values.append(item)
        elif kind is bool:
            values.append(_parse_bool(item, field, text))
        elif kind in (int, float):
            try:
                numbers = _expand(item, kind, field, text)
            except InvalidOperation:
                raise _error(field, text, f"{item!r} is not a finite number") from None
            if kind is int:
                counted = "[" in item
                values.extend(_to_int(numbers, item, field, text, counted))
            else:
                floats = [float(n) for n in numbers]
                if not all(math.isfinite(f) for f in floats):
                    raise _error(field, text, f"{item!r} is not a finite number")
                values.extend(floats)
        else:
            raise TypeError(f"kind must be int, float, bool or str, not {kind!r}")
        if len(values) > MAX_VALUES:
            raise _error(field, text, f"more than {MAX_VALUES} values")
    return values


def _format_float(value: float) -> str:
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _quote(text: str) -> str:
    if text != text.strip() or any(c in text for c in ',"\r\n') or text == "":
        return '"' + text.replace('"', '""') + '"'
    return text


def format_value(value: Any) -> str:
    """One value as it is written in range syntax and shown in labels."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, dict) and set(value) == {"width", "height"}:
        return f"{value['width']}x{value['height']}"
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return f"{value[0]}x{value[1]}"
    if isinstance(value, str):
        return file_label(value)
    return str(value)


def file_label(text: str) -> str:
    """A path or URL of an image or LoRA file as its file name (``photos/a.png`` → ``a.png``),
    so grid labels stay short; any other text as it is."""
    if any(ch.isspace() for ch in text) or "/" not in text.replace("\\", "/"):
        return text
    name = text.replace("\\", "/").split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    if name and (is_image_name(name) or is_safetensors_name(name)):
        return name
    return text


def format_values(values: Iterable[Any]) -> str:
    """Values as text that `parse_values` reads back (a plain comma-separated list)."""
    return ", ".join(
        _quote(value) if isinstance(value, str) else format_value(value) for value in values
    )
