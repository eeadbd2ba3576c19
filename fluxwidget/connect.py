"""Which client, in which mode: the one place that decides (panel, CLI, `sweep()`, notebooks).

- a client you give is used as it is (mode ``"client"``);
- ``emulator=True`` picks the process's shared loopback emulator (mode ``"emulator"``);
- a key (given, or ``FAL_KEY`` / ``FAL_KEY_ID`` + ``FAL_KEY_SECRET``; a blank key counts as
  none) makes a `FluxClient` on fal or on the `base_url` you name (mode ``"fal"``);
- no key: the emulator, unless ``emulator=False`` asks for fal, which is then a
  `MissingKeyError` (nothing could be sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from .client import FluxClient, key_from_environment
from .errors import MissingKeyError

__all__ = ["ClientMode", "Connection", "choose_client", "default_client", "emulator_client"]

ClientMode = Literal["fal", "emulator", "client"]
"""fal (or a proxy) made from a key, the built-in emulator, or a client given by the caller."""

C = TypeVar("C")

NO_KEY_MESSAGE = (
    "no fal key is set — set one (export FAL_KEY=key_id:key_secret) or use the emulator "
    "(no cost, placeholder images)"
)


@dataclass(frozen=True)
class Connection(Generic[C]):
    """A client and the mode it was chosen in."""

    client: C
    mode: ClientMode


def emulator_client(**options: Any) -> FluxClient:
    """A client on this process's shared loopback emulator (placeholder images, no cost)."""
    from .emulator import shared_emulator  # here: the server's packages load only when used

    emulator = shared_emulator()
    options.setdefault("platform_url", f"{emulator.url}/v1")
    options.setdefault("storage_url", emulator.url)
    return FluxClient(api_key=emulator.api_key, base_url=emulator.url, **options)


def choose_client(
    client: C | None = None,
    *,
    api_key: str | None = None,
    emulator: bool | None = None,
    no_key_message: str = NO_KEY_MESSAGE,
    **options: Any,
) -> Connection[C] | Connection[FluxClient]:
    """The client to use and its mode (see the module's docstring for the rules).

    `options` go to `FluxClient` (``base_url``, ``auth_scheme``, ``endpoint``, ...); options
    that are None are left out, so a CLI can pass its unset flags through.
    """
    if client is not None:
        if api_key is not None or emulator:
            raise TypeError("give either client= or api_key=/emulator=, not both")
        return Connection(client, "client")
    options = {name: value for name, value in options.items() if value is not None}
    key = api_key.strip() if api_key and api_key.strip() else key_from_environment()
    if emulator:
        for name in ("base_url", "auth_scheme"):
            options.pop(name, None)
        return Connection(emulator_client(**options), "emulator")
    if key:
        return Connection(FluxClient(api_key=key, **options), "fal")
    if emulator is False:
        raise MissingKeyError(no_key_message)
    return Connection(emulator_client(**options), "emulator")


def default_client(api_key: str | None = None, **options: Any) -> FluxClient:
    """`FluxClient` on fal when a key is given or set (``FAL_KEY``...), else `emulator_client`.

    The same notebook cell thus runs on fal with a key and offline without one.
    """
    connection: Connection[Any] = choose_client(api_key=api_key, **options)
    client: FluxClient = connection.client
    return client
