"""The one place where google-genai, httpx2, aiohttp and JSON failures become mmsdk errors.

What escapes google-genai (with retries off)::

    google.genai.errors.ClientError   4xx: 429 -> RateLimitError (Retry-After or RetryInfo),
                                      400 API_KEY_INVALID / 401 / 403 -> AuthenticationError,
                                      408 -> ProviderTimeoutError, others -> ProviderError
    google.genai.errors.ServerError   5xx (also an error event inside a stream)
                                      -> ProviderServerError (504 -> ProviderTimeoutError)
    httpx2.ReadTimeout & co.          -> ProviderTimeoutError (a hang, or a stall mid-stream)
    httpx2.RemoteProtocolError,
    ConnectError, aiohttp errors      -> ProviderConnectionError
    json.JSONDecodeError,
    UnknownApiResponseError,
    pydantic.ValidationError          -> ProviderServerError (malformed body)
    google.auth errors (Vertex AI)    -> ProviderUnavailableError / AuthenticationError

mmsdk errors raised inside (safety blocks, missing images) pass through.
Nothing raw leaves, and the raw exception is not chained, not even as
``__context__`` (:class:`mmsdk.plugin.ErrorBoundary`): httpx2's request objects
hold the ``x-goog-api-key`` header. A 429, 503 or 529 keeps its ``Retry-After``
as ``retry_after``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mmsdk.plugin import (
    AuthenticationError,
    ErrorBoundary,
    MMSDKError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    error_for_status,
    error_for_transport,
    parse_retry_after,
)

__all__ = ["gemini_errors", "translate"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def gemini_errors(provider: str) -> ErrorBoundary:
    """``with gemini_errors(provider):`` maps every SDK or transport exception raised inside."""
    return ErrorBoundary(provider, translate)


def translate(exc: BaseException, provider: str) -> MMSDKError | None:
    """The mmsdk error for *exc*, or ``None`` when it is not an SDK/transport failure."""
    from google.genai import errors as genai_errors

    if isinstance(exc, genai_errors.APIError):
        return _api_error(exc, provider)
    if isinstance(exc, genai_errors.UnknownApiResponseError):
        return ProviderServerError(f"{provider} sent a malformed response body.", provider=provider)
    transport = error_for_transport(exc, provider=provider)
    if transport is not None:
        return transport
    module = type(exc).__module__
    names = {cls.__name__ for cls in type(exc).__mro__}
    if module.startswith("pydantic") and "ValidationError" in names:
        # Valid JSON whose shape the SDK's response types reject.
        return ProviderServerError(f"{provider} sent a response the SDK could not read "
                                   f"({_first_line(exc)}).", provider=provider)
    if module.startswith("aiohttp"):
        # google-genai sends async requests through aiohttp when it is installed.
        if "ServerTimeoutError" in names:
            return ProviderTimeoutError(f"{provider} did not answer in time ({type(exc).__name__}).",
                                        provider=provider)
        return ProviderConnectionError(f"{provider} connection failed: {type(exc).__name__}: "
                                       f"{_first_line(exc)}", provider=provider)
    if module.startswith("google.auth"):
        return _auth_error(exc, names, provider)
    return None


def _api_error(exc: Any, provider: str) -> ProviderError:
    code: int | None = exc.code if isinstance(exc.code, int) else None
    status = exc.status or ""
    text = f"{status}: {exc.message}" if exc.message else str(status or code)
    details = exc.details if isinstance(exc.details, (dict, list)) else {}
    if code == 429:
        retry_after = parse_retry_after(_headers(exc)) or _retry_info(details)
        return RateLimitError(f"{provider} is rate limiting: {text}", provider=provider,
                              retry_after=retry_after)
    if code == 400 and ("API_KEY_INVALID" in repr(details) or "API key not valid" in text):
        return AuthenticationError(f"{provider} rejected the API key (400 API_KEY_INVALID): "
                                   f"{text}. Check GEMINI_API_KEY / GOOGLE_API_KEY.",
                                   provider=provider, status=400)
    return error_for_status(code, text, provider=provider, headers=_headers(exc))


def _headers(exc: Any) -> Mapping[str, str] | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        return {str(k): str(v) for k, v in dict(headers).items()}
    except (TypeError, ValueError):
        return None


def _retry_info(details: Any) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "37s"``)."""
    error = details.get("error", details) if isinstance(details, dict) else {}
    for item in error.get("details", []) if isinstance(error, dict) else []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            match = _DURATION.match(str(item.get("retryDelay", "")))
            if match:
                return float(match[1])
    return None


def _auth_error(exc: BaseException, names: set[str], provider: str) -> MMSDKError:
    if "DefaultCredentialsError" in names:
        return ProviderUnavailableError(
            f"{provider} found no Google Cloud credentials for Vertex AI.", provider=provider,
            fix="run 'gcloud auth application-default login' or set "
                "GOOGLE_APPLICATION_CREDENTIALS")
    if "TransportError" in names:
        return ProviderConnectionError(f"{provider} could not reach the Google auth service.",
                                       provider=provider)
    return AuthenticationError(f"{provider}: Google Cloud credentials were rejected "
                               f"({type(exc).__name__}).", provider=provider)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
