"""The client a notebook gets when it asks for none: fal with a key, else the emulator."""

from __future__ import annotations

from typing import Any

from .client import FluxClient, key_from_environment

__all__ = ["default_client", "emulator_client"]


def emulator_client(**options: Any) -> FluxClient:
    """A client on this process's shared loopback emulator (placeholder images, no cost)."""
    from .emulator import shared_emulator

    emulator = shared_emulator()
    options.setdefault("platform_url", f"{emulator.url}/v1")
    return FluxClient(api_key=emulator.api_key, base_url=emulator.url, **options)


def default_client(api_key: str | None = None, **options: Any) -> FluxClient:
    """`FluxClient` on fal when a key is given or set (``FAL_KEY``...), else `emulator_client`.

    The same notebook cell thus runs on fal with a key and offline without one.
    """
    if api_key or key_from_environment():
        return FluxClient(api_key=api_key, **options)
    return emulator_client(**options)
