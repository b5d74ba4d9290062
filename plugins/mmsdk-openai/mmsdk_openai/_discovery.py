"""What an OpenAI-compatible endpoint serves, asked of its ``GET /v1/models`` once.

Only endpoints registered without ``models=`` ask, and only when the list is
needed: a bare ``"NAME"`` (its default model is the first one listed) or
``mmsdk providers``; never at registration and never for ``"NAME:MODEL"``.
The request uses httpx (not the openai SDK, so listing providers imports no
SDK), is bounded by :data:`DISCOVERY_TIMEOUT` seconds for all the base URLs
tried in turn, and reads at most 1 MiB. A server that does not answer, answers
with an error, or lists nothing leaves the endpoint unavailable with that
reason: :data:`UNKNOWN_MODEL` stands in for its model, whose availability
check says what went wrong. The server is asked again at the next need once
:data:`RETRY_AFTER` seconds have passed; a list, once had, is kept.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Mapping as MappingABC
from typing import Any
from urllib.parse import urlsplit

from mmsdk.plugin import Availability, Capability

__all__ = ["DISCOVERY_TIMEOUT", "RETRY_AFTER", "UNKNOWN_MODEL", "DefaultModel", "Discovery",
           "shown_url"]

logger = logging.getLogger("mmsdk.openai")

DISCOVERY_TIMEOUT = 5.0
RETRY_AFTER = 30.0
UNKNOWN_MODEL = "(models unknown)"
_MAX_BYTES = 1 << 20


def shown_url(url: str) -> str:
    """*url* without any ``user:password@`` part, for listings and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host).geturl()


class _Failed(Exception):
    """Why one base URL gave no model list."""


class Discovery:
    """The models an endpoint's servers list, asked once (lazily, bounded, thread-safe).

    Args:
        urls: the endpoint's base URLs (``.../v1``), asked in order until one lists models.
        key: returns the bearer token, read when asking.
    """

    def __init__(self, urls: Sequence[str], key: Callable[[], str]) -> None:
        self._urls = tuple(urls)
        self._key = key
        self._lock = threading.Lock()
        self._models: tuple[str, ...] | None = None
        self._error = ""
        self._failed_at: float | None = None

    def __repr__(self) -> str:
        state = self._models if self._models is not None else (self._error or "not asked")
        return f"<Discovery {', '.join(map(shown_url, self._urls))}: {state}>"

    @property
    def error(self) -> str:
        """Why the last attempt found no models ("" when none failed)."""
        return self._error

    def models(self) -> tuple[str, ...]:
        """The listed models, asking the server the first time; ``()`` when it could not say."""
        if self._models is not None:
            return self._models
        with self._lock:  # one request at a time; the others wait for its answer
            if self._models is not None:
                return self._models
            if self._failed_at is not None and \
                    time.monotonic() - self._failed_at < RETRY_AFTER:
                return ()
            try:
                self._models = self._ask()
            except _Failed as failed:
                self._error, self._failed_at = str(failed), time.monotonic()
                logger.warning("mmsdk.openai: %s", self._error)
                return ()
            self._error, self._failed_at = "", None
            return self._models

    def availability(self) -> Availability:
        """Why the endpoint's placeholder model cannot run; asks nothing (:meth:`models` did)."""
        if self._models is not None:  # listed since the placeholder was handed out
            return Availability.no("its server lists models now; call again", "")
        return Availability.no(self._error or "its server has not listed its models yet",
                               "start the server (or check its URL), or pass models=[...] "
                               "to add_endpoint (or NAME#MODEL in MMSDK_OPENAI_COMPATIBLE)")

    def _ask(self) -> tuple[str, ...]:
        import httpx  # a core dependency; imported only when an endpoint is asked

        deadline = time.monotonic() + DISCOVERY_TIMEOUT
        reasons: list[str] = []
        headers = {"Authorization": f"Bearer {self._key()}", "Accept": "application/json"}
        for url in self._urls:
            where = f"GET {shown_url(url)}/models"
            left = deadline - time.monotonic()
            if left <= 0:
                reasons.append(f"{where}: not asked, the {DISCOVERY_TIMEOUT:g} s were spent")
                continue
            try:
                with httpx.Client(timeout=left, follow_redirects=False) as client, \
                        client.stream("GET", f"{url}/models", headers=headers) as response:
                    if response.status_code != 200:
                        raise _Failed(f"{where} answered HTTP {response.status_code}")
                    body = _read(response, deadline)
                found = _model_ids(json.loads(body))
                if not found:
                    raise _Failed(f"{where} listed no models")
                return found
            except _Failed as failed:
                reasons.append(str(failed))
            except httpx.TimeoutException:
                reasons.append(f"{where} did not answer within {DISCOVERY_TIMEOUT:g} s")
            except httpx.HTTPError as exc:  # the message may name the URL: the type says enough
                reasons.append(f"{where} failed ({type(exc).__name__})")
            except (ValueError, TypeError, KeyError, AttributeError):
                reasons.append(f"{where} did not answer with a model list")
        raise _Failed("; ".join(reasons))


def _read(response: Any, deadline: float) -> bytes:
    chunks, total = [], 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > _MAX_BYTES:
            raise _Failed("the model list is larger than 1 MiB")
        if time.monotonic() > deadline:
            raise _Failed(f"the model list took longer than {DISCOVERY_TIMEOUT:g} s to arrive")
        chunks.append(chunk)
    return b"".join(chunks)


def _model_ids(body: Any) -> tuple[str, ...]:
    """``{"object": "list", "data": [{"id": ...}, ...]}`` -> the ids, in order, once each."""
    return tuple(dict.fromkeys(str(entry["id"]) for entry in body["data"]
                               if isinstance(entry, dict) and entry.get("id")))


class DefaultModel(MappingABC[Capability, str]):
    """What bare ``"NAME"`` means for each offered capability: the first model listed.

    Its keys (the capabilities) need no request; reading a value asks the
    server, once. :data:`UNKNOWN_MODEL` when it could not say.
    """

    def __init__(self, discovery: Discovery, capabilities: Sequence[Capability]) -> None:
        self._discovery = discovery
        self._capabilities = tuple(capabilities)

    def __getitem__(self, capability: Capability) -> str:
        if capability not in self._capabilities:
            raise KeyError(capability)
        models = self._discovery.models()
        return models[0] if models else UNKNOWN_MODEL

    def __contains__(self, capability: object) -> bool:  # no request for a membership test
        return capability in self._capabilities

    def __iter__(self) -> Iterator[Capability]:
        return iter(self._capabilities)

    def __len__(self) -> int:
        return len(self._capabilities)
