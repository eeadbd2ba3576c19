"""Client configuration from arguments and the environment; the key is kept apart from it.

Environment variables (arguments win over them):

| variable | meaning | default |
|---|---|---|
| ``FAL_KEY`` | the key (``key_id:key_secret``) | — |
| ``FAL_KEY_ID`` + ``FAL_KEY_SECRET`` | the key in two parts, when FAL_KEY is unset | — |
| ``FLUXWIDGET_BASE_URL`` | queue host or proxy | ``https://queue.fal.run`` |
| ``FLUXWIDGET_AUTH_SCHEME`` | ``Key`` (fal) or ``Bearer`` (a proxy) | ``Key`` |
| ``FLUXWIDGET_ENDPOINT`` | endpoint id, sub-paths allowed | ``fal-ai/flux-lora`` |
| ``FLUXWIDGET_URL_MODE`` | ``auto``, ``returned`` or ``base`` (see `UrlMode`) | ``auto`` |
| ``FLUXWIDGET_PLATFORM_URL`` | fal's platform API (prices) | see `platform_url` |
| ``FLUXWIDGET_STORAGE_URL`` | fal's REST host (file uploads) | see `storage_url` |

`platform_url` defaults to ``https://api.fal.ai/v1`` on fal's own queue host, and to
``{base_url}/v1`` on any other base URL (a proxy or the emulator), so the key is never sent to a
host the user did not configure. `storage_url` (where uploads get their token) follows the
same rule: ``https://rest.fal.ai`` on fal's own queue host, else the base URL itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import urlsplit

from ..schema import ENDPOINT_ID, FluxLoraInput

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_PLATFORM_URL",
    "DEFAULT_STORAGE_URL",
    "AuthScheme",
    "ClientConfig",
    "UrlMode",
    "key_from_environment",
]

DEFAULT_BASE_URL = "https://queue.fal.run"
DEFAULT_PLATFORM_URL = "https://api.fal.ai/v1"
DEFAULT_STORAGE_URL = "https://rest.fal.ai"

AuthScheme = Literal["Key", "Bearer"]
UrlMode = Literal["auto", "returned", "base"]
"""Where status/result/cancel go after a submit.

``returned``: the URLs in the submit reply (fal's recommendation). ``base``: URLs built on the
configured base URL (needed when only a proxy is reachable). ``auto``: the returned URLs when they
are on the base URL's host, else URLs built on the base URL (a proxy that hands back fal's URLs).
"""


def key_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """``FAL_KEY``, else ``FAL_KEY_ID:FAL_KEY_SECRET``, else None (from `environ` or os.environ)."""
    env = os.environ if environ is None else environ
    key = env.get("FAL_KEY", "").strip()
    if key:
        return key
    key_id = env.get("FAL_KEY_ID", "").strip()
    secret = env.get("FAL_KEY_SECRET", "").strip()
    return f"{key_id}:{secret}" if key_id and secret else None


def _choice(value: str | None, env: str, allowed: tuple[str, ...], default: str) -> str:
    chosen = value or os.environ.get(env) or default
    for option in allowed:  # case-insensitive, returned in canonical spelling
        if chosen.lower() == option.lower():
            return option
    source = "argument" if value else env
    raise ValueError(f"{source}: {chosen!r} is not allowed; use one of {', '.join(allowed)}")


@dataclass(frozen=True)
class ClientConfig:
    """Where and how the client talks; holds no secret, so it is safe to show."""

    base_url: str = DEFAULT_BASE_URL
    endpoint: str = ENDPOINT_ID
    auth_scheme: AuthScheme = "Key"
    url_mode: UrlMode = "auto"
    platform_url: str = DEFAULT_PLATFORM_URL
    storage_url: str = DEFAULT_STORAGE_URL

    @classmethod
    def resolve(
        cls,
        *,
        base_url: str | None = None,
        endpoint: str | None = None,
        auth_scheme: str | None = None,
        url_mode: str | None = None,
        platform_url: str | None = None,
        storage_url: str | None = None,
    ) -> ClientConfig:
        """Arguments first, then the environment, then the defaults; validated."""
        url = (base_url or os.environ.get("FLUXWIDGET_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url: {url!r} is not an http(s) URL")
        endpoint_id = (endpoint or os.environ.get("FLUXWIDGET_ENDPOINT") or ENDPOINT_ID).strip("/")
        if endpoint_id.count("/") < 1:
            raise ValueError(f"endpoint: {endpoint_id!r} must look like 'owner/app[/subpath]'")
        scheme = _choice(auth_scheme, "FLUXWIDGET_AUTH_SCHEME", ("Key", "Bearer"), "Key")
        mode = _choice(url_mode, "FLUXWIDGET_URL_MODE", ("auto", "returned", "base"), "auto")
        derived = DEFAULT_PLATFORM_URL if url == DEFAULT_BASE_URL else f"{url}/v1"
        platform = (platform_url or os.environ.get("FLUXWIDGET_PLATFORM_URL") or derived).rstrip(
            "/"
        )
        if urlsplit(platform).scheme not in ("http", "https") or not urlsplit(platform).netloc:
            raise ValueError(f"platform_url: {platform!r} is not an http(s) URL")
        storage_default = DEFAULT_STORAGE_URL if url == DEFAULT_BASE_URL else url
        storage = (
            storage_url or os.environ.get("FLUXWIDGET_STORAGE_URL") or storage_default
        ).rstrip("/")
        if urlsplit(storage).scheme not in ("http", "https") or not urlsplit(storage).netloc:
            raise ValueError(f"storage_url: {storage!r} is not an http(s) URL")
        return cls(
            url, endpoint_id, cast(AuthScheme, scheme), cast(UrlMode, mode), platform, storage
        )

    @property
    def app_id(self) -> str:
        """``owner/app`` without sub-path: status, result and cancel use only this."""
        return "/".join(self.endpoint.split("/")[:2])

    def endpoint_for(self, input: FluxLoraInput) -> str:
        """The endpoint an input goes to: the one this client was set to when it is not the
        default (a proxy's path, a sub-path), else the one the input's model names."""
        return self.endpoint if self.endpoint != ENDPOINT_ID else type(input).endpoint_id

    def submit_url(self, endpoint: str | None = None) -> str:
        """Where a job of `endpoint` (default: this client's) is submitted; the sub-path
        belongs here, and only here."""
        return f"{self.base_url}/{endpoint or self.endpoint}"

    def request_url(self, request_id: str, suffix: str = "") -> str:
        """A request's URL built on the base URL: suffix "" (result), "/status", "/cancel"."""
        return f"{self.base_url}/{self.app_id}/requests/{request_id}{suffix}"

    def choose_url(self, returned: str | None, request_id: str, suffix: str) -> str:
        """Apply the URL mode to one URL from a submit reply."""
        built = self.request_url(request_id, suffix)
        if not returned or self.url_mode == "base":
            return built
        if self.url_mode == "returned":
            return returned
        same_host = urlsplit(returned).netloc == urlsplit(self.base_url).netloc
        return returned if same_host else built
