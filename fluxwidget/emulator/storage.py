"""The emulator's storage: fal's CDN v3 upload protocol, held in memory.

Routes (all on the emulator's own URL, which is also the ``base_url`` its tokens name)::

    POST /storage/auth/token?storage_type=fal-cdn-v3   the fal key → an upload token
    POST /files/upload                                  raw bytes → {access_url}
    POST /files/upload/multipart                        → {access_url, uploadId}
    PUT  /uploads/{id}/{name}/multipart/{uploadId}/{n}  a part → its ETag header
    POST /uploads/{id}/{name}/multipart/{uploadId}/complete   {"parts": [...]}
    GET  /uploads/{id}/{name}                           the file (no auth, like a CDN)

The upload routes take only ``Authorization: Bearer <upload token>``; the fal key there is a 401
(fal's storage host never needs it, and a client that sends it leaks it).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

MAX_FILE_BYTES = 1024 * 1024 * 1024
"""The largest file the emulator keeps (it holds files in memory)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class StoredFile:
    """One uploaded file."""

    file_id: str
    name: str
    content_type: str
    data: bytes
    lifetime: int | None
    """``expiration_duration_seconds`` asked for, when it was."""
    parts: int = 0
    """How many parts it was sent in (0: a single upload)."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Multipart:
    """A multipart upload under way."""

    upload_id: str
    file_id: str
    name: str
    content_type: str
    lifetime: int | None
    parts: dict[int, bytes] = field(default_factory=dict)
    etags: dict[int, str] = field(default_factory=dict)


def safe_name(name: str) -> str:
    """A file name fit for a URL path segment."""
    cleaned = _UNSAFE.sub("_", name).strip("._")[-120:]
    return cleaned or "file"


def etag_of(data: bytes) -> str:
    """An S3-style ETag (quoted MD5)."""
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


class UploadStore:
    """Tokens, files and multipart uploads; shared by the server loop and the test thread."""

    def __init__(self, token_ttl: float = 3600.0) -> None:
        self.token_ttl = token_ttl
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self.files: dict[str, StoredFile] = {}
        self.sessions: dict[str, Multipart] = {}
        self.order: list[str] = []
        """File ids in the order they were completed."""

    def issue_token(self) -> tuple[str, str]:
        """A new upload token and its expiry (ISO 8601, as fal writes it)."""
        token = secrets.token_urlsafe(24)
        expires = time.time() + self.token_ttl
        with self._lock:
            self._tokens[token] = expires
        when = datetime.fromtimestamp(expires, tz=timezone.utc).isoformat()
        return token, when

    def token_ok(self, token: str) -> bool:
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and expires > time.time()

    def add(
        self, name: str, content_type: str, data: bytes, lifetime: int | None, parts: int = 0
    ) -> StoredFile:
        stored = StoredFile(uuid.uuid4().hex, safe_name(name), content_type, data, lifetime, parts)
        with self._lock:
            self.files[stored.file_id] = stored
            self.order.append(stored.file_id)
        return stored

    def start(self, name: str, content_type: str, lifetime: int | None) -> Multipart:
        session = Multipart(
            upload_id=secrets.token_urlsafe(16),
            file_id=uuid.uuid4().hex,
            name=safe_name(name),
            content_type=content_type,
            lifetime=lifetime,
        )
        with self._lock:
            self.sessions[session.upload_id] = session
        return session

    def get(self, file_id: str, name: str) -> StoredFile | None:
        with self._lock:
            stored = self.files.get(file_id)
        return stored if stored is not None and stored.name == name else None

    def finish(self, session: Multipart, data: bytes, parts: int) -> StoredFile:
        stored = StoredFile(
            session.file_id, session.name, session.content_type, data, session.lifetime, parts
        )
        with self._lock:
            self.sessions.pop(session.upload_id, None)
            self.files[stored.file_id] = stored
            self.order.append(stored.file_id)
        return stored

    def completed(self) -> list[StoredFile]:
        with self._lock:
            return [self.files[file_id] for file_id in self.order]
