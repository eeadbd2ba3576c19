"""Hypothesis over response parsing: whatever a server sends, the parsers return a value or raise
a typed fluxwidget error — never KeyError, TypeError, JSONDecodeError or ValidationError."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxwidget.client.redact import Redactor
from fluxwidget.client.responses import (
    error_from_response,
    parse_result,
    read_json,
    read_object,
)
from fluxwidget.client.sse import SSEReader
from fluxwidget.client.status import Completed, InProgress, Queued, parse_status
from fluxwidget.errors import FalError, ProtocolError, ResponseTooLargeError, TransportError
from fluxwidget.schema import FluxLoraOutput

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)

STATUS_KEYS = ["status", "request_id", "queue_position", "logs", "metrics", "error", "error_type"]
status_like = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", ""])
        | json_values,
        "request_id": json_values,
        "queue_position": st.integers() | st.text(max_size=5) | json_values,
        "logs": st.lists(
            st.fixed_dictionaries({}, optional={"message": json_values, "level": json_values})
            | json_values,
            max_size=3,
        )
        | json_values,
        "metrics": st.dictionaries(st.just("inference_time"), json_values) | json_values,
        "error": json_values,
    },
)

result_like = st.fixed_dictionaries(
    {},
    optional={
        "images": st.lists(
            st.fixed_dictionaries(
                {}, optional={"url": json_values, "width": json_values, "height": json_values}
            )
            | json_values,
            max_size=3,
        )
        | json_values,
        "seed": json_values,
        "timings": json_values,
        "has_nsfw_concepts": json_values,
    },
)


def _outcome(call: Callable[[], Any]) -> Any:
    """The call's value, or the ProtocolError it raised (any other exception propagates)."""
    try:
        return call()
    except ProtocolError as exc:
        return exc


@SETTINGS
@given(status_like | json_values)
def test_status_bodies_parse_or_raise_protocol_error(data: Any) -> None:
    outcome = _outcome(lambda: parse_status(data, "rid"))
    if isinstance(outcome, ProtocolError):
        assert outcome.call == "status"
    else:
        assert isinstance(outcome, (Queued, InProgress, Completed))
        if isinstance(outcome, Queued):
            assert outcome.position is None or outcome.position >= 0


@SETTINGS
@given(result_like | json_values)
def test_result_bodies_parse_or_raise_protocol_error(data: Any) -> None:
    outcome = _outcome(lambda: parse_result(data))
    if isinstance(outcome, ProtocolError):
        assert outcome.call == "result"
    else:
        assert isinstance(outcome, FluxLoraOutput)


@SETTINGS
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_raw_bodies_read_or_raise_protocol_error(body: bytes) -> None:
    response = httpx.Response(200, content=body)
    for outcome in (
        _outcome(lambda: read_object(response, "status")),
        _outcome(lambda: read_json(response, "result")),
    ):
        assert not isinstance(outcome, Exception) or isinstance(outcome, ProtocolError)


error_bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries({"detail": json_values}).map(lambda v: json.dumps(v).encode())
    | st.lists(
        st.fixed_dictionaries({}, optional={"loc": json_values, "msg": json_values}),
        max_size=3,
    ).map(lambda v: json.dumps({"detail": v}).encode())
)


@SETTINGS
@given(
    st.integers(min_value=400, max_value=599),
    error_bodies,
    st.dictionaries(
        st.sampled_from(["retry-after", "x-fal-request-timeout-type", "x-fal-request-id"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    ),
    st.booleans(),
)
def test_error_replies_always_become_fal_errors(
    code: int, body: bytes, headers: dict[str, str], download: bool
) -> None:
    response = httpx.Response(code, content=body, headers=headers)
    error = error_from_response(
        response, request_id="rid", download=download, redactor=Redactor("kid-123456:secret-7890")
    )
    assert isinstance(error, FalError)
    assert error.status_code == code
    assert "secret-7890" not in str(error)


def _events(body: bytes | list[bytes], cap: int) -> list[str | None]:
    async def chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async def read() -> list[str | None]:
        content = chunks(body) if isinstance(body, list) else body
        response = httpx.Response(200, content=content)

        def map_error(exc: httpx.HTTPError, call: str) -> FalError:
            return TransportError(f"{type(exc).__name__} in {call}")

        return [event async for event in SSEReader(response, cap, map_error).events()]

    return asyncio.run(read())


@SETTINGS
@given(
    st.lists(
        st.sampled_from([b"data: ", b"data:", b": keep-alive", b"\n", b"\r\n", b"\r", b"event: x"])
        | st.binary(max_size=30)
        | status_like.map(lambda v: json.dumps(v).encode()),
        max_size=12,
    ).map(b"".join)
)
def test_sse_streams_yield_events_that_parse_or_raise_protocol_error(body: bytes) -> None:
    try:
        events = _events(body, cap=200)
    except ResponseTooLargeError:
        return
    for event in events:
        if event is None:
            continue
        try:
            data = json.loads(event)
        except ValueError:  # not JSON: the handle reports a ProtocolError and polls instead
            continue
        outcome = _outcome(functools.partial(parse_status, data, "rid", "status stream"))
        if isinstance(outcome, ProtocolError):
            assert outcome.call == "status stream"


def test_sse_reader_splits_events_and_keepalives() -> None:
    body = b': keep-alive\n\ndata: {"a":\ndata: 1}\n\r\ndata: x\r\n\r\n'
    assert _events(body, cap=100) == [None, '{"a":\n1}', "x"]


def test_sse_reader_joins_a_crlf_split_across_chunks() -> None:
    assert _events([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"], cap=100) == ["a\nb"]
    assert _events([b"data: a\r", b"\r"], cap=100) == ["a"]
