"""The client's address: the TCP peer, or what trusted proxies say it is.

``X-Forwarded-For`` is believed only when the peer is one of ``PAYMENTS_HTTP_TRUSTED_PROXIES`` (a load balancer),
and then only up to the first address that is not itself a trusted proxy, read from the right: everything to its
left was written by the client and may be anything.  Uvicorn's own proxy-header handling is off
(``payments serve``), because it trusts 127.0.0.1 by default, so any local process could claim any address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, MutableMapping
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` as networks.  Raises :class:`ValueError` for one that is not an address."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip())


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(scope: MutableMapping[str, Any], trusted: tuple[Network, ...]) -> str:
    """The address a limit or a log should name for this request (``"unknown"`` without a peer)."""
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            forwarded.extend(part.strip() for part in value.decode("latin-1").split(","))
    for hop in reversed([hop for hop in forwarded if hop]):
        if not _trusted(hop, trusted):
            return hop
    return forwarded[0] if forwarded and forwarded[0] else peer
