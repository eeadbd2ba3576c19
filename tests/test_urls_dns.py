"""The image URL policy applied to addresses: what a name resolves to, and where a download's
socket actually connected (DNS rebinding), over real sockets.

Names under ``.rebind.test`` answer what each test says, through a test-only wrapper of
`socket.getaddrinfo` (the one resolver asyncio and httpcore both use); every other name is
looked up for real. A forbidden address a test can really connect to is this machine's own
private (non-loopback) address; the tests that need one are skipped on a machine without.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image

from fluxwidget.client import FluxClient, RetryPolicy
from fluxwidget.client.urls import URLPolicy
from fluxwidget.emulator import Emulator
from fluxwidget.errors import TransportError, UnsafeURLError

KEY = "dns-key-id:dns-key-secret-0123456789"
FAST = RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.02)
_PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class Names:
    """Test-only DNS for ``*.rebind.test``: each lookup of a name takes the next of its answers
    (the last one repeats), an answer being one or more addresses separated by commas; other
    names go to the real resolver."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.answers: dict[str, list[str]] = {}
        self.lookups: list[str] = []

    def __call__(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not name.endswith(".rebind.test"):
            return self._real(host, port, family, type, proto, flags)
        self.lookups.append(name)
        answers = self.answers.get(name)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        number = int(port or 0)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, number, 0, 0))
            if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, number))
            for address in answer.split(",")
        ]


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> Names:
    for name in _PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    fake = Names(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


def _own_private_address() -> str | None:
    """A private, non-loopback IPv4 address of this machine, or None."""
    candidates: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))  # UDP: picks a source address, sends nothing
            candidates.append(probe.getsockname()[0])
        except OSError:
            pass
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        candidates += [str(info[4][0]) for info in infos]
    except OSError:
        pass
    for candidate in candidates:
        address = ipaddress.ip_address(candidate)
        if address.is_private and not address.is_loopback and not address.is_link_local:
            return candidate
    return None


OWN_PRIVATE = _own_private_address()
needs_private = pytest.mark.skipif(
    OWN_PRIVATE is None, reason="this machine has no private non-loopback address to connect to"
)


@dataclass
class Listener:
    """A real TCP server that records each connection and the bytes it received."""

    host: str
    port: int = 0
    received: list[bytes] = field(default_factory=list)
    reply: bytes = b""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        try:
            if self.reply:
                data = await reader.readuntil(b"\r\n\r\n")
                writer.write(self.reply)
                await writer.drain()
            else:
                data = await asyncio.wait_for(reader.read(65536), 5)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            self.received.append(data)
            writer.close()
            self.done.set()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    assert OWN_PRIVATE is not None
    recorder = Listener(OWN_PRIVATE)
    server = await asyncio.start_server(recorder.handle, OWN_PRIVATE, 0)
    recorder.port = server.sockets[0].getsockname()[1]
    async with server:
        yield recorder


@pytest.fixture
def socket_emu() -> Iterator[Emulator]:
    with Emulator(api_key=KEY, workers=2, seconds_per_step=0.001) as emu:
        yield emu


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        ("169.254.169.254", "169.254.169.254"),
        ("fe80::1", "fe80::1"),
        ("::ffff:169.254.169.254", "169.254.169.254"),
        ("fd00:ec2::254", "fd00:ec2::254"),
        ("0.0.0.0", "0.0.0.0"),
        ("10.1.2.3", "10.1.2.3"),
        ("127.0.0.1,169.254.169.254", "169.254.169.254"),  # one bad address among others
    ],
)
async def test_a_name_resolving_to_a_forbidden_address_is_refused_before_connecting(
    names: Names, answer: str, shown: str
) -> None:
    names.answers["images.rebind.test"] = [answer]
    async with FluxClient(KEY, base_url="https://queue.fal.run", journal=False) as client:
        with pytest.raises(UnsafeURLError, match=r"images\.rebind\.test resolves to") as info:
            await client.download(f"https://images.rebind.test/x.png?echo={KEY}")
    assert shown in str(info.value)
    assert not any(part in str(info.value) for part in (KEY, *KEY.split(":")))
    # Only the guard's own lookup ran: the connection (which looks the name up again) never did.
    assert names.lookups == ["images.rebind.test"]


async def test_a_name_that_does_not_resolve_is_a_transport_error(names: Names) -> None:
    async with FluxClient(
        KEY, base_url="https://queue.fal.run", journal=False, retry=FAST
    ) as client:
        with pytest.raises(TransportError, match="could not connect"):
            await client.download("https://nowhere.rebind.test/x.png")


