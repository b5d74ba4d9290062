"""The plugin's one error boundary: openai SDK, httpx2 and json exceptions to mmsdk errors.

Mapping (retries are off in the SDK; the mmsdk router retries and falls back)::

    openai.RateLimitError (429)          -> RateLimitError (.retry_after from Retry-After)
    openai.InternalServerError (5xx)     -> ProviderServerError
    openai.APITimeoutError               -> ProviderTimeoutError
    openai.APIConnectionError            -> ProviderConnectionError
    openai.AuthenticationError (401/403) -> AuthenticationError
    openai.BadRequestError, code content_policy_violation / moderation_blocked
                                         -> ContentPolicyError
    other openai.APIStatusError          -> ProviderError (by status)
    openai.APIError (error event in a stream) -> ProviderServerError, RateLimitError or
                                            ContentPolicyError by its code
    httpx2.* / json.JSONDecodeError      -> via mmsdk.plugin.error_for_transport

Mapped errors are raised by :class:`mmsdk.plugin.ErrorBoundary`, with no
``__cause__`` and no ``__context__``: the SDK's exception carries the request
(headers included) and unredacted text, which must not stay reachable from the
error. A 429, 503 or 529 keeps its ``Retry-After`` / ``retry-after-ms`` as
``retry_after``; every mapped error names the base URL that failed (``endpoint``).
"""

from __future__ import annotations

from typing import Any

import openai

from mmsdk.plugin import (
    ContentPolicyError,
    ErrorBoundary,
    MMSDKError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    ProviderTimeoutError,
    RateLimitError,
    error_for_status,
    error_for_transport,
    parse_retry_after,
)

__all__ = ["POLICY_CODES", "boundary", "endpoint_of", "translate"]

POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked", "content_filter"})


def boundary(provider: str) -> ErrorBoundary:
    """``with boundary(provider):`` around every SDK call: the kit's boundary with :func:`translate`."""
    return ErrorBoundary(provider, translate)


def _detail(exc: openai.APIError) -> tuple[str, str | None, str | None]:
    """The API's own message, code and type (``body`` is the inner ``error`` object)."""
    body: Any = exc.body
    message = exc.message
    code, kind = exc.code, getattr(exc, "type", None)
    if isinstance(body, dict):
        message = str(body.get("message") or message)
        code = code or (str(body["code"]) if body.get("code") else None)
        kind = kind or (str(body["type"]) if body.get("type") else None)
    return message, code, kind


# Operation paths the plugin calls: what is left of a request URL without them is the base URL.
_OPERATIONS = ("/chat/completions", "/images/generations", "/images/edits", "/embeddings")


def endpoint_of(exc: BaseException) -> str | None:
    """The base URL the failed request went to (no userinfo, no query), if it is known."""
    try:
        request = getattr(exc, "request", None)  # httpx2 raises RuntimeError when unset
    except RuntimeError:
        return None
    url: Any = getattr(request, "url", None)
    try:
        path = str(url.path)
        base = f"{url.scheme}://{url.netloc.decode('ascii')}"
    except (AttributeError, UnicodeDecodeError):
        return None
    for operation in _OPERATIONS:
        if path.endswith(operation):
            path = path[:-len(operation)]
            break
    return base + path.rstrip("/")


def translate(exc: BaseException, provider: str) -> MMSDKError | None:
    """The mmsdk error for *exc*, or ``None`` if it is not an SDK/transport/decoding error."""
    endpoint = endpoint_of(exc)
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeoutError(f"{provider} did not answer within the timeout. Raise "
                                    "Policy(timeout=...) or try later.", provider=provider,
                                    endpoint=endpoint)
    if isinstance(exc, openai.APIConnectionError):
        # The SDK's own message is only 'Connection error.': say what failed (refused, DNS,
        # TLS), as the other cloud plugins do.
        cause = exc.__cause__ or exc.__context__
        why = f"{type(cause).__name__}: {cause}" if cause is not None else exc.message
        return ProviderConnectionError(f"{provider} connection failed: {why}",
                                       provider=provider, endpoint=endpoint)
    if isinstance(exc, openai.APIStatusError):
        message, code, _ = _detail(exc)
        status = exc.status_code
        if code:
            message = f"{message} [code: {code}]"
        return error_for_status(status, message, provider=provider,
                                retry_after=parse_retry_after(exc.response.headers),
                                policy=code in POLICY_CODES, endpoint=endpoint)
    if isinstance(exc, openai.APIError):  # no HTTP status: an error event inside a stream
        message, code, kind = _detail(exc)
        tags = f"{code or ''} {kind or ''}"
        if code in POLICY_CODES or kind in POLICY_CODES:
            return ContentPolicyError(f"{provider} refused on content-policy grounds: {message}",
                                      provider=provider, endpoint=endpoint)
        if "rate_limit" in tags:
            return RateLimitError(f"{provider} is rate limiting: {message}", provider=provider,
                                  endpoint=endpoint)
        return ProviderServerError(f"{provider} reported an error in the stream: {message}"
                                   f"{f' [{tags.strip()}]' if tags.strip() else ''}",
                                   provider=provider, endpoint=endpoint)
    if isinstance(exc, openai.OpenAIError):
        return ProviderError(f"{provider} failed in the openai SDK: {type(exc).__name__}: {exc}",
                             provider=provider, endpoint=endpoint)
    mapped = error_for_transport(exc, provider=provider)
    if mapped is not None and endpoint is not None:
        mapped.endpoint = endpoint
    return mapped
