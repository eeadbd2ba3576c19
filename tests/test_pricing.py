"""fal's pricing call: the emulator serves it, the client reads it, and any failure gives None."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fluxwidget.client import FluxClient
from fluxwidget.client.config import DEFAULT_PLATFORM_URL, ClientConfig
from fluxwidget.client.pricing import UnitPrice, fetch_unit_price, unit_price_from_reply
from fluxwidget.client.retries import RetryPolicy
from fluxwidget.connect import emulator_client
from fluxwidget.emulator import Emulator
from fluxwidget.emulator.app import PRICE_PER_MEGAPIXEL
from fluxwidget.schema import FluxLoraInput
from fluxwidget.sweeps.cost import DEFAULT_PRICE, estimate_cost

FAST = RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.05)


class _Replies(BaseHTTPRequestHandler):
    """Answers every GET with the (status, body) the test put on the server."""

    def do_GET(self) -> None:
        status, body = self.server.reply  # type: ignore[attr-defined]
        self.server.seen.append((self.path, self.headers.get("Authorization")))  # type: ignore[attr-defined]
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def odd_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Replies)
    server.reply = (200, "{}")  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _client_on(server: ThreadingHTTPServer, key: str = "id:secret") -> FluxClient:
    url = f"http://127.0.0.1:{server.server_address[1]}"
    return FluxClient(api_key=key, base_url=url, retry=FAST, journal=False)


async def test_emulator_serves_the_documented_price(emu: Emulator) -> None:
    async with FluxClient(api_key=emu.api_key, base_url=emu.url, journal=False) as client:
        assert client.config.platform_url == f"{emu.url}/v1"
        price = await fetch_unit_price(client)
    source = "the emulator's price: nothing is billed"
    assert price == UnitPrice(0.035, "megapixel", source, emulated=True)
    assert price is not None
    assert not estimate_cost([FluxLoraInput(prompt="x")] * 100, price).needs_confirmation()
    assert DEFAULT_PRICE.usd_per_unit == PRICE_PER_MEGAPIXEL
    assert ("GET", "/v1/models/pricing", 200) in emu.calls


async def test_emulator_client_uses_the_emulator_for_prices() -> None:
    async with emulator_client(journal=False) as client:
        price = await fetch_unit_price(client, "fal-ai/flux-lora/stream")
    assert price is not None
    assert price.usd_per_unit == 0.035


async def test_refused_key_and_unknown_endpoint_give_none(emu: Emulator) -> None:
    async with FluxClient(api_key="emulator-x:wrong", base_url=emu.url, journal=False) as bad:
        assert await fetch_unit_price(bad) is None
    async with FluxClient(api_key=emu.api_key, base_url=emu.url, journal=False) as client:
        assert await fetch_unit_price(client, "fal-ai/other-model") is None
    assert ("GET", "/v1/models/pricing", 401) in emu.calls
    assert ("GET", "/v1/models/pricing", 404) in emu.calls


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, '{"detail": "Internal Server Error"}'),
        (200, "<html>not json</html>"),
        (200, '{"prices": [{"endpoint_id": "fal-ai/flux-lora", "unit_price": "free"}]}'),
        (200, '{"prices": [{"endpoint_id": "fal-ai/flux-lora", "unit_price": -1, "unit": "mp"}]}'),
        (200, '{"prices": [{"endpoint_id": "fal-ai/flux-lora", "unit_price": 1, "unit": "gpu"}]}'),
        (
            200,
            '{"prices": [{"endpoint_id": "fal-ai/flux-lora", "unit_price": 1, "unit": "image",'
            ' "currency": "EUR"}]}',
        ),
        (200, '{"prices": [{"endpoint_id": "fal-ai/other", "unit_price": 1, "unit": "image"}]}'),
        (200, "[1, 2, 3]"),
    ],
)
async def test_bad_replies_give_none_and_never_log_the_key(
    odd_server: ThreadingHTTPServer, status: int, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    odd_server.reply = (status, body)  # type: ignore[attr-defined]
    caplog.set_level(logging.DEBUG, logger="fluxwidget")
    async with _client_on(odd_server, key="sekrit-id:sekrit-value") as client:
        assert await fetch_unit_price(client) is None
    path, auth = odd_server.seen[0]  # type: ignore[attr-defined]
    assert path == "/v1/models/pricing?endpoint_id=fal-ai%2Fflux-lora"
    assert auth == "Key sekrit-id:sekrit-value"  # sent only to the configured host
    assert "sekrit" not in caplog.text


async def test_variants_of_the_reply_are_read(odd_server: ThreadingHTTPServer) -> None:
    odd_server.reply = (200, json.dumps({"data": [{"price": "0.05", "unit": "Images"}]}))  # type: ignore[attr-defined]
    async with _client_on(odd_server) as client:
        price = await fetch_unit_price(client)
    assert price == UnitPrice(0.05, "image", "fal's price")


async def test_unreachable_platform_gives_none() -> None:
    # bound but not listening: connections are refused, and no other process can take the port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with FluxClient(
            api_key="k", base_url=f"http://127.0.0.1:{port}", retry=FAST, journal=False
        ) as client:
            assert await fetch_unit_price(client) is None


def test_platform_url_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUXWIDGET_PLATFORM_URL", raising=False)
    assert ClientConfig.resolve().platform_url == DEFAULT_PLATFORM_URL
    proxy = ClientConfig.resolve(base_url="https://proxy.example/fal/")
    assert proxy.platform_url == "https://proxy.example/fal/v1"  # the key stays with the proxy
    explicit = ClientConfig.resolve(platform_url="http://127.0.0.1:9/v1/")
    assert explicit.platform_url == "http://127.0.0.1:9/v1"
    monkeypatch.setenv("FLUXWIDGET_PLATFORM_URL", "https://platform.example/v1")
    assert ClientConfig.resolve().platform_url == "https://platform.example/v1"
    with pytest.raises(ValueError, match="platform_url"):
        ClientConfig.resolve(platform_url="ftp://x")


def test_unit_price_from_reply_shapes() -> None:
    documented = {
        "prices": [
            {"endpoint_id": "fal-ai/flux-lora", "unit_price": 0.035, "unit": "megapixels"},
        ]
    }
    assert unit_price_from_reply(documented, "fal-ai/flux-lora") == UnitPrice(
        0.035, "megapixel", "fal's price"
    )
    single = {"endpoint_id": "fal-ai/flux-lora", "unit_price": 0.04, "unit": "megapixel"}
    assert unit_price_from_reply(single, "fal-ai/flux-lora") is not None
    assert unit_price_from_reply(None, "fal-ai/flux-lora") is None
