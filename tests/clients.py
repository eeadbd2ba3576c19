"""The one way tests make a client on an emulator (fast retries unless a test sets its own)."""

from __future__ import annotations

from typing import Any

from fluxwidget import FluxClient
from fluxwidget.client import RetryPolicy
from fluxwidget.emulator import Emulator

FAST_RETRY = RetryPolicy(max_attempts=4, initial_wait=0.01, max_wait=0.5)
"""Retries as the client does them, with waits short enough for a test."""


def client_for(emu: Emulator, **options: Any) -> FluxClient:
    """A `FluxClient` on `emu` with its key; `options` go to `FluxClient`."""
    options.setdefault("retry", FAST_RETRY)
    return FluxClient(api_key=emu.api_key, base_url=emu.url, **options)
