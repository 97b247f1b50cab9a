"""Where forwarding may send (the SSRF policy). In development, anywhere: tests and demos use local
receivers. Elsewhere only https, to public addresses, never esu itself: checked on the URL's text when
a target is saved, and on every address its host resolves to, both then and on every connection (the
sender connects to the address vetted here, so a name that resolves elsewhere later is refused too)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import has_request_context, request

from .errors import ForwardingError


class DestinationRefused(ForwardingError):
    """A target URL, or the address it resolves to, that esu will not send to."""


@dataclass(frozen=True)
class DestinationPolicy:
    """Where forwarding may connect. Development: anywhere (tests and demos use local receivers).
    Elsewhere: https only, to public addresses, never to esu's own host (SSRF)."""

    restricted: bool
    own_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config) -> DestinationPolicy:
        own = set()
        if config.get("ESU_PUBLIC_URL"):
            own.add(_hostname(urlsplit(config["ESU_PUBLIC_URL"]).hostname))
        if has_request_context():
            own.add(_hostname(urlsplit("//" + request.host).hostname))
        own.discard("")
        return cls(restricted=config["ESU_ENV"] != "development", own_hosts=frozenset(own))

    def check_url(self, url: str) -> None:
        """Refuse a URL by its text alone: scheme, host, credentials, esu itself, a forbidden IP literal."""
        if len(url) > 2048:
            raise DestinationRefused("the URL is longer than 2048 characters")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise DestinationRefused("the URL cannot be parsed") from None
        allowed = ("https",) if self.restricted else ("https", "http")
        if parts.scheme not in allowed:
            raise DestinationRefused("the URL must start with https://" if self.restricted
                                     else "the URL must start with https:// or http://")
        host = _hostname(parts.hostname)
        if not host:
            raise DestinationRefused("the URL has no host")
        if parts.username is not None or parts.password is not None:
            raise DestinationRefused("the URL must not carry a user name or password: the signature "
                                     "authenticates esu")
        if not self.restricted:
            return
        if host in self.own_hosts:
            raise DestinationRefused(f"{host} is esu itself")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return
        reason = forbidden_address(literal)
        if reason:
            raise DestinationRefused(f"{host} is a {reason} address")

    def check_destination(self, url: str) -> None:
        """``check_url``, then (outside development) every address the host resolves to."""
        self.check_url(url)
        parts = urlsplit(url)
        try:
            self.vetted_address(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        except OSError:
            raise DestinationRefused(f"{parts.hostname} does not resolve to an address") from None

    def vetted_address(self, host: str, port: int) -> str:
        """The address to connect to for ``host``: in development the host itself; elsewhere one of its
        resolved addresses, once every one of them is allowed."""
        if not self.restricted:
            return host
        host = _hostname(host)
        if host in self.own_hosts:
            raise DestinationRefused(f"{host} is esu itself")
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        own_addresses = self._own_addresses()
        for *_, sockaddr in infos:
            address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
            reason = forbidden_address(address)
            if reason:
                raise DestinationRefused(f"{host} resolves to {address}, a {reason} address")
            if address in own_addresses:
                raise DestinationRefused(f"{host} resolves to {address}, an address of esu itself")
        return infos[0][4][0]

    def _own_addresses(self) -> set:
        addresses = set()
        for host in self.own_hosts:
            try:
                infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except OSError:
                continue
            addresses.update(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos)
        return addresses


def _hostname(host: str | None) -> str:
    return (host or "").strip("[]").rstrip(".").lower()


def forbidden_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``address`` is not a public unicast address (so not one to forward to), or None."""
    embedded = None
    if address.version == 6:
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
    for candidate in (embedded, address):  # the IPv4 address inside says more than the IPv6 wrapping
        if candidate is None:
            continue
        for attribute, reason in (("is_loopback", "loopback"), ("is_unspecified", "unspecified"),
                                  ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                                  ("is_private", "private"), ("is_reserved", "reserved")):
            if getattr(candidate, attribute):
                return reason
        if not candidate.is_global:
            return "non-public"
    return None
