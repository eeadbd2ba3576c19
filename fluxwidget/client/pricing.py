"""flux-lora's unit price from fal's platform API (``GET /models/pricing``), best effort.

fal documents the call but not its reply; this reads
``{"prices": [{"endpoint_id": ..., "unit_price": 0.035, "unit": "megapixels", "currency":
"USD"}]}`` and tolerates close variants (a bare list, ``data``/``items`` instead of ``prices``,
``price`` instead of ``unit_price``, a number as text). Anything else gives None, and the caller
uses the documented default price.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .protocols import JobClient

__all__ = ["UnitPrice", "fetch_unit_price", "unit_price_from_reply"]

log = logging.getLogger("fluxwidget.client")

_UNITS = {
    "megapixel": "megapixel",
    "megapixels": "megapixel",
    "mp": "megapixel",
    "image": "image",
    "images": "image",
}


@dataclass(frozen=True)
class UnitPrice:
    """A price per unit (``megapixel`` or ``image``) in US dollars, and where it came from."""

    usd_per_unit: float
    unit: str = "megapixel"
    source: str = "default (documented price, may be out of date)"
    emulated: bool = False
    """The emulator's price: shown as fal's would be, but nothing is ever billed."""

    @property
    def per_megapixel(self) -> bool:
        """Whether the unit is a megapixel (else an image)."""
        return self.unit.lower() in {"megapixel", "megapixels", "mp"}

    @property
    def short(self) -> str:
        """E.g. ``$0.035/MP``."""
        return f"${self.usd_per_unit:g}/{'MP' if self.per_megapixel else self.unit}"


def _entries(body: Any) -> list[Mapping[str, Any]]:
    if isinstance(body, Mapping):
        for key in ("prices", "data", "items", "results"):
            if isinstance(body.get(key), list):
                body = body[key]
                break
        else:
            body = [body]
    if not isinstance(body, list):
        return []
    return [entry for entry in body if isinstance(entry, Mapping)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def unit_price_from_reply(
    body: Any, endpoint_id: str, *, emulator: bool = False
) -> UnitPrice | None:
    """The unit price for `endpoint_id` in a pricing reply, or None when it has no usable one."""
    entries = _entries(body)
    matching = [e for e in entries if e.get("endpoint_id") == endpoint_id]
    if not matching and len(entries) == 1 and "endpoint_id" not in entries[0]:
        matching = entries
    for entry in matching:
        usd = _number(entry.get("unit_price", entry.get("price")))
        unit = _UNITS.get(str(entry.get("unit", "")).strip().lower())
        currency = str(entry.get("currency", "USD")).upper()
        if usd is not None and unit is not None and currency == "USD":
            source = "the emulator's price: nothing is billed" if emulator else "fal's price"
            return UnitPrice(usd, unit, source, emulated=emulator)
    return None


async def fetch_unit_price(client: JobClient, endpoint_id: str | None = None) -> UnitPrice | None:
    """fal's unit price for `endpoint_id` (default: the client's endpoint), or None.

    Never raises: no key, a refused key, a server error, a timeout or a reply it cannot read
    all give None (logged at debug level without the key).
    """
    wanted = endpoint_id or client.config.endpoint
    try:
        response = await client.platform_get("/models/pricing", {"endpoint_id": wanted})
        if response.is_error:
            log.debug("pricing: HTTP %d from the platform API", response.status_code)
            return None
        body = response.json()
    except Exception as exc:  # best effort by design: any failure means "use the default"
        log.debug("pricing unavailable: %s", type(exc).__name__)
        return None
    emulated = isinstance(body, Mapping) and body.get("emulator") is True
    price = unit_price_from_reply(body, wanted, emulator=emulated)
    if price is None and wanted.count("/") >= 2:  # a sub-path is priced as its app
        price = unit_price_from_reply(body, "/".join(wanted.split("/")[:2]), emulator=emulated)
    return price
