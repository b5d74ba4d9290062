"""Helpers plugin authors share: availability checks, error mapping, VLM classification."""

from __future__ import annotations

import email.utils
import importlib.util
import json
import math
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any, NoReturn

from ._errors import (
    AuthenticationError,
    ContentPolicyError,
    MMSDKError,
    OutputValidationError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    ProviderTimeoutError,
    RateLimitError,
)
from ._types import Availability

__all__ = [
    "classification_prompt",
    "classification_schema",
    "error_for_status",
    "error_for_transport",
    "first_env",
    "host_reachable",
    "missing_packages",
    "parse_retry_after",
    "raise_mapped",
    "scores_from_answer",
]


def missing_packages(*modules: str, install: str) -> Availability:
    """``Availability.no`` naming *install* if any module is not importable, else yes.

    Uses ``importlib.util.find_spec``: nothing is imported.
    """
    missing = []
    for module in modules:
        try:
            if importlib.util.find_spec(module) is None:
                missing.append(module)
        except (ImportError, ValueError):
            missing.append(module)
    if missing:
        return Availability.no(f"package(s) {', '.join(missing)} not installed",
                               f"pip install {install}")
    return Availability.yes()


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
_probes: dict[tuple[str, int], tuple[float, bool]] = {}
_probes_lock = threading.Lock()


def host_reachable(host: str, port: int, *, timeout: float = 1.5, remember: float = 60.0) -> bool:
    """Whether one TCP connect to *host*:*port* succeeds; the answer is remembered.

    For availability checks that must fail fast where a client library would
    retry for many seconds (a model hub with no network). Behind a proxy a
    direct connect proves nothing, so the host is assumed reachable.
    """
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return True
    target = (host, port)
    with _probes_lock:
        known = _probes.get(target)
    if known is not None and time.monotonic() - known[0] < remember:
        return known[1]
    try:
        with socket.create_connection(target, timeout=timeout):
            reachable = True
    except OSError:
        reachable = False
    with _probes_lock:
        _probes[target] = (time.monotonic(), reachable)
    return reachable


def first_env(*names: str) -> str | None:
    """The value of the first of *names* that is set and non-empty."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` / ``Retry-After`` (seconds or HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def error_for_status(status: int | None, message: str, *, provider: str,
                     retry_after: float | None = None, policy: bool = False,
                     headers: Mapping[str, str] | None = None,
                     endpoint: str | None = None) -> ProviderError:
    """Map an HTTP status from a provider to the mmsdk error a router acts on.

    Args:
        status: the HTTP status code.
        message: the provider's message (it is redacted on the way in).
        provider: the provider string.
        retry_after: the server's hint in seconds; kept on a 429, 503 or 529.
        policy: the body says this is a content-policy refusal.
        headers: the response headers: ``retry-after-ms`` / ``Retry-After`` give
            *retry_after* when it is not passed.
        endpoint: the base URL that answered, when known.
    """
    if retry_after is None and status in _RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(headers)
    if policy:
        return ContentPolicyError(f"{provider} refused on content-policy grounds: {message}",
                                  provider=provider, status=status, endpoint=endpoint)
    if status == 429:
        return RateLimitError(f"{provider} is rate limiting: {message}", provider=provider,
                              retry_after=retry_after, endpoint=endpoint)
    if status in (401, 403):
        return AuthenticationError(f"{provider} rejected the credentials ({status}): {message}. "
                                   "Check the API key and its permissions.", provider=provider,
                                   status=status, endpoint=endpoint)
    if status in (408, 504):
        return ProviderTimeoutError(f"{provider} timed out ({status}): {message}",
                                    provider=provider, status=status, endpoint=endpoint)
    if status is not None and status >= 500:
        return ProviderServerError(
            f"{provider} had a server error ({status}): {message}", provider=provider,
            status=status, endpoint=endpoint,
            retry_after=retry_after if status in _RETRY_AFTER_STATUSES else None)
    return ProviderError(f"{provider} rejected the request ({status}): {message}",
                         provider=provider, status=status, endpoint=endpoint)


# The statuses whose Retry-After routing honours (DESIGN: 429, 503 and Anthropic's 529).
_RETRY_AFTER_STATUSES = frozenset({429, 503, 529})


# Exceptions from these packages may hold a request (headers, so keys) or a response.
_NETWORK_PACKAGES = frozenset({"aiohttp", "anthropic", "google", "httpcore", "httpx", "httpx2",
                               "huggingface_hub", "openai", "requests", "urllib3"})


def from_network(exc: BaseException) -> bool:
    """Whether *exc* or any exception in its chain comes from a network client."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        package = type(current).__module__.partition(".")[0]
        attributes = getattr(current, "__dict__", {})
        if package in _NETWORK_PACKAGES or any(
                name in attributes for name in ("request", "response", "_request")):
            return True
        pending += [current.__cause__, current.__context__]
    return False


