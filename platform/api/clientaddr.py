"""Who is calling, by network address: the peer, or what a configured proxy says it forwarded.

``X-Forwarded-For`` is believed only when the peer is one of ``CITYOS_TRUSTED_PROXIES`` (addresses or
CIDRs); the caller is then the right-most address in the chain that is not itself a trusted proxy.
From anyone else the header is ignored, so a client cannot choose the address its rate limits,
connection caps and audit entries are counted under. (The API is run with uvicorn's own proxy-header
handling off, ``--no-proxy-headers``: that would rewrite the peer before this code sees it.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.1, 172.16.0.0/12"`` as networks (a bare address is a /32 or /128); ValueError if malformed."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, proxies: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in proxies)


def resolve(peer: str | None, forwarded_for: Iterable[str], proxies: Sequence[Network]) -> str:
    """The caller's address given the TCP ``peer``, the ``X-Forwarded-For`` values and the trusted proxies."""
    if peer is None:
        return "unknown"
    current = _address(peer)
    if not _trusted(current, proxies):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # garbage from further out: the last proxy we trust is all we know
            break
        current = address
        if not _trusted(address, proxies):
            break
    return str(current)


def client_address(scope, proxies: Sequence[Network]) -> str:
    """:func:`resolve` for an ASGI ``scope`` (HTTP or WebSocket)."""
    client = scope.get("client")
    forwarded = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-forwarded-for"]
    return resolve(client[0] if client else None, forwarded, proxies)
