"""Uploads of local files to fal's storage (CDN v3), as fal's own clients do, cached by content.

The protocol (see fal-platform.md, "Storage upload"):

1. ``POST {storage_url}/storage/auth/token?storage_type=fal-cdn-v3`` with body ``{}`` and the
   client's key → ``{token, token_type, base_url, expires_at}``. Every later call carries
   ``Authorization: {token_type} {token}`` — never the key.
2. A file up to `UploadOptions.multipart_threshold`: ``POST {base_url}/files/upload``, the raw
   bytes, ``Content-Type`` and ``X-Fal-File-Name`` → ``{access_url}``.
3. A larger file: ``POST {base_url}/files/upload/multipart`` → ``{access_url, uploadId}``; each
   part ``PUT {access_url}/multipart/{uploadId}/{n}`` (n from 1; a few at once, each read from
   disk in slices as it is sent, `FileRange`, and retried on its own) → its ``ETag``; then
   ``POST {access_url}/multipart/{uploadId}/complete`` with ``{"parts": [{partNumber, etag}]}``.

Every upload asks for a lifetime (``X-Fal-Object-Lifecycle-Preference``). The file is checked
before any request (it exists and is readable; LoRA weights look like safetensors; an image
decodes): an `InputError` names the field. Replies are capped and a malformed one is a
`ProtocolError`; the key and the upload token are masked in every error.

`UploadCache` maps a file's SHA-256 (and the storage host) to its URL in a small JSON file, so
the same bytes are uploaded once across clients and processes, until shortly before the
lifetime asked for runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from PIL import Image

from ..errors import FalError, FieldProblem, InputError, ProtocolError, UploadsUnavailableError
from ..files import (
    content_type_for,
    is_image_name,
    is_safetensors_name,
    safetensors_header_length,
    safetensors_problem,
)
from ..schema import FluxLoraInput, lora_path_kind
from .redact import Redactor
from .responses import error_from_response, read_object
from .transport import Transport
from .urls import is_downgrade

__all__ = [
    "IMAGE_FIELDS",
    "CachedUpload",
    "FileKind",
    "ProgressCallback",
    "UploadCache",
    "UploadOptions",
    "Uploader",
    "check_local_file",
    "check_mask",
    "default_cache_path",
    "local_files",
    "local_image_files",
    "local_lora_files",
    "upload_local_files",
]

log = logging.getLogger("fluxwidget.client")

MiB = 1024 * 1024
DAY = 86400
E = TypeVar("E", bound=BaseException)

ProgressCallback = Callable[[int, int], None]
"""Called on the loop with (bytes sent so far, total bytes) as an upload goes."""
FileKind = Literal["lora", "image", "any"]
"""What a file must look like: LoRA weights (safetensors), an image (Pillow decodes it), or
anything (checked by its suffix: ``.safetensors`` and image suffixes are still checked)."""

_TOKEN_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}\Z")
_TOKEN = re.compile(r"[\x21-\x7e]{1,8192}\Z")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_URL = 4096
_NO_STORAGE = frozenset({404, 405, 501})
"""Replies to the token call of a host that has no storage at all (a proxy of the queue only)."""
_MIN_UPLOAD_RATE = 16 * 1024
"""Bytes per second an upload is given time for (on top of `Limits.call_timeout`)."""


@dataclass(frozen=True)
class UploadOptions:
    """How files are uploaded. Sizes are bytes, times seconds."""

    lifetime: int = 7 * DAY
    """How long fal should keep an upload (``expiration_duration_seconds``)."""
    multipart_threshold: int = 90 * MiB
    """Files larger than this go up in parts (fal-js: 90 MB; fal-client: 100 MB)."""
    part_size: int = 10 * MiB
    """The size of each part of a multipart upload (the last may be smaller)."""
    part_concurrency: int = 4
    """Parts in flight at once (each holds one part in memory)."""
    cache_margin: float = DAY
    """A cached upload is not reused this close to the end of its lifetime."""
    token_margin: float = 60.0
    """An upload token is renewed this long before it expires."""

    def __post_init__(self) -> None:
        for name in ("lifetime", "multipart_threshold", "part_size", "part_concurrency"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"UploadOptions.{name}: {value!r} must be a whole number ≥ 1")
        for name in ("cache_margin", "token_margin"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"UploadOptions.{name} must be ≥ 0")


# --- the cache ----------------------------------------------------------------------------------


def default_cache_path() -> Path | None:
    """``FLUXWIDGET_UPLOAD_CACHE`` (``off`` turns the cache off), else
    ``$XDG_CACHE_HOME/fluxwidget/uploads.json``, else ``~/.cache/fluxwidget/uploads.json``."""
    env = os.environ.get("FLUXWIDGET_UPLOAD_CACHE", "").strip()
    if env.lower() in {"off", "0", "false", "no", "none"}:
        return None
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "fluxwidget" / "uploads.json"


@dataclass(frozen=True)
class CachedUpload:
    """Where a file's bytes were uploaded, until when (epoch seconds) and how many there were."""

    url: str
    expires_at: float
    size: int


