"""The fault matrix: one job (submit → wait → result → download) per row, under one fault.

Each row states its outcome — ``None`` (retried or worked around, and succeeded) or the typed
error the job ends with — and how many submits the server saw (one, unless the server refused
the submit outright). Rows run in-process over ``httpx.ASGITransport`` of the emulator app,
except those that need a real socket (drops, stalls, drips, timeouts, endless streams).
docs/reliability.md lists the same rows; a test below keeps the two in step.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fluxwidget.client import FluxClient, Limits, RetryPolicy
from fluxwidget.emulator import Emulator
from fluxwidget.emulator.app import build_app
from fluxwidget.emulator.faults import Fault
from fluxwidget.errors import (
    AuthenticationError,
    DownloadTooSlowError,
    FluxwidgetError,
    ForbiddenError,
    ImageGoneError,
    PaymentRequiredError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ResultExpiredError,
    ServerError,
    TransportError,
    UnsafeURLError,
    ValidationFailedError,
)

KEY = "matrix-key-id:matrix-key-secret-0123456789"
FAST = RetryPolicy(max_attempts=4, initial_wait=0.01, max_wait=0.05, max_retry_after=2.0)
DOCS = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


def result_with(url: str) -> str:
    return json.dumps({"images": [{"url": url, "width": 8, "height": 8}], "seed": 1})


@dataclass(frozen=True)
class Row:
    id: str
    faults: list[dict[str, Any]]
    expect: type[FluxwidgetError] | None
    """None: the job succeeds (retried or worked around); else the typed error it ends with."""
    submits: int = 1
    socket: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    """Names the (socket) row's lookups answer with this address (a test-only resolver)."""


POLL = {"use_sse": False, "poll_interval": 0.005}

