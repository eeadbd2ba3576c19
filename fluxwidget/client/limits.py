"""How much a server can make the client hold, and how long it can make it wait."""

from __future__ import annotations

from dataclasses import dataclass

from ..schema import MAX_SIDE

__all__ = ["Limits"]

_MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Caps and deadlines, each refused with a typed error (`ResponseTooLargeError`,
    `DownloadTooSlowError`, `UnsafeURLError`). Sizes are bytes, times seconds."""

    max_json_bytes: int = 64 * _MiB
    """A JSON reply (a sync-mode result carries its images inline, hence the room)."""
    max_event_bytes: int = 4 * _MiB
    """One Server-Sent Event of the status stream."""
    max_error_bytes: int = 64 * 1024
    """An error reply's body is read up to this much and the rest dropped."""
    max_image_bytes: int = 256 * _MiB
    """One downloaded image."""
    max_image_pixels: int = MAX_SIDE * MAX_SIDE
    """width × height of one downloaded image, read from its header (the schema's maximum)."""
    call_timeout: float = 120.0
    """Overall deadline of one attempt of a queue call (submit, status, result, cancel), however
    slowly its reply trickles in; an attempt past it counts as a read timeout."""
    max_redirects: int = 5
    """Redirects followed by an image download, each hop checked by the URL policy."""
    download_timeout: float = 300.0
    """Overall deadline of one image download, redirects included."""
    min_download_rate: float = 16 * 1024
    """Bytes per second a download must keep up, measured over `rate_window` seconds."""
    rate_window: float = 10.0
    stream_idle_timeout: float = 30.0
    """A status stream with no byte (event or keep-alive) for this long is dropped for polling."""
    status_check_interval: float = 10.0
    """While a stream brings no status event, a status call checks the job this often."""
    keepalive_expiry: float = 4.0
    """An idle pooled connection older than this is not reused. It must stay below the server's
    own idle timeout (5 s for uvicorn and Node servers): a request sent on a connection the
    server is closing that very moment fails with no reply, and for a submit that means "maybe
    accepted", never retried. httpx's default (5 s) races exactly such servers."""
    allow_private_hosts: bool = False
    """Let image URLs point at (or their names resolve to) private addresses (10/8, 172.16/12,
    192.168/16, fc00::/7). Link-local and cloud-metadata addresses stay refused."""
