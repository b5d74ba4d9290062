"""Fetch URL inputs safely with httpx.

Only http and https; connect and read timeouts plus a total time limit
(``url_total_timeout``, and the caller's deadline when there is one) that every
socket read and write is held to, so a server dripping one byte at a time
gains nothing; a byte cap enforced while streaming; and no connection to
loopback, private, link-local, multicast, reserved or cloud-metadata addresses
unless the settings allow it. The address check runs after DNS resolution,
inside the connection itself (so a host that resolves differently the second
time gains nothing), and again for every redirect hop, which mmsdk follows by
hand. Malformed URLs, odd IPv4 spellings (``0177.0.0.1``, ``2130706433``) and
redirects without a target are refused. No message names a URL's password.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import time
import urllib.parse
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from ._errors import InvalidInputError, MMSDKError, ProviderTimeoutError
from ._media import redact_url
from ._settings import Settings

__all__ = ["fetch_url", "check_address"]

_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}
# Host names every part of which is a number (decimal, octal or hex): the
# resolver reads them as IPv4 addresses in forms people do not recognise.
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*\.?$", re.I)


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


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every read and write ends by the fetch's total deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def _left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the total time limit passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname,
                                      self._left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolve the host, refuse forbidden addresses, connect to the checked one."""

    def __init__(self, allow_private: bool, allow_hosts: Iterable[str], deadline: float) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private
        self._allow_hosts = {h.lower() for h in allow_hosts}
        self._deadline = deadline

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
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not permitted:
            for address in addresses:
                reason = check_address(address)
                if reason:
                    raise BlockedAddressError(f"{host} resolves to {reason}")
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the total time limit passed")
        stream = self._inner.connect_tcp(
            addresses[0], port, timeout=left if timeout is None else min(timeout, left),
            local_address=local_address, socket_options=socket_options,
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise BlockedAddressError("unix sockets are not allowed for URL inputs")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, settings: Settings, deadline: float) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_GuardedBackend(settings.allow_private_urls,
                                            settings.url_allow_hosts, deadline),
        )


def fetch_url(url: str, settings: Settings, *, label: str,
              deadline: float | None = None) -> bytes:
    """Download *url* under the safety rules above; return its bytes.

    Args:
        url: an http(s) URL.
        settings: caps, timeouts and address rules.
        label: how errors name the input.
        deadline: the caller's deadline, in ``time.monotonic()`` seconds. The
            fetch ends by the earlier of it and ``url_total_timeout`` from now.

    Raises:
        InvalidInputError: a malformed, refused, failing, too large or too
            slow (past ``url_total_timeout``) URL.
        ProviderTimeoutError: the caller's deadline passed while fetching.
    """
    started = time.monotonic()
    limit = started + settings.url_total_timeout
    caller_bound = deadline is not None and deadline < limit
    if caller_bound:
        assert deadline is not None
        limit = deadline
        if deadline <= started:
            raise _deadline_passed(label)
    # Errors are built inside the except blocks but raised outside them, so no
    # exception chain (__context__ included) carries the URL or its password.
    error: MMSDKError
    try:
        return _fetch(url, settings, label, limit)
    except httpx.TimeoutException:
        if time.monotonic() >= limit - 0.01:
            error = _deadline_passed(label) if caller_bound else InvalidInputError(
                f"{label}: fetching {redact_url(url)} took longer than "
                f"url_total_timeout={settings.url_total_timeout:g}s; check the URL, download "
                "it yourself, or raise mmsdk.configure(url_total_timeout=...).")
        else:
            error = InvalidInputError(f"{label}: fetching {redact_url(url)} timed out; check "
                                      "the URL or download it yourself.")
    except _Refused as refused:
        error = InvalidInputError(refused.message, code=refused.code)
    raise error


def _deadline_passed(label: str) -> ProviderTimeoutError:
    return ProviderTimeoutError(
        f"The call's deadline passed while fetching inputs ({label}); raise "
        "Policy(deadline=...) or pass smaller or faster inputs.")


