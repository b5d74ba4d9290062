"""The plugin's one error boundary: anthropic, httpx2 and json exceptions to mmsdk errors.

What escapes the SDK with its retries off (see FIELD_NOTES), and where it goes::

    anthropic.RateLimitError (429)            -> RateLimitError (.retry_after from headers)
    anthropic.InternalServerError (500),
      ServiceUnavailableError (503),
      OverloadedError (529)                   -> ProviderServerError
    anthropic.AuthenticationError (401),
      PermissionDeniedError (403)             -> AuthenticationError
    anthropic.BadRequestError (400)           -> ProviderError, or ContentPolicyError
                                                 when the API blocked it on policy grounds
    anthropic.APIStatusError with status 200  -> by the error event's ``type`` (an
      (an ``error`` event inside a stream)       overloaded_error is a ProviderServerError)
    anthropic.APITimeoutError                 -> ProviderTimeoutError
    anthropic.APIConnectionError              -> ProviderConnectionError
    anthropic.APIResponseValidationError      -> ProviderServerError
    raw httpx2.ReadTimeout mid-stream         -> ProviderTimeoutError
    raw httpx2.RemoteProtocolError mid-stream -> ProviderConnectionError
    json.JSONDecodeError (malformed body)     -> ProviderServerError
    any other anthropic.AnthropicError        -> ProviderError

A 429, 503 or 529 keeps its ``retry-after-ms`` / ``Retry-After`` as ``retry_after``.
The mapped error is raised by :class:`mmsdk.plugin.ErrorBoundary`, with no
``__cause__`` and no ``__context__``: the SDK's exception holds the request,
whose ``x-api-key`` header is the key.
"""

from __future__ import annotations

import re
from typing import Any

from mmsdk.plugin import (
    ErrorBoundary,
    MMSDKError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    error_for_status,
    parse_retry_after,
)

__all__ = ["boundary", "map_exception"]

# The ``error.type`` of an error body (or stream event), as the status it stands for.
_STATUS_FOR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_POLICY = re.compile(r"content[ _-]?(filter|policy)|usage polic|acceptable use|safety", re.I)


def map_exception(exc: BaseException, provider: str) -> MMSDKError | None:
    """The mmsdk error for *exc*, or ``None`` when it is not an SDK, transport or json error."""
    import anthropic

    if isinstance(exc, anthropic.APIStatusError):
        return _status_error(exc, provider)
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderTimeoutError(f"{provider} did not answer in time. Raise Policy(timeout=...) "
                                    "or try later.", provider=provider)
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderConnectionError(f"{provider} connection failed: {_cause(exc)}",
                                       provider=provider)
    if isinstance(exc, anthropic.APIResponseValidationError):
        return error_for_status(500, f"the response did not match the API's schema: {exc.message}",
                                provider=provider)
    if isinstance(exc, anthropic.AnthropicError):
        return ProviderError(f"{provider} failed: {type(exc).__name__}: {exc}", provider=provider)
    return None  # the kit's boundary maps transport and json errors


def _cause(exc: BaseException) -> str:
    """The transport error under an APIConnectionError, which itself only says 'Connection error.'."""
    cause = exc.__cause__ or exc.__context__
    return f"{type(cause).__name__}: {cause}" if cause else str(exc)


def _status_error(exc: Any, provider: str) -> ProviderError:
    status: int = exc.status_code
    kind = exc.type if isinstance(exc.type, str) else None
    if status < 400:
        # An ``error`` event inside a 200 stream: its type says what happened.
        status = _STATUS_FOR_TYPE.get(kind or "", 500)
    message = exc.api_message or exc.message
    if kind:
        message = f"{kind}: {message}"
    headers = dict(exc.response.headers.items()) if exc.response is not None else None
    policy = status == 400 and bool(_POLICY.search(message))
    return error_for_status(status, message, provider=provider,
                            retry_after=parse_retry_after(headers), policy=policy)


def boundary(provider: str) -> ErrorBoundary:
    """``with boundary(provider):`` around every SDK call and stream iteration."""
    return ErrorBoundary(provider, map_exception)
