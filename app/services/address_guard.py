"""Refusing URLs we must not call on a user's behalf: only http(s), and only public addresses.

A URL an admin types (an outbound webhook endpoint, later an alert feed) is fetched by our servers, inside the
business's network: without this guard it could reach the database, the metadata service of a cloud host or a
router's admin page. Every address the host name resolves to is checked, and callers check again just before each
request, so a name that first resolves to a public address and later to a private one (DNS rebinding) is refused
then too. Pure functions: whether private addresses are allowed is the caller's setting to pass in.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

SCHEMES = ("http", "https")


class AddressRefused(ValueError):
    """The URL may not be called; the message says why in a sentence an admin understands."""


def check_url(url: str, allow_private: bool = False) -> str:
    """The URL, stripped, if it is http(s) and every address of its host is public (or private ones are allowed)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise AddressRefused("The address must start with http:// or https://.")
    if not parts.hostname:
        raise AddressRefused("The address needs a host name, as in https://example.com/hooks.")
    if parts.username or parts.password:
        raise AddressRefused("Leave the user name and password out of the address; the signature proves who sent it.")
    try:
        port = parts.port
    except ValueError:
        raise AddressRefused("The port in the address is not a number between 1 and 65535.") from None
    check_host(parts.hostname, port or (443 if parts.scheme.lower() == "https" else 80), allow_private)
    return url


def check_host(host: str, port: int, allow_private: bool = False) -> None:
    """Raise AddressRefused unless every address `host` resolves to may be called."""
    for address in resolve(host, port):
        if not allow_private and not is_public(address):
            where = f"{host} is" if host.strip("[]") == str(address) else f"{host} points to {address},"
            raise AddressRefused(f"{where} a private or local address; only public addresses are allowed unless "
                                 "an admin allows private ones in Settings.")


def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address of `host` (an IP literal is its own); AddressRefused when the name does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise AddressRefused(f"{host} could not be found; check the spelling of the address.") from None
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable: not private, loopback, link-local, multicast, reserved, shared (CGNAT) or unspecified."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    return address.is_global and not address.is_multicast
