"""Range syntax: lists, ranges, steps, counts, negatives, quoting, errors, round-trips."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxwidget.schema import InputError
from fluxwidget.sweeps.ranges import MAX_VALUES, format_value, format_values, parse_values


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("2,3.5,5", float, [2.0, 3.5, 5.0]),
        ("1-5", int, [1, 2, 3, 4, 5]),
        ("1-5 (+2)", int, [1, 3, 5]),
        ("1-6 (+2)", int, [1, 3, 5]),
        ("0.4-1.2 [3]", float, [0.4, 0.8, 1.2]),
        ("0.1-0.3 (+0.1)", float, [0.1, 0.2, 0.3]),
        ("-1--3", int, [-1, -2, -3]),
        ("-2-2 (+0.5)", float, [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]),
        ("5-1", int, [5, 4, 3, 2, 1]),
        ("5-1 (-2)", int, [5, 3, 1]),  # a negative step agreeing with the bounds
        ("5-1 (+2)", int, [5, 3, 1]),
        ("3-3 (-1)", int, [3]),
        ("1-50 [4]", int, [1, 17, 34, 50]),
        ("7-9 [1]", int, [7]),
        ("1-3, 10, 20-30 (+5)", int, [1, 2, 3, 10, 20, 25, 30]),
        ("1e-5, 2", float, [1e-05, 2.0]),
        ("3", int, [3]),
        ("2.0", int, [2]),
        ("true, no, 1", bool, [True, False, True]),
        ('"a cat, sitting", a dog', str, ["a cat, sitting", "a dog"]),
        ("square_hd, 1024x768", str, ["square_hd", "1024x768"]),
        ("1-5", str, ["1-5"]),
    ],
)
def test_parse_values(text: str, kind: type, expected: list[Any]) -> None:
    assert parse_values(text, kind) == expected


@pytest.mark.parametrize(
    ("text", "kind", "why"),
    [
        ("1..5", float, "is not a number or a range"),
        ("1.5", int, "takes whole numbers"),
        ("1-2 (+0.5)", int, "takes whole numbers"),
        ("1-3 [5]", int, "fewer distinct whole numbers"),
        ("a,,b", str, "empty value"),
        ("", float, "empty value"),
        ("1-5 (0)", int, "step must not be 0"),
        ("1-5 [0]", int, "count must be"),
        ("1-10 (-1)", int, "write '10-1' to count down"),
        ("0.5-1.5 (-0.5)", float, "write '1.5-0.5' to count down"),
        (f"1-{MAX_VALUES + 1}", int, "more than"),
        ("nan", float, "is not a number"),
        ("maybe", bool, "not true or false"),
    ],
)
def test_bad_values_name_the_axis_and_show_the_syntax(text: str, kind: type, why: str) -> None:
    with pytest.raises(InputError) as info:
        parse_values(text, kind, field="guidance_scale")
    message = str(info.value)
    assert why in message
    assert "guidance_scale" in message
    assert "1-5 (+2)" in message  # the syntax is shown
    assert "[3]" in message
    assert info.value.problems[0].field == "guidance_scale"


def test_format_value_for_labels() -> None:
    assert format_value(3.0) == "3"
    assert format_value(0.35) == "0.35"
    assert format_value(True) == "true"
    assert format_value({"width": 1024, "height": 768}) == "1024x768"
    assert format_values(["a, b", 'say "hi"', "plain"]) == '"a, b", "say ""hi""", plain'


ints = st.lists(st.integers(min_value=-(10**12), max_value=10**12), min_size=1, max_size=20)
floats = st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20)
texts = st.lists(
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(
        lambda s: s == s.strip() and s != ""
    ),
    min_size=1,
    max_size=10,
)


@given(ints)
def test_ints_round_trip(values: list[int]) -> None:
    assert parse_values(format_values(values), int) == values


@given(floats)
def test_floats_round_trip(values: list[float]) -> None:
    assert parse_values(format_values(values), float) == values


@given(texts)
def test_texts_round_trip(values: list[str]) -> None:
    assert parse_values(format_values(values), str) == values


@given(st.lists(st.booleans(), min_size=1, max_size=5))
def test_bools_round_trip(values: list[bool]) -> None:
    assert parse_values(format_values(values), bool) == values