ROWS = [
    Row("no-fault", [], None),
    # --- submit: retried only while the server certainly did not accept it
    Row("submit-429-retried", [{"route": "submit", "status": 429, "retry_after": 0.01}], None),
    Row("submit-503-retried", [{"route": "submit", "status": 503}], None),
    Row("submit-401", [{"route": "submit", "status": 401}], AuthenticationError, submits=0),
    Row(
        "submit-403-account-locked",
        [{"route": "submit", "status": 403, "body": '{"detail": "User is locked"}'}],
        ForbiddenError,
        submits=0,
    ),
    Row(
        "submit-402-payment-required",
        [{"route": "submit", "status": 402, "body": '{"detail": "Exhausted balance"}'}],
        PaymentRequiredError,
        submits=0,
    ),
    Row(
        "submit-422-odd-detail",
        [{"route": "submit", "status": 422, "body": '{"detail": [1, {"loc": "x"}, "s"]}'}],
        ValidationFailedError,
        submits=0,
    ),
    Row(
        "submit-429-retry-after-too-long",
        [{"route": "submit", "status": 429, "retry_after": 3600}],
        RateLimitError,
        submits=0,
    ),
    Row(
        "submit-accepted-reply-dropped",
        [{"route": "submit", "after_accept": True, "drop": True}],
        TransportError,
        socket=True,
    ),
    Row(
        "submit-accepted-read-timeout",
        [{"route": "submit", "after_accept": True, "stall": 2.0}],
        TransportError,
        socket=True,
        options={"read_timeout": 0.3},
    ),
    Row(
        "submit-truncated-json-header-id",
        [{"route": "submit", "after_accept": True, "truncate": 9}],
        None,
    ),
    Row(
        "submit-json-list-header-id",
        [{"route": "submit", "after_accept": True, "body": "[]"}],
        None,
    ),
    Row(
        "submit-unsafe-request-id",
        [{"route": "submit", "after_accept": True, "body": '{"request_id": "../../x"}'}],
        None,
    ),
    Row(
        "submit-unreadable-no-header",
        [
            {
                "route": "submit",
                "after_accept": True,
                "body": "{",
                "headers": {"x-fal-request-id": ""},
            }
        ],
        ProtocolError,
    ),
    # --- status (polling): idempotent, so retried; malformed replies are typed
    Row("status-500-retried", [{"route": "status", "status": 500, "times": 2}], None, options=POLL),
    Row("status-503-retried", [{"route": "status", "status": 503, "times": 2}], None, options=POLL),
    Row(
        "status-429-waits-visibly",
        [{"route": "status", "status": 429, "retry_after": 0.05, "times": 2}],
        None,
        options=POLL,
    ),
    Row(
        "status-dropped-retried",
        [{"route": "status", "drop": True}],
        None,
        socket=True,
        options=POLL,
    ),
    Row("status-empty-object", [{"route": "status", "body": "{}"}], ProtocolError, options=POLL),
    Row("status-json-list", [{"route": "status", "body": "[1]"}], ProtocolError, options=POLL),
    Row("status-not-json", [{"route": "status", "body": "<html>"}], ProtocolError, options=POLL),
    Row("status-truncated", [{"route": "status", "truncate": 15}], ProtocolError, options=POLL),
    Row(
        "status-unknown-status",
        [{"route": "status", "body": '{"status": "EXPLODED"}'}],
        ProtocolError,
        options=POLL,
    ),
    Row(
        "status-queue-position-text",
        [{"route": "status", "body": '{"status": "IN_QUEUE", "queue_position": "soon"}'}],
        ProtocolError,
        options=POLL,
    ),
    Row(
        "status-logs-not-objects",
        [{"route": "status", "body": '{"status": "IN_PROGRESS", "logs": [1, 2]}'}],
        ProtocolError,
        options=POLL,
    ),
    Row(
        "status-too-large",
        [{"route": "status", "pad": 20_000}],
        ResponseTooLargeError,
        options=POLL,
        limits={"max_json_bytes": 10_000},
    ),
    Row(
        "status-drip-past-call-deadline",
        [{"route": "status", "drip": 0.05, "times": 10}],
        TransportError,
        socket=True,
        options=POLL,
        limits={"call_timeout": 0.3},
    ),
    # --- the status stream: any trouble falls back to polling
    Row("stream-500-polls", [{"route": "stream", "status": 500}], None),
    Row("stream-event-not-object", [{"route": "stream", "body": "data: [1]\n\n"}], None),
    Row("stream-event-not-json", [{"route": "stream", "body": "data: {oops\n\n"}], None),
    Row(
        "stream-event-too-large",
        [{"route": "stream", "body": "data: " + "x" * 5000 + "\n\n"}],
        None,
        limits={"max_event_bytes": 1000},
    ),
    Row("stream-dropped-polls", [{"route": "stream", "drop": True}], None, socket=True),
    Row(
        "stream-silent-dropped",
        [{"route": "stream", "stall": 30.0}],
        None,
        socket=True,
        limits={"stream_idle_timeout": 0.3},
    ),
    Row(
        "stream-keepalive-only-checked",
        [{"route": "stream", "keepalive_only": True}],
        None,
        socket=True,
        limits={"status_check_interval": 0.2},
    ),
    # --- result
    Row(
        "result-drip-retried",
        [{"route": "result", "drip": 0.05}],
        None,
        socket=True,
        limits={"call_timeout": 0.3},
    ),
    Row("result-502-retried", [{"route": "result", "status": 502, "times": 2}], None),
    Row("result-dropped-retried", [{"route": "result", "drop": True}], None, socket=True),
    Row(
        "result-500-model-error",
        [{"route": "result", "status": 500, "headers": {"x-fal-request-id": "r"}}],
        ServerError,
    ),
    Row(
        "result-504-user-timeout",
        [{"route": "result", "status": 504, "headers": {"X-Fal-Request-Timeout-Type": "user"}}],
        RequestTimeoutError,
    ),
    Row("result-410-expired", [{"route": "result", "status": 410}], ResultExpiredError),
    Row(
        "result-429-retry-after-too-long",
        [{"route": "result", "status": 429, "retry_after": 3600}],
        RateLimitError,
    ),
    Row(
        "result-422-detail-object",
        [{"route": "result", "status": 422, "body": '{"detail": {"weird": 1}}'}],
        ValidationFailedError,
    ),
    Row(
        "result-401-html",
        [
            {
                "route": "result",
                "status": 401,
                "body": "<html>no</html>",
                "content_type": "text/html",
            }
        ],
        AuthenticationError,
    ),
    Row("result-truncated", [{"route": "result", "truncate": 30}], ProtocolError),
    Row(
        "result-images-wrong-type", [{"route": "result", "body": '{"images": "x"}'}], ProtocolError
    ),
    Row(
        "result-too-large",
        [{"route": "result", "pad": 50_000}],
        ResponseTooLargeError,
        limits={"max_json_bytes": 20_000},
    ),
    # --- image downloads
    Row("file-404-gone", [{"route": "file", "status": 404}], ImageGoneError),
    Row("file-dropped-retried", [{"route": "file", "drop": True}], None, socket=True),
    Row("file-redirect-followed", [{"route": "file", "redirect": "{path}", "times": 2}], None),
    Row(
        "file-redirect-loop",
        [{"route": "file", "redirect": "{path}", "times": 20}],
        ProtocolError,
    ),
    Row(
        "file-redirect-to-metadata",
        [{"route": "file", "redirect": "http://169.254.169.254/latest/meta-data"}],
        UnsafeURLError,
    ),
    Row(
        "file-redirect-to-name-resolving-to-metadata",
        [{"route": "file", "redirect": "https://images.rebind.test/latest/meta-data"}],
        UnsafeURLError,
        socket=True,
        names={"images.rebind.test": "169.254.169.254"},
    ),
    Row(
        "result-url-metadata-host",
        [{"route": "result", "body": result_with("http://metadata.google.internal/x.png")}],
        UnsafeURLError,
    ),
    Row(
        "result-url-mapped-link-local",
        [{"route": "result", "body": result_with("https://[::ffff:169.254.169.254]/x.png")}],
        UnsafeURLError,
    ),
    Row(
        "result-url-private-range",
        [{"route": "result", "body": result_with("https://10.1.2.3/x.png")}],
        UnsafeURLError,
    ),
    Row(
        "file-too-many-bytes",
        [{"route": "file", "pad": 300_000}],
        ResponseTooLargeError,
        limits={"max_image_bytes": 200_000},
    ),
    Row("file-too-many-pixels", [], ResponseTooLargeError, limits={"max_image_pixels": 1000}),
    Row(
        "file-not-an-image",
        [{"route": "file", "body": "<html>", "content_type": "text/html"}],
        ProtocolError,
    ),
    Row(
        "file-drip-too-slow",
        [{"route": "file", "drip": 0.01}],
        DownloadTooSlowError,
        socket=True,
        limits={"min_download_rate": 10_000, "rate_window": 0.2},
    ),
    Row(
        "file-stall-past-deadline",
        [{"route": "file", "stall": 5.0}],
        DownloadTooSlowError,
        socket=True,
        limits={"download_timeout": 0.5},
    ),
]


