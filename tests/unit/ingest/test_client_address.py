"""The client address: the peer, or X-Forwarded-For read from the right through trusted proxies only."""

from __future__ import annotations

from typing import Any

from engine.ingest.client_address import client_address, parse_networks

LB = parse_networks(["10.0.0.0/8"])


def _scope(peer: str, forwarded: str | None = None) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return {"client": (peer, 40000), "headers": headers}


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() -> None:
    assert client_address(_scope("127.0.0.1", "1.2.3.4"), ()) == "127.0.0.1"


def test_a_header_from_an_untrusted_peer_is_ignored() -> None:
    assert client_address(_scope("203.0.113.9", "1.2.3.4"), LB) == "203.0.113.9"


def test_behind_the_load_balancer_the_rightmost_untrusted_hop_is_the_client() -> None:
    # The client wrote "6.6.6.6" itself; the load balancer appended the address it saw.
    assert client_address(_scope("10.1.2.3", "6.6.6.6, 198.51.100.7"), LB) == "198.51.100.7"
    assert client_address(_scope("10.1.2.3", "198.51.100.7, 10.9.9.9"), LB) == "198.51.100.7"


def test_a_trusted_peer_without_a_header_is_the_client() -> None:
    assert client_address(_scope("10.1.2.3"), LB) == "10.1.2.3"
    assert client_address({"headers": []}, LB) == "unknown"