class _Refused(Exception):
    """An error message about the URL, raised as ``InvalidInputError`` with no chain."""

    def __init__(self, message: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _parse(url: str | httpx.URL, label: str) -> httpx.URL:
    shown = redact_url(str(url))
    try:
        host = urllib.parse.urlsplit(str(url)).hostname or ""
    except ValueError:
        host = ""  # httpx says what is wrong below
    _check_numeric_host(host, label, shown)
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        port = parsed.port
        host = parsed.host
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        # The parser's reason may quote part of the userinfo: only show it when there is none.
        reason = "" if "@" in str(url) else f" ({exc})"
        raise _Refused(f"{label}: {shown} is not a valid URL{reason}.") from None
    if parsed.scheme not in {"http", "https"}:
        raise _Refused(f"{label}: URL scheme {parsed.scheme!r} is not allowed; use http or "
                       "https.", code="unsafe_url")
    if not host:
        raise _Refused(f"{label}: {shown} has no host name.")
    if port is not None and not 0 < port < 65536:
        raise _Refused(f"{label}: {shown} has an invalid port {port}.")
    _check_numeric_host(host, label, shown)
    return parsed


def _check_numeric_host(host: str, label: str, shown: str) -> None:
    if _NUMERIC_HOST.match(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise _Refused(
                f"{label}: {shown} spells its IPv4 address in a non-standard form (octal, "
                "hex or fewer than four parts); write it as four decimal numbers, a.b.c.d.",
                code="unsafe_url",
            ) from None


def _fetch(url: str, settings: Settings, label: str, limit: float) -> bytes:
    hint = (
        " To allow it, call mmsdk.configure(allow_private_urls=True) or list the host "
        "in mmsdk.configure(url_allow_hosts=(...))."
    )
    current = _parse(url, label)
    # Per-read and connect limits as configured; _DeadlineStream holds each one to the total.
    timeout = httpx.Timeout(settings.url_read_timeout, connect=settings.url_connect_timeout)
    with httpx.Client(transport=_GuardedTransport(settings, limit), timeout=timeout,
                      follow_redirects=False, trust_env=False) as client:
        for _ in range(settings.url_max_redirects + 1):
            shown = redact_url(str(current))
            try:
                with client.stream("GET", current) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise _Refused(f"{label}: {shown} answered HTTP "
                                           f"{response.status_code} (a redirect) with no "
                                           "Location header.")
                        try:
                            target = current.join(location)
                        except (httpx.InvalidURL, ValueError, TypeError):
                            target = None
                        if target is None:
                            raise _Refused(f"{label}: {shown} redirects to an invalid URL.")
                        current = _parse(target, label)
                        continue
                    if response.status_code >= 400:
                        raise _Refused(
                            f"{label}: fetching {shown} returned HTTP {response.status_code}."
                        )
                    return _read_capped(response, settings.max_input_bytes, label, limit)
            except BlockedAddressError as exc:
                raise _Refused(f"{label}: refused to fetch {shown}: {exc}.{hint}",
                               code="unsafe_url") from None
            except httpx.TimeoutException:
                raise
            except httpx.HTTPError as exc:
                raise _Refused(f"{label}: fetching {shown} failed: "
                               f"{redact_url(str(exc)).rstrip('.')}.") from None
    raise _Refused(
        f"{label}: more than {settings.url_max_redirects} redirects fetching {redact_url(url)}."
    )


def _read_capped(response: httpx.Response, cap: int, label: str, limit: float) -> bytes:
    too_big = _Refused(
        f"{label}: the URL's body is larger than {cap} bytes; "
        "raise mmsdk.configure(max_input_bytes=...) if you trust it.",
        code="input_too_large",
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
        if time.monotonic() > limit:  # the socket reads are held to it too; belt and braces
            raise httpx.ReadTimeout("the total time limit passed")
    return b"".join(chunks)

