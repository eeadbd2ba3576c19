"""The connection options of every command and the client they ask for."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

from ..client import FluxClient
from ..connect import choose_client

__all__ = ["add_connection_args", "client_for"]

NO_KEY = (
    "FAL_KEY is not set — use --emulator (no cost, placeholder images) "
    "or set a key: export FAL_KEY=key_id:key_secret"
)


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """Where the jobs go: fal (the default), a proxy, or the built-in emulator."""
    parser.add_argument("--base-url", help="queue host or proxy (env FLUXWIDGET_BASE_URL)")
    parser.add_argument(
        "--auth-scheme", choices=["Key", "Bearer"], help="Key for fal, Bearer for a proxy"
    )
    parser.add_argument("--endpoint", help="endpoint id (default fal-ai/flux-lora)")
    parser.add_argument(
        "--emulator", action="store_true", help="run on a built-in emulator (no key, no cost)"
    )


@contextlib.asynccontextmanager
async def client_for(
    args: argparse.Namespace, *, server: dict[str, str] | None = None
) -> AsyncIterator[FluxClient]:
    """The client the arguments ask for (`choose_client`: the emulator with --emulator, else a
    key is needed), closed afterwards. `server` (a run folder's) is where to go when the
    arguments name no --base-url / --auth-scheme."""
    remembered = server or {}
    connection = choose_client(
        emulator=bool(args.emulator) or False,
        no_key_message=NO_KEY,
        base_url=args.base_url or remembered.get("base_url"),
        auth_scheme=args.auth_scheme or remembered.get("auth_scheme"),
        endpoint=args.endpoint,
    )
    client: FluxClient = connection.client
    async with client:
        yield client
