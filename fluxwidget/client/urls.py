"""Which image URLs a server may make the client fetch.

Allowed: ``https``; ``data:image/*``; ``http`` only to loopback or the configured base host.
Always refused: link-local and cloud-metadata addresses (169.254.0.0/16, fe80::/10, their
IPv4-mapped forms, ``metadata.google.internal``), unspecified and multicast addresses. Private
ranges are refused unless allowed (or they are the base host). Names are not resolved: a DNS name
that resolves to a private address is not caught here.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from ..errors import UnsafeURLError

__all__ = ["check_image_url", "is_downgrade"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data"}
)


def _address(host: str) -> IPAddress | None:
    """The IP address a host string denotes, including legacy IPv4 forms (``2852039166``,
    ``0xa9.0xfe.0xa9.0xfe``) that resolvers accept; IPv4-mapped IPv6 unwrapped."""
    try:
        address: IPAddress = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return mapped
    return address


def _shown(url: str) -> str:
    return url if len(url) <= 120 else url[:119] + "…"


def check_image_url(url: str, *, base_url: str, allow_private: bool = False) -> str:
    """Return `url` when the policy above allows fetching it, else raise `UnsafeURLError`."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "data":
        if not url.strip()[5:].lower().startswith("image/"):
            raise UnsafeURLError("a data: URL that is not data:image/* is not an image")
        return url
    if scheme not in ("http", "https"):
        raise UnsafeURLError(f"only https (or data:image/*) image URLs are fetched: {_shown(url)}")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeURLError(f"the image URL has no host: {_shown(url)}")
    base_host = (urlsplit(base_url).hostname or "").rstrip(".").lower()
    if host in _METADATA_HOSTS or host.endswith(".metadata.google.internal"):
        raise UnsafeURLError(f"cloud metadata hosts are never fetched: {_shown(url)}")
    address = _address(host)
    loopback = host == "localhost" or (address is not None and address.is_loopback)
    if address is not None:
        if address.is_link_local or address.is_unspecified or address.is_multicast:
            raise UnsafeURLError(
                f"link-local, unspecified and multicast addresses are never fetched: {_shown(url)}"
            )
        if address.is_private and not loopback and not allow_private and host != base_host:
            raise UnsafeURLError(
                f"private addresses are not fetched unless allowed "
                f"(Limits(allow_private_hosts=True)): {_shown(url)}"
            )
    if scheme == "http" and not loopback and host != base_host:
        raise UnsafeURLError(
            f"plain http image URLs are fetched only from loopback or the base host: {_shown(url)}"
        )
    return url


def is_downgrade(returned: str, base_url: str) -> bool:
    """Whether following `returned` would leave https for http."""
    return urlsplit(base_url).scheme == "https" and urlsplit(returned).scheme != "https"