def raise_mapped(error: MMSDKError, cause: BaseException | None = None) -> NoReturn:
    """Raise a plugin's mapped *error*, chained to *cause* only when that is safe.

    For a plugin's error boundary. *cause* becomes ``__cause__`` (its traceback
    is worth keeping: a torch or PIL failure) unless it, or any exception in
    its chain, comes from a network client (SDK, httpx, requests, the hub),
    whose exceptions hold the request and its headers, so the API key. Without
    a safe *cause*, *error* is raised with neither ``__cause__`` nor
    ``__context__``: ``raise mapped from None`` is not enough, since it only
    hides the exception being handled from tracebacks, and an ``except``
    block or a ``with`` block's ``__exit__`` sets ``__context__`` to it
    whatever the ``raise`` says. A bare ``raise`` of the caught error does not
    set it again.
    """
    if cause is not None and not from_network(cause):
        raise error from cause
    try:
        raise error from None
    except MMSDKError as raised:
        raised.__context__ = None
        raise


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def error_for_transport(exc: BaseException, *, provider: str) -> ProviderError | None:
    """Map a raw transport or decoding exception (httpx, httpx2, json) to an mmsdk error.

    Returns ``None`` when *exc* is none of those, so the caller can re-raise it.
    """
    names = _names(exc)
    module = type(exc).__module__.split(".")[0]
    if isinstance(exc, json.JSONDecodeError) or "UnknownApiResponseError" in names:
        return ProviderServerError(f"{provider} sent a malformed response body: {exc}",
                                   provider=provider)
    if module.startswith("httpx") or module == "httpcore":
        if "TimeoutException" in names or "TimeoutError" in names:
            return ProviderTimeoutError(f"{provider} did not answer in time ({type(exc).__name__})."
                                        " Raise Policy(timeout=...) or try later.", provider=provider)
        return ProviderConnectionError(f"{provider} connection failed: {type(exc).__name__}: {exc}",
                                       provider=provider)
    if isinstance(exc, TimeoutError):
        return ProviderTimeoutError(f"{provider} did not answer in time.", provider=provider)
    if isinstance(exc, ConnectionError):
        return ProviderConnectionError(f"{provider} connection failed: {exc}", provider=provider)
    return None


def classification_schema(labels: list[str], multi_label: bool) -> dict[str, Any]:
    """A JSON schema whose answer names labels from an enum (one, or each with a yes/no)."""
    if multi_label:
        return {
            "type": "object",
            "properties": {"present": {"type": "array", "items": {"type": "string",
                                                                   "enum": labels}}},
            "required": ["present"],
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": labels}},
        "required": ["label"],
        "additionalProperties": False,
    }


def classification_prompt(labels: list[str], multi_label: bool) -> str:
    """The instruction a VLM gets to classify an image against *labels*."""
    listed = ", ".join(json.dumps(label) for label in labels)
    if multi_label:
        return (f"Which of these labels apply to the image? Labels: {listed}. Answer with JSON "
                '{"present": [labels that apply]} and nothing else.')
    return (f"Classify the image. Pick exactly one label from: {listed}. Answer with JSON "
            '{"label": "<one label>"} and nothing else.')


def scores_from_answer(text: str, labels: list[str], multi_label: bool,
                       logprobs: Mapping[str, float] | None = None) -> dict[str, float]:
    """Turn a VLM's classification answer into scores.

    With *logprobs* (label → log-probability of the label's first token) the
    scores come from them (softmax, or sigmoid-like per label when
    *multi_label*). Without them the documented rule is: chosen labels score
    1.0, the others 0.0.
    """
    if logprobs:
        present = {label: logprobs.get(label, -math.inf) for label in labels}
        if multi_label:
            return {label: math.exp(min(0.0, lp)) if lp > -math.inf else 0.0
                    for label, lp in present.items()}
        top = max(present.values())
        weights = {label: math.exp(lp - top) if lp > -math.inf else 0.0
                   for label, lp in present.items()}
        total = sum(weights.values()) or 1.0
        return {label: weight / total for label, weight in weights.items()}
    try:
        start, end = text.index("{"), text.rindex("}") + 1
        answer = json.loads(text[start:end])
    except (ValueError, json.JSONDecodeError):
        raise OutputValidationError(f"The model's classification answer is not JSON: "
                                    f"{text[:200]!r}.", text=text) from None
    chosen = set(answer.get("present", [])) if multi_label else {answer.get("label")}
    return {label: 1.0 if label in chosen else 0.0 for label in labels}