async def test_the_emulator_and_a_real_loopback_name_still_work(socket_emu: Emulator) -> None:
    async with FluxClient(KEY, base_url=socket_emu.url, journal=False) as client:
        result = await client.generate("a tiger eye", num_inference_steps=2, image_size="square")
        url = result.images[0].url
        assert url.startswith("http://127.0.0.1:")
        by_address = await client.download(url)
        by_name = await client.download(url.replace("127.0.0.1", "localhost", 1))
    assert by_address[:2] == b"\xff\xd8"
    assert by_name == by_address


@needs_private
async def test_a_name_rebound_to_a_private_address_is_refused_where_it_connected(
    names: Names, listener: Listener, socket_emu: Emulator
) -> None:
    """A redirect from the (allowed) emulator to a name whose first answer is loopback and whose
    second — the one the connection uses — is a private address: refused on the connected
    address, before TLS and before any byte of the request."""
    names.answers["images.rebind.test"] = ["127.0.0.1", listener.host]
    socket_emu.inject("file", redirect=f"https://images.rebind.test:{listener.port}/x.png")
    async with FluxClient(KEY, base_url=socket_emu.url, journal=False) as client:
        result = await client.generate("x", num_inference_steps=1, image_size="square")
        with pytest.raises(UnsafeURLError, match="connected to") as info:
            await client.download(result.images[0])
    assert listener.host in str(info.value)
    await asyncio.wait_for(listener.done.wait(), 5)
    assert listener.received == [b""]  # one connection, closed without a byte sent
    assert names.lookups == ["images.rebind.test", "images.rebind.test"]


@needs_private
async def test_a_private_address_is_reached_when_it_is_the_base_host(
    names: Names, listener: Listener
) -> None:
    names.answers["cdn.rebind.test"] = [listener.host]
    listener.reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(_png())).encode() + b"\r\n\r\n" + _png()
    )
    base = f"http://cdn.rebind.test:{listener.port}"
    async with FluxClient(KEY, base_url=base, journal=False) as client:
        assert await client.download(f"{base}/x.png") == _png()
    assert listener.received[0].startswith(b"GET /x.png HTTP/1.1")


@needs_private
async def test_through_a_proxy_the_name_is_left_to_the_proxy(
    names: Names, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY set, the connection goes to the proxy (here on a private address, not
    judged) and the proxy resolves the name (the client never looks it up); the name-level
    check still applies."""
    listener.reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(_png())).encode() + b"\r\n\r\n" + _png()
    )
    monkeypatch.setenv("HTTP_PROXY", f"http://{listener.host}:{listener.port}")
    base = "http://cdn.rebind.test"  # plain http is allowed to the base host only
    async with FluxClient(KEY, base_url=base, journal=False) as client:
        assert await client.download(f"{base}/x.png") == _png()
        with pytest.raises(UnsafeURLError):
            await client.download("http://169.254.169.254/latest/meta-data")
    assert len(listener.received) == 1
    assert listener.received[0].startswith(b"GET http://cdn.rebind.test/x.png HTTP/1.1")
    assert names.lookups == []


def test_the_address_policy_matches_the_literal_policy() -> None:
    policy = URLPolicy("https://queue.fal.run")
    for address in ("169.254.169.254", "::ffff:a9fe:a9fe", "64:ff9b::a9fe:a9fe", "10.0.0.1"):
        with pytest.raises(UnsafeURLError):
            policy.check_address("https://cdn.example/x.png", address)
        with pytest.raises(UnsafeURLError):
            policy.check_url(
                f"https://[{address}]/x.png" if ":" in address else f"https://{address}/"
            )
    policy.check_address("https://cdn.example/x.png", "127.0.0.1")
    policy.check_address("https://cdn.example/x.png", "93.184.216.34")
    with pytest.raises(UnsafeURLError, match="plain http"):
        policy.check_address("http://localhost/x.png", "93.184.216.34")
    URLPolicy("https://queue.fal.run", allow_private=True).check_address(
        "https://cdn.example/x.png", "10.0.0.1"
    )
    URLPolicy("http://proxy.internal:8080").check_address("http://proxy.internal/x.png", "10.0.0.1")
    with pytest.raises(UnsafeURLError):
        URLPolicy("http://proxy.internal:8080").check_address(
            "http://proxy.internal/x.png", "169.254.169.254"
        )
