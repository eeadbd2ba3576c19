"""The key never leaks: a server echoes it in every kind of reply, and every artifact is searched
— the exception's text, repr, traceback and every attribute, DEBUG logs of httpx and
fluxwidget, and the journal."""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path
from typing import Any

import httpx
import pytest

from fluxwidget.client import FluxClient, Limits, RetryPolicy
from fluxwidget.client.journal import Journal
from fluxwidget.client.redact import Redactor
from fluxwidget.emulator.app import build_app
from fluxwidget.emulator.faults import Fault
from fluxwidget.errors import FluxwidgetError

KEY_ID = "leaky-key-id-4f2a"
KEY_SECRET = "leaky-secret-9d8c7b6a5f4e3d2c1b0a"
KEY = f"{KEY_ID}:{KEY_SECRET}"
FAST = RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.02, max_retry_after=0.05)


def escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in text)


CASES: dict[str, dict[str, Any]] = {
    "401-json": {"route": "submit", "status": 401, "body": '{"detail": "bad key {key}"}'},
    "403-json": {"route": "result", "status": 403, "body": '{"detail": "locked: {key}"}'},
    "422-list": {
        "route": "result",
        "status": 422,
        "body": json.dumps(
            {"detail": [{"loc": ["body", "{key}"], "msg": "no {key}", "input": "{key}"}]}
        ),
    },
    "429": {"route": "result", "status": 429, "retry_after": 999, "body": '{"detail": "{key}"}'},
    "500-html": {
        "route": "result",
        "status": 500,
        "headers": {"x-fal-request-id": "r"},
        "body": "<html><body>trace: Authorization: Key {key}</body></html>",
        "content_type": "text/html",
    },
    "unicode-escaped-json": {
        "route": "result",
        "status": 400,
        "body": '{"detail": "' + escaped(KEY) + '"}',
    },
    "unicode-escaped-not-json": {
        "route": "result",
        "status": 502,
        "body": "oops " + escaped(KEY) + " {",
        "times": 5,
    },
    "split-across-display-cut": {
        "route": "result",
        "status": 400,
        "body": json.dumps({"detail": "x" * 280 + "{key}"}),
    },
    "split-across-body-cap": {
        "route": "result",
        "status": 400,
        "body": "y" * 250 + "{key}",
        "content_type": "text/plain",
        "_cap": 270,  # the body is cut 20 characters into the key
    },
    "secret-half-only": {
        "route": "result",
        "status": 401,
        "body": json.dumps({"detail": f"secret was {KEY_SECRET}, id was {KEY_ID}"}),
    },
    "status-unknown-is-the-key": {
        "route": "status",
        "body": '{"status": "{key}"}',
    },
    "status-detail-in-stream-then-poll": {
        "route": "status",
        "status": 503,
        "body": '{"detail": "{key}"}',
        "times": 5,
    },
}


def strings_in(value: Any, depth: int = 0) -> list[str]:
    """Every string reachable from an exception's attributes (a few levels deep)."""
    if depth > 6:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes):
        return [value.decode("utf-8", "replace")]
    if isinstance(value, dict):
        return [
            s for k, v in value.items() for s in strings_in(k, depth + 1) + strings_in(v, depth + 1)
        ]
    if isinstance(value, (list, tuple, set)):
        return [s for v in value for s in strings_in(v, depth + 1)]
    if isinstance(value, BaseException):
        found = [str(value), repr(value), *strings_in(value.args, depth + 1)]
        found += strings_in(vars(value), depth + 1)
        for linked in (value.__cause__, value.__context__):
            if linked is not None:
                found += strings_in(linked, depth + 1)
        return found
    if hasattr(value, "__dataclass_fields__"):
        return strings_in(vars(value), depth + 1)
    return [repr(value)]


def leaks(text: str) -> list[str]:
    return [part for part in (KEY, KEY_ID, KEY_SECRET) if part in text]


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
async def test_the_key_echoed_by_the_server_never_leaks(
    case: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fault = dict(CASES[case])
    cap = fault.pop("_cap", 1000)
    app = build_app(api_key=KEY, seconds_per_step=0.001)
    app.faults.add(Fault(**fault))
    journal = Journal(tmp_path / "journal.jsonl")
    client = FluxClient(
        KEY,
        base_url="http://emulator.test",
        transport=httpx.ASGITransport(app=app),
        retry=FAST,
        journal=journal,
        use_sse=False,
        poll_interval=0.005,
        limits=Limits(max_error_bytes=cap),
    )
    with pytest.raises(FluxwidgetError) as info:
        await client.generate("a tiger eye", num_inference_steps=2)
    await client.aclose()
    await app.scheduler.close()
    error = info.value
    artifacts = {
        "str": str(error),
        "repr": repr(error),
        "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        "attributes": "\n".join(strings_in(error)),
        "logs": "\n".join(r.getMessage() for r in caplog.records),
        "journal": journal.path.read_text() if journal.path.exists() else "",
    }
    found = {name: leaks(text) for name, text in artifacts.items() if leaks(text)}
    assert found == {}
    if fault.get("status") and fault["route"] != "status":
        assert "***" in str(error) or "***" in json.dumps(getattr(error, "detail", ""), default=str)


def test_redactor_handles_halves_escapes_and_cut_fragments() -> None:
    redactor = Redactor(KEY)
    assert redactor.text(f"a {KEY} b") == "a *** b"
    assert KEY_SECRET not in redactor.text(f"only {KEY_SECRET}")
    assert KEY_ID not in redactor.text(f"only {KEY_ID}")
    assert redactor.text(escaped(KEY)) == "***"
    assert redactor.text("tail " + KEY[:9], cut=True) == "tail ***"
    assert redactor.text("tail " + KEY_SECRET[:12], cut=True) == "tail ***"
    assert Redactor("ab:cd").text("ab:cd ab cd") == "*** ab cd"  # short halves are left alone
    assert Redactor(None).text(KEY) == KEY