_CACHE_LOCKS: dict[str, threading.Lock] = {}
_CACHE_LOCKS_GUARD = threading.Lock()
_MAX_ENTRIES = 10_000


def _lock_for(path: Path) -> threading.Lock:
    with _CACHE_LOCKS_GUARD:
        return _CACHE_LOCKS.setdefault(str(path), threading.Lock())


class UploadCache:
    """SHA-256 of a file's bytes (per storage host) → `CachedUpload`, in a small JSON file.

    Reads are tolerant (a damaged or foreign file counts as empty); a write re-reads the file,
    merges, drops expired entries and replaces the file atomically (a temporary file, then
    ``os.replace``), so processes sharing it lose at worst an entry, never the file. The calls
    block: run them in a thread from async code.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path).expanduser()
        self._clock = clock

    def __repr__(self) -> str:
        return f"UploadCache({str(self.path)!r})"

    @staticmethod
    def key(storage: str, digest: str) -> str:
        """The entry's key: the storage host's URL and the file's SHA-256."""
        return f"{storage.rstrip('/')}#{digest}"

    def get(self, storage: str, digest: str, size: int, *, margin: float = 0.0) -> str | None:
        """The URL of these bytes on this storage, unless absent, of another size, or within
        `margin` seconds of expiring."""
        entry = self._read().get(self.key(storage, digest))
        if entry is None or entry.size != size:
            return None
        if entry.expires_at - margin <= self._clock():
            return None
        return entry.url

    def put(self, storage: str, digest: str, entry: CachedUpload) -> None:
        """Remember an upload (expired entries are dropped on the way)."""
        with _lock_for(self.path):
            entries = self._read()
            entries[self.key(storage, digest)] = entry
            now = self._clock()
            kept = {k: e for k, e in entries.items() if e.expires_at > now}
            if len(kept) > _MAX_ENTRIES:  # the oldest-expiring go first
                ordered = sorted(kept.items(), key=lambda item: item[1].expires_at)
                kept = dict(ordered[-_MAX_ENTRIES:])
            self._write(kept)

    def _read(self) -> dict[str, CachedUpload]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("upload cache %s unreadable (%s); starting afresh", self.path, exc)
            return {}
        items = raw.get("entries") if isinstance(raw, dict) else None
        if not isinstance(items, dict):
            return {}
        entries: dict[str, CachedUpload] = {}
        for key, value in items.items():
            if not isinstance(value, dict):
                continue
            url, expires, size = value.get("url"), value.get("expires_at"), value.get("size")
            if (
                isinstance(url, str)
                and url.startswith(("http://", "https://"))
                and isinstance(expires, (int, float))
                and isinstance(size, int)
            ):
                entries[str(key)] = CachedUpload(url, float(expires), size)
        return entries

    def _write(self, entries: dict[str, CachedUpload]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "version": 1,
            "entries": {
                key: {"url": e.url, "expires_at": e.expires_at, "size": e.size}
                for key, e in entries.items()
            },
        }
        fd, temp = tempfile.mkstemp(prefix=".uploads-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(body, out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


# --- checking a local file ------------------------------------------------------------------


def _problem(field: str, value: str, message: str) -> InputError:
    return InputError([FieldProblem(field, value, message)])


def check_local_file(path: str | Path, *, field: str = "path", kind: FileKind = "any") -> int:
    """The size of a local file fit to upload as `kind`, or `InputError` naming `field`: it
    must exist, be a readable regular file and not be empty; LoRA weights must look like
    safetensors (its 8-byte header length and JSON header), an image must decode. Blocking."""
    shown = str(path)
    file = Path(path).expanduser()
    try:
        stat = file.stat()
    except FileNotFoundError:
        raise _problem(field, shown, "no such file") from None
    except OSError as exc:
        raise _problem(field, shown, f"cannot be read ({exc.strerror or exc})") from None
    if not file.is_file():
        raise _problem(field, shown, "is not a file")
    size = stat.st_size
    if size == 0:
        raise _problem(field, shown, "is empty")
    try:
        with file.open("rb") as handle:
            if kind == "lora" or (kind == "any" and is_safetensors_name(file)):
                first8 = handle.read(8)
                try:
                    length = safetensors_header_length(first8, size)
                except ValueError as exc:
                    raise _problem(field, shown, str(exc)) from None
                problem = safetensors_problem(first8 + handle.read(length), size)
                if problem is not None:
                    raise _problem(field, shown, problem)
            elif kind == "image" or (kind == "any" and is_image_name(file)):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                        with Image.open(handle) as image:
                            image.verify()
                except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                    raise _problem(field, shown, "is not an image Pillow can read") from None
    except OSError as exc:
        raise _problem(field, shown, f"cannot be read ({exc.strerror or exc})") from None
    return size


def _digest(path: str | Path) -> tuple[Path, str, int, int]:
    """The file's path (``~`` expanded), SHA-256 (hex), size and modification time (ns),
    read in 1 MiB chunks."""
    file = Path(path).expanduser()
    sha = hashlib.sha256()
    with file.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        while chunk := handle.read(MiB):
            sha.update(chunk)
    return file, sha.hexdigest(), stat.st_size, stat.st_mtime_ns


_SLICE = 1024 * 1024


class FileRange:
    """`length` bytes of a file from `offset`, read from disk in 1 MiB slices as they are sent (a
    `transport.SizedBody`): an upload holds a slice in memory, not a part or the whole file.
    Read again from the start for each retry; a file that no longer has the bytes is an
    `InputError` naming `field`."""

    def __init__(self, path: Path, offset: int, length: int, *, field: str = "path") -> None:
        self.path, self.offset, self.length, self.field = path, offset, length, field

    def __len__(self) -> int:
        return self.length

    async def __aiter__(self) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self.path.open, "rb")
        try:
            await asyncio.to_thread(handle.seek, self.offset)
            left = self.length
            while left:
                chunk = await asyncio.to_thread(handle.read, min(_SLICE, left))
                if not chunk:
                    message = "changed size while it was uploaded"
                    raise _problem(self.field, str(self.path), message)
                left -= len(chunk)
                yield chunk
        finally:
            handle.close()