@pytest.fixture(scope="module")
def socket_emu() -> Iterator[Emulator]:
    with Emulator(api_key=KEY, workers=4, seconds_per_step=0.001, keepalive_interval=0.05) as emu:
        yield emu


async def run_job(client: FluxClient) -> list[bytes]:
    """What a user's code does: generate one image and download it."""
    result = await client.generate("a tiger eye", num_inference_steps=2, image_size="square")
    return [await client.download(image) for image in result.images]


def answer_names(names: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `socket.getaddrinfo` answer each of `names` with its address (others: real)."""
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any) -> Any:
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], int(port or 0)))]
        return real(host, port, *args)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
async def test_fault_matrix(
    row: Row, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    options: dict[str, Any] = {"retry": FAST, "journal": False, **row.options}
    limits = Limits(**row.limits)
    if row.names:
        answer_names(row.names, monkeypatch)
    if row.socket:
        emu: Emulator = request.getfixturevalue("socket_emu")
        emu.clear_faults()
        for fault in row.faults:
            emu.inject(**fault)
        before = emu.submit_count
        client = FluxClient(KEY, base_url=emu.url, limits=limits, **options)
    else:
        app = build_app(api_key=KEY, seconds_per_step=0.001, keepalive_interval=0.05)
        for fault in row.faults:
            app.faults.add(Fault(**fault))
        before = 0
        transport = httpx.ASGITransport(app=app)
        client = FluxClient(
            KEY, base_url="http://emulator.test", transport=transport, limits=limits, **options
        )
    try:
        if row.expect is None:
            images = await run_job(client)
            assert images
            assert all(data[:2] == b"\xff\xd8" for data in images)
        else:
            with pytest.raises(row.expect) as info:
                await run_job(client)
            assert type(info.value) is row.expect or issubclass(type(info.value), row.expect)
            assert KEY not in str(info.value)
            if row.id == "submit-unreadable-no-header":
                assert info.value.maybe_accepted
    finally:
        await client.aclose()
        if row.socket:
            emu.clear_faults()
        else:
            await app.scheduler.close()
    submits = (emu.submit_count if row.socket else app.submit_count) - before
    assert submits == row.submits


def test_the_matrix_is_large_and_documented() -> None:
    assert len(ROWS) >= 30
    assert len({row.id for row in ROWS}) == len(ROWS)
    documented = DOCS.read_text(encoding="utf-8")
    missing = [row.id for row in ROWS if f"`{row.id}`" not in documented]
    assert missing == [], "rows missing from docs/reliability.md"
