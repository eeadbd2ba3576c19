"""Which image URLs a server may make the client fetch, and which addresses they may reach.

Allowed: ``https``; ``data:image/*``; ``http`` only to loopback or the configured base host.
Always refused: link-local and cloud-metadata addresses (169.254.0.0/16, fe80::/10, their
IPv4-mapped, 6to4 and NAT64 forms, ``fd00:ec2::254``, ``100.100.100.200``,
``metadata.google.internal``), unspecified and multicast addresses. Private ranges are refused
unless allowed (or they are the base host).

A URL whose host is a name is checked here by its name only; `URLPolicy.check_address` applies
the same rules to the addresses the name resolves to and to the address a download actually
connected to (`netguard` does both, so a name that resolves to 169.254.169.254 is refused too).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import UnsafeURLError

__all__ = ["URLPolicy", "check_image_url", "is_downgrade", "parse_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data"}
)
_METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("fd00:ec2::254"),  # AWS, IPv6 (a private range otherwise)
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud (shared address space)
    }
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

_NEVER = "link-local, cloud-metadata, unspecified and multicast addresses are never fetched"
_PRIVATE = "private addresses are not fetched unless allowed (Limits(allow_private_hosts=True))"
_PLAIN_HTTP = "plain http image URLs are fetched only from loopback or the base host"


def parse_address(host: str) -> IPAddress | None:
    """The IP address a host string denotes, including legacy IPv4 forms (``2852039166``,
    ``0xa9.0xfe.0xa9.0xfe``) that resolvers accept; IPv4-mapped, 6to4 and NAT64 unwrapped."""
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
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _host(netloc_host: str | None) -> str:
    return (netloc_host or "").rstrip(".").lower()


def _shown(url: str) -> str:
    return url if len(url) <= 120 else url[:119] + "…"


@dataclass(frozen=True)
class URLPolicy:
    """The policy above for one client: its base URL, and whether private ranges are allowed."""

    base_url: str
    allow_private: bool = False

    @property
    def base_host(self) -> str:
        return _host(urlsplit(self.base_url).hostname)

    def _refusal(self, address: IPAddress, *, scheme: str, host: str, loopback: bool) -> str | None:
        """Why `address` may not be fetched from for a `scheme` URL on `host`, or None."""
        if (
            address.is_link_local
            or address.is_unspecified
            or address.is_multicast
            or address in _METADATA_ADDRESSES
        ):
            return _NEVER
        exempt = loopback or host == self.base_host
        if address.is_private and not exempt and not self.allow_private:
            return _PRIVATE
        if scheme == "http" and not exempt:
            return _PLAIN_HTTP
        return None

    def check_url(self, url: str) -> str:
        """Return `url` when the policy allows fetching it, else raise `UnsafeURLError`.
        A name is judged by its name; its addresses by `check_address`."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme == "data":
            if not url.strip()[5:].lower().startswith("image/"):
                raise UnsafeURLError("a data: URL that is not data:image/* is not an image")
            return url
        if scheme not in ("http", "https"):
            raise UnsafeURLError(
                f"only https (or data:image/*) image URLs are fetched: {_shown(url)}"
            )
        host = _host(parts.hostname)
        if not host:
            raise UnsafeURLError(f"the image URL has no host: {_shown(url)}")
        if host in _METADATA_HOSTS or host.endswith(".metadata.google.internal"):
            raise UnsafeURLError(f"cloud metadata hosts are never fetched: {_shown(url)}")
        address = parse_address(host)
        if address is None:
            loopback = host == "localhost"
            if scheme == "http" and not loopback and host != self.base_host:
                raise UnsafeURLError(f"{_PLAIN_HTTP}: {_shown(url)}")
            return url
        reason = self._refusal(address, scheme=scheme, host=host, loopback=address.is_loopback)
        if reason is not None:
            raise UnsafeURLError(f"{reason}: {_shown(url)}")
        return url

    def check_address(self, url: str, address: str, *, how: str = "resolves to") -> None:
        """Raise `UnsafeURLError` unless the policy allows fetching `url` from `address` (an
        address its host resolves to, or the one a connection actually reached), judged as if
        the URL had named that address itself (the base host keeps its exemption)."""
        parts = urlsplit(url.strip())
        host = _host(parts.hostname)
        ip = parse_address(address)
        if ip is None:
            raise UnsafeURLError(
                f"{host} {how} {address!r}, which is not an IP address: {_shown(url)}"
            )
        reason = self._refusal(ip, scheme=parts.scheme.lower(), host=host, loopback=ip.is_loopback)
        if reason is not None:
            raise UnsafeURLError(f"{reason}: {host} {how} {ip} ({_shown(url)})")


def check_image_url(url: str, *, base_url: str, allow_private: bool = False) -> str:
    """Return `url` when the policy above allows fetching it, else raise `UnsafeURLError`
    (its name only: see `URLPolicy.check_address` for what the name resolves to)."""
    return URLPolicy(base_url, allow_private).check_url(url)


def is_downgrade(returned: str, base_url: str) -> bool:
    """Whether following `returned` would leave https for http."""
    return urlsplit(base_url).scheme == "https" and urlsplit(returned).scheme != "https"
