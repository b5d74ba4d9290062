"""Fetch URL inputs safely with httpx.

Only http and https; connect and read timeouts; a byte cap enforced while
streaming; and no connection to loopback, private, link-local, multicast,
reserved or cloud-metadata addresses unless the settings allow it. The address
check runs after DNS resolution, inside the connection itself (so a host that
resolves differently the second time gains nothing), and again for every
redirect hop, which mmsdk follows by hand.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from ._errors import InvalidInputError
from ._settings import Settings

__all__ = ["fetch_url", "check_address"]

_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


class BlockedAddressError(Exception):
    """Raised inside the transport when a host resolves to a forbidden address."""


def check_address(ip: str) -> str | None:
    """Return why *ip* is forbidden for URL inputs, or ``None`` when it is public."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    for attribute in ("is_loopback", "is_private", "is_link_local", "is_multicast",
                      "is_reserved", "is_unspecified"):
        if getattr(address, attribute):
            return f"{address} is {attribute[3:].replace('_', '-')}"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolve the host, refuse forbidden addresses, connect to the checked one."""

    def __init__(self, allow_private: bool, allow_hosts: Iterable[str]) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private
        self._allow_hosts = {h.lower() for h in allow_hosts}

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        permitted = self._allow_private or host.lower() in self._allow_hosts
        if not permitted and host.lower() in _METADATA_HOSTS:
            raise BlockedAddressError(f"{host} is a cloud metadata host")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not permitted:
            for address in addresses:
                reason = check_address(address)
                if reason:
                    raise BlockedAddressError(f"{host} resolves to {reason}")
        return self._inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        )

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise BlockedAddressError("unix sockets are not allowed for URL inputs")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, settings: Settings) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_GuardedBackend(settings.allow_private_urls, settings.url_allow_hosts),
        )


def fetch_url(url: str, settings: Settings, *, label: str) -> bytes:
    """Download *url* under the safety rules above; return its bytes."""
    hint = (
        " To allow it, call mmsdk.configure(allow_private_urls=True) or list the host "
        "in mmsdk.configure(url_allow_hosts=(...))."
    )
    timeout = httpx.Timeout(settings.url_read_timeout, connect=settings.url_connect_timeout)
    with httpx.Client(transport=_GuardedTransport(settings), timeout=timeout,
                      follow_redirects=False, trust_env=False) as client:
        current = httpx.URL(url)
        for _ in range(settings.url_max_redirects + 1):
            if current.scheme not in {"http", "https"}:
                raise InvalidInputError(
                    f"{label}: URL scheme {current.scheme!r} is not allowed; use http or https."
                )
            try:
                with client.stream("GET", current) as response:
                    if response.is_redirect:
                        current = current.join(response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise InvalidInputError(
                            f"{label}: fetching {current} returned HTTP {response.status_code}."
                        )
                    return _read_capped(response, settings.max_input_bytes, label)
            except BlockedAddressError as exc:
                raise InvalidInputError(f"{label}: refused to fetch {current}: {exc}.{hint}") from None
            except httpx.TimeoutException:
                raise InvalidInputError(
                    f"{label}: fetching {current} timed out; check the URL or download it yourself."
                ) from None
            except httpx.HTTPError as exc:
                raise InvalidInputError(f"{label}: fetching {current} failed: {exc}.") from None
        raise InvalidInputError(
            f"{label}: more than {settings.url_max_redirects} redirects fetching {url}."
        )


def _read_capped(response: httpx.Response, cap: int, label: str) -> bytes:
    too_big = InvalidInputError(
        f"{label}: the URL's body is larger than {cap} bytes; "
        "raise mmsdk.configure(max_input_bytes=...) if you trust it."
    )
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise too_big
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > cap:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)