def _file_name(path: Path) -> str:
    """The name sent as ``X-Fal-File-Name``: header-safe characters only."""
    name = _UNSAFE_NAME.sub("_", path.name).strip("._") or "file"
    return name[-200:]


# --- the protocol -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    header: str
    base_url: str
    expires_at: float
    secret: str


def _parse_time(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _checked_url(value: Any, call: str, what: str, *, over: str) -> str:
    """An http(s) URL from a reply (no https → http downgrade from `over`), else ProtocolError."""
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError(call, f"the reply has no {what!r} string")
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if len(url) > _MAX_URL or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProtocolError(call, f"{what!r} is not an http(s) URL")
    if any(ch.isspace() for ch in url):
        raise ProtocolError(call, f"{what!r} contains white space")
    if is_downgrade(url, over):
        raise ProtocolError(call, f"{what!r} leaves https for http")
    return url


class Uploader:
    """Uploads local files through a `Transport` (see the module's docstring)."""

    def __init__(
        self,
        http: Transport,
        *,
        storage_url: str,
        auth_scheme: str,
        redactor: Redactor,
        options: UploadOptions | None = None,
        cache: UploadCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.storage_url = storage_url.rstrip("/")
        self.auth_scheme = auth_scheme
        self.options = options or UploadOptions()
        self.cache = cache
        self._redactor = redactor
        self._clock = clock
        self._token: _Token | None = None
        self._inflight: dict[tuple[int, tuple[str, int, int]], asyncio.Task[str]] = {}
        """Uploads under way by loop and file (path, size, mtime): concurrent jobs naming one
        file (a sweep's cells) share one hash and one upload."""

    def __repr__(self) -> str:
        return f"Uploader(storage_url={self.storage_url!r}, cache={self.cache!r})"

    async def upload(
        self,
        path: str | Path,
        *,
        field: str = "path",
        kind: FileKind = "any",
        on_progress: ProgressCallback | None = None,
    ) -> str:
        """The URL of a local file on fal's storage: uploaded now, found in the cache, or
        shared with an upload of the same file already under way."""
        await asyncio.to_thread(check_local_file, path, field=field, kind=kind)
        loop = asyncio.get_running_loop()
        slot = (id(loop), await asyncio.to_thread(_identity, path))
        task = self._inflight.get(slot)
        if task is None:
            task = loop.create_task(self._upload(path, on_progress))
            self._inflight[slot] = task
            task.add_done_callback(lambda done: self._settled(slot, done))
            return await asyncio.shield(task)
        url = await asyncio.shield(task)
        _report(on_progress, slot[1][1], slot[1][1])
        return url

    def _settled(self, slot: tuple[int, tuple[str, int, int]], task: asyncio.Task[str]) -> None:
        self._inflight.pop(slot, None)
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" report when every waiter left

    async def _upload(self, path: str | Path, on_progress: ProgressCallback | None) -> str:
        file, digest, size, mtime = await asyncio.to_thread(_digest, path)
        margin = self.options.cache_margin
        if self.cache is not None:
            cached = await asyncio.to_thread(
                self.cache.get, self.storage_url, digest, size, margin=margin
            )
            if cached is not None:
                log.info("upload of %s: cached at %s", file.name, cached)
                _report(on_progress, size, size)
                return cached
        token: _Token | None = None
        try:
            token = await self._get_token()
            _report(on_progress, 0, size)
            if size > self.options.multipart_threshold:
                url = await self._multipart(file, size, token, on_progress)
            else:
                url = await self._single(file, size, token)
                _report(on_progress, size, size)
        except FalError as exc:
            raise self._scrub(exc, token, file) from None
        unchanged = (await asyncio.to_thread(_digest_stat, file)) == (size, mtime)
        if self.cache is not None and unchanged:
            entry = CachedUpload(url, self._clock() + self.options.lifetime, size)
            await asyncio.to_thread(self.cache.put, self.storage_url, digest, entry)
        return url

    # --- the calls ----------------------------------------------------------------------------

    async def _get_token(self) -> _Token:
        token = self._token
        if token is not None and token.expires_at - self.options.token_margin > self._clock():
            return token
        call = "storage token"
        response = await self.http.request(
            call,
            "POST",
            f"{self.storage_url}/storage/auth/token",
            params={"storage_type": "fal-cdn-v3"},
            json={},
            any_5xx=True,
        )
        if response.is_error:
            if response.status_code in _NO_STORAGE or (
                response.status_code in (401, 403) and self.auth_scheme == "Bearer"
            ):
                host = urlsplit(self.storage_url).netloc
                raise UploadsUnavailableError(
                    f"uploads are not available through {host} (HTTP {response.status_code} "
                    "to the storage token call): a local file cannot be sent, and nothing was "
                    "submitted or paid. Give a URL instead of the local file, or point "
                    "storage_url= (FLUXWIDGET_STORAGE_URL) at fal's REST host with a fal key.",
                    status_code=response.status_code,
                )
            raise self._error(response, call)
        body = read_object(response, call)
        secret, token_type = body.get("token"), body.get("token_type")
        if not isinstance(secret, str) or not _TOKEN.match(secret):
            raise ProtocolError(call, "the reply has no usable 'token'")
        if not isinstance(token_type, str) or not _TOKEN_TYPE.match(token_type):
            raise ProtocolError(call, "the reply has no usable 'token_type'")
        base_url = _checked_url(body.get("base_url"), call, "base_url", over=self.storage_url)
        expires_at = _parse_time(body.get("expires_at"))
        if expires_at is None:
            raise ProtocolError(call, "'expires_at' is not a date and time")
        token = _Token(f"{token_type} {secret}", base_url, expires_at, secret)
        self._token = token
        return token

    def _headers(self, token: _Token, content_type: str, name: str) -> dict[str, str]:
        lifecycle = {"expiration_duration_seconds": self.options.lifetime}
        return {
            "Authorization": token.header,
            "Content-Type": content_type,
            "X-Fal-File-Name": name,
            "X-Fal-Object-Lifecycle-Preference": json.dumps(lifecycle),
        }

    def _deadline(self, size: int) -> float:
        return self.http.limits.call_timeout + size / _MIN_UPLOAD_RATE

    async def _single(self, file: Path, size: int, token: _Token) -> str:
        call = "upload"
        response = await self.http.request(
            call,
            "POST",
            f"{token.base_url}/files/upload",
            content=FileRange(file, 0, size),
            headers=self._headers(token, content_type_for(file), _file_name(file)),
            deadline=self._deadline(size),
            auth=False,
            any_5xx=True,
        )
        if response.is_error:
            raise self._error(response, call)
        body = read_object(response, call)
        return _checked_url(body.get("access_url"), call, "access_url", over=token.base_url)

    async def _multipart(
        self, file: Path, size: int, token: _Token, on_progress: ProgressCallback | None
    ) -> str:
        call = "multipart upload"
        content_type = content_type_for(file)
        response = await self.http.request(
            call,
            "POST",
            f"{token.base_url}/files/upload/multipart",
            headers=self._headers(token, content_type, _file_name(file)),
            auth=False,
            any_5xx=True,
        )
        if response.is_error:
            raise self._error(response, call)
        body = read_object(response, call)
        access_url = _checked_url(body.get("access_url"), call, "access_url", over=token.base_url)
        upload_id = body.get("uploadId")
        if not isinstance(upload_id, str) or not 0 < len(upload_id) <= 1024:
            raise ProtocolError(call, "the reply has no 'uploadId' string")
        root = f"{access_url}/multipart/{quote(upload_id, safe='')}"

        part_size = self.options.part_size
        count = math.ceil(size / part_size)
        slots = asyncio.Semaphore(self.options.part_concurrency)
        sent = 0

        async def send_part(number: int) -> str:
            nonlocal sent
            async with slots:
                offset = (number - 1) * part_size
                length = min(part_size, size - offset)
                reply = await self.http.request(
                    "upload part",
                    "PUT",
                    f"{root}/{number}",
                    content=FileRange(file, offset, length),
                    headers={
                        "Authorization": token.header,
                        "Content-Type": content_type,
                        "Accept-Encoding": "identity",  # keeps the ETag header intact
                    },
                    deadline=self._deadline(length),
                    auth=False,
                    any_5xx=True,
                )
                if reply.is_error:
                    raise self._error(reply, f"upload part {number}")
                etag = str(reply.headers.get("etag", "")).strip()
                if not etag or len(etag) > 1024:
                    raise ProtocolError(f"upload part {number}", "the reply has no ETag header")
                sent += length
                _report(on_progress, sent, size)
                return etag

        tasks = [asyncio.ensure_future(send_part(n)) for n in range(1, count + 1)]
        try:
            etags = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        parts = [{"partNumber": n, "etag": etag} for n, etag in enumerate(etags, start=1)]
        call = "complete upload"
        response = await self.http.request(
            call,
            "POST",
            f"{root}/complete",
            json={"parts": parts},
            headers={"Authorization": token.header},
            auth=False,
            any_5xx=True,
        )
        if response.is_error:
            raise self._error(response, call)
        return access_url

    # --- errors -------------------------------------------------------------------------------

    def _error(self, response: httpx.Response, call: str) -> FalError:
        error = error_from_response(response, auth_scheme=self.auth_scheme, redactor=self._redactor)
        error.message = f"{call} failed: {error.message}"
        error.args = (error.message,)
        return error

    def _scrub(self, exc: E, token: _Token | None, file: Path) -> E:
        if isinstance(exc, FalError) and not exc.message.startswith("upload"):
            exc.message = f"upload of {file.name}: {exc.message}"
            exc.args = (exc.message,)
        self._redactor.scrub(exc)
        if token is not None:
            Redactor(token.secret).scrub(exc)
        return exc


def _identity(path: str | Path) -> tuple[str, int, int]:
    file = Path(path).expanduser().resolve()
    stat = file.stat()
    return str(file), stat.st_size, stat.st_mtime_ns


def _digest_stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _report(callback: ProgressCallback | None, sent: int, total: int) -> None:
    if callback is None:
        return
    try:
        callback(sent, total)
    except Exception:  # a display callback never breaks an upload
        log.exception("upload progress callback failed")


# --- inputs that name local files -----------------------------------------------------------


class UploadFn(Protocol):
    def __call__(
        self, path: str | Path, /, *, field: str = ..., kind: FileKind = ...
    ) -> Awaitable[str]: ...


def local_lora_files(params: FluxLoraInput) -> list[tuple[int, str]]:
    """(index, path) of each LoRA whose path is an existing local file. A relative path that
    also reads as a Hugging Face id (``loras/style.safetensors``) is the local file when one
    exists; an URL never is."""
    found = []
    for index, lora in enumerate(params.loras):
        if lora_path_kind(lora.path) == "url":
            continue
        try:
            if Path(lora.path).expanduser().is_file():
                found.append((index, lora.path))
        except OSError:
            continue
    return found


IMAGE_FIELDS = ("image_url", "mask_url")
"""The input fields of the family that name an image (image-to-image, inpainting)."""


def local_image_files(params: FluxLoraInput) -> list[tuple[str, str]]:
    """(field, path) of each of `IMAGE_FIELDS` that names an existing local file (an http(s)
    URL or a ``data:`` URI is sent as it is)."""
    found = []
    for name in IMAGE_FIELDS:
        value = getattr(params, name, None)
        if not isinstance(value, str) or "://" in value or value.startswith("data:"):
            continue
        try:
            if Path(value).expanduser().is_file():
                found.append((name, value))
        except OSError:
            continue
    return found


def local_files(params: FluxLoraInput) -> list[tuple[str, str, FileKind]]:
    """(field, path, kind) of every local file an input names: LoRA weights, images, masks."""
    loras = [(f"loras[{i}].path", path, "lora") for i, path in local_lora_files(params)]
    images = [(name, path, "image") for name, path in local_image_files(params)]
    return [*loras, *images]  # type: ignore[list-item]


def _image_size_of(path: str) -> tuple[int, int] | None:
    try:
        with Image.open(Path(path).expanduser()) as image:
            width, height = image.size
            return int(width), int(height)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def check_mask(params: FluxLoraInput) -> None:
    """`InputError` naming ``mask_url`` when a local mask and a local image differ in size
    (fal wants the mask at the image's size; it is refused rather than resized, so what is
    sent is what the user made). Unknown sizes (a URL on either side) are not checked."""
    image, mask = getattr(params, "image_url", None), getattr(params, "mask_url", None)
    if not isinstance(image, str) or not isinstance(mask, str):
        return
    local = dict(local_image_files(params))
    if "image_url" not in local or "mask_url" not in local:
        return
    image_size, mask_size = _image_size_of(image), _image_size_of(mask)
    if image_size is None or mask_size is None or image_size == mask_size:
        return
    message = (
        f"the mask is {mask_size[0]}×{mask_size[1]} but the image is "
        f"{image_size[0]}×{image_size[1]}; make the mask the image's size"
    )
    raise _problem("mask_url", mask, message)


async def upload_local_files(
    params: FluxLoraInput, upload: UploadFn
) -> tuple[FluxLoraInput, dict[str, str]]:
    """`params` with each local file it names (LoRA weights, ``image_url``, ``mask_url``)
    replaced by its uploaded URL, and the map of local path → URL (empty, and `params` itself,
    when there is none). Every file is checked before any of them is sent (one `InputError`
    lists every problem); a local mask must have the local image's size (`check_mask`)."""
    found = local_files(params)
    if not found:
        return params, {}
    problems: list[FieldProblem] = []
    for field, path, kind in found:
        try:
            await asyncio.to_thread(check_local_file, path, field=field, kind=kind)
        except InputError as exc:
            problems.extend(exc.problems)
    if not problems:
        try:
            await asyncio.to_thread(check_mask, params)
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    urls: dict[str, str] = {}
    for field, path, kind in found:
        if path not in urls:
            urls[path] = await upload(path, field=field, kind=kind)
    loras = [
        lora.model_copy(update={"path": urls[lora.path]}) if lora.path in urls else lora
        for lora in params.loras
    ]
    update: dict[str, Any] = {"loras": loras}
    for name, path in local_image_files(params):
        update[name] = urls[path]
    return params.model_copy(update=update), urls
