"""The mmsdk exception tree.

Every exception mmsdk raises derives from :class:`MMSDKError` and says what to
do about it. Messages pass through :func:`mmsdk._redact.redact`, so no API key
ever appears in them::

    MMSDKError                     code (``.code``; sub-codes in brackets)
    ├── InvalidInputError          "invalid_value" ["input_corrupt", "input_too_large",
    │                              "unsafe_url"]: bad image, video, option or value
    ├── UnknownProviderError       "unknown_provider" ["retired_model"]
    ├── CapabilityError            "unsupported" ["unsupported_option"]
    ├── ProviderUnavailableError   "unavailable" ["plugin_conflict", "plugin_broken"]:
    │                              missing package, key, GPU or weights
    ├── CancelledError             "cancelled": the caller cancelled the call (never retried)
    ├── ProviderError              "provider_error": the provider failed (routing acts on these)
    │   ├── RateLimitError             "rate_limited", transient; ``.retry_after`` seconds
    │   ├── ProviderTimeoutError       "timeout", transient (a passed deadline too)
    │   ├── ProviderConnectionError    "connection", transient
    │   ├── ProviderServerError        "server_error", transient (5xx, overloaded;
    │   │                              ``.retry_after`` from a 503 / 529)
    │   ├── AuthenticationError        "auth": bad or revoked key
    │   ├── ContentPolicyError         "content_policy": refused on policy grounds
    │   ├── OutputValidationError      "invalid_output": the answer did not match the schema
    │   └── CircuitOpenError           "circuit_open": skipped while its breaker is open
    └── AllProvidersFailedError    "all_failed": every candidate failed or was skipped;
                                   ``.attempts``, ``.errors``, ``.retry_after``

Every error has ``code`` (stable, machine-readable), ``status`` (the HTTP
status, or ``None``), ``retryable`` (a transient provider failure: the same
call may succeed later) and ``partial_text`` (what a stream had yielded when it
failed; ``None`` outside streams). Caller mistakes are never retried and never
a reason to fall back. Transient provider errors are retried and fall back;
other provider errors fall back without a retry (a content-policy refusal only
when the policy says so).

No error holds an API key: messages are redacted, and plugin boundaries raise
the mapped error with neither ``__cause__`` nor ``__context__`` pointing at the
SDK's exception (which holds the request, headers included).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from ._redact import redact

if TYPE_CHECKING:
    from ._types import Attempt, Usage

__all__ = [
    "AllProvidersFailedError",
    "AuthenticationError",
    "CancelledError",
    "CapabilityError",
    "CircuitOpenError",
    "ContentPolicyError",
    "InvalidInputError",
    "MMSDKError",
    "OutputValidationError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderServerError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "RateLimitError",
    "UnknownProviderError",
]


class MMSDKError(Exception):
    """Base of every mmsdk error.

    Attributes:
        code: a stable machine-readable code (the class's own, or one of its
            sub-codes listed in ``codes``).
        provider: the provider string involved, when there is one.
        status: the HTTP status code, when the failure had one.
        attempts: what routing tried before raising (empty if nothing was tried).
        partial_text: the text a stream had yielded before it failed (``None``
            when the error was not raised mid-stream).
    """

    code: str = "error"
    """The code when no sub-code applies."""
    codes: ClassVar[frozenset[str]] = frozenset()
    """The sub-codes the ``code=`` argument may give."""

    def __init__(self, message: str, *, provider: str | None = None, code: str | None = None,
                 status: int | None = None) -> None:
        self.message = redact(message)
        self.provider = provider
        self.status = status
        if code is not None and code != type(self).code:
            if code not in self.codes:
                allowed = ", ".join(sorted({type(self).code, *self.codes}))
                raise ValueError(f"{type(self).__name__} has no code {code!r}; use one of: "
                                 f"{allowed}.")
            self.code = code
        self.attempts: list[Attempt] = []
        self.partial_text: str | None = None
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed if tried again (a transient provider failure)."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidInputError(MMSDKError, ValueError):
    """An input (image, video, option, value) is wrong. Fix the call.

    Codes: ``"input_corrupt"`` (undecodable or truncated media), ``"input_too_large"``
    (byte or pixel caps), ``"unsafe_url"`` (refused address or scheme),
    ``"invalid_value"`` (anything else).
    """

    code = "invalid_value"
    codes = frozenset({"input_corrupt", "input_too_large", "unsafe_url"})


class UnknownProviderError(MMSDKError, LookupError):
    """No provider is registered under that name (``"unknown_provider"``), or the
    model is retired (``"retired_model"``).

    Attributes:
        suggestions: close matches among the known names.
    """

    code = "unknown_provider"
    codes = frozenset({"retired_model"})

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        suggestions: Sequence[str] = (),
        code: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, code=code)
        self.suggestions = list(suggestions)


class CapabilityError(MMSDKError):
    """The provider cannot do what was asked: ``"unsupported_option"`` when a
    first-class option cannot be honoured, else ``"unsupported"``."""

    code = "unsupported"
    codes = frozenset({"unsupported_option"})


class ProviderUnavailableError(MMSDKError):
    """The provider cannot run here: a package, key, GPU or weights are missing.

    Codes: ``"unavailable"``, or ``"plugin_conflict"`` / ``"plugin_broken"``
    when a plugin is the cause.

    Attributes:
        fix: the exact step that makes it available.
    """

    code = "unavailable"
    codes = frozenset({"plugin_conflict", "plugin_broken"})

    def __init__(self, message: str, *, provider: str | None = None, fix: str = "",
                 code: str | None = None) -> None:
        self.fix = redact(fix)
        full = f"{message} Fix: {fix}" if fix else message
        super().__init__(full, provider=provider, code=code)


class CancelledError(MMSDKError):
    """The caller cancelled the call (e.g. a local plugin's cancel event). Never retried."""

    code = "cancelled"


class ProviderError(MMSDKError):
    """The provider failed while serving the call.

    Attributes:
        status: the HTTP status code, when the failure had one.
        transient: whether retrying the same provider may succeed.
        retry_after: seconds the provider asked to wait before the next try
            (``Retry-After`` on a 429, 503 or 529), or ``None``.
        endpoint: the base URL that failed, when the plugin knows it.
    """

    code = "provider_error"
    transient = False

    def __init__(
        self, message: str, *, provider: str | None = None, status: int | None = None,
        retry_after: float | None = None, endpoint: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, code=code, status=status)
        self.retry_after = retry_after
        self.endpoint = redact(endpoint) if endpoint else None

    @property
    def retryable(self) -> bool:
        return self.transient


class RateLimitError(ProviderError):
    """Too many requests. ``retry_after`` holds the server's hint in seconds."""

    code = "rate_limited"
    transient = True

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = 429,
        retry_after: float | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status, retry_after=retry_after,
                         endpoint=endpoint)


class ProviderTimeoutError(ProviderError):
    """The provider did not answer in time, or the call's deadline passed.

    Attributes:
        queued: the time ran out waiting for a busy local model, not in the
            model itself (it does not count against the provider's health).
    """

    code = "timeout"
    transient = True
    queued = False


class ProviderConnectionError(ProviderError):
    """The connection to the provider failed or dropped."""

    code = "connection"
    transient = True


class ProviderServerError(ProviderError):
    """The provider had an internal error or is overloaded (5xx, 529)."""

    code = "server_error"
    transient = True


class AuthenticationError(ProviderError):
    """The provider rejected the credentials. Check the key's value and scope."""

    code = "auth"


class ContentPolicyError(ProviderError):
    """The provider refused the request or the answer on policy grounds."""

    code = "content_policy"


class OutputValidationError(ProviderError):
    """The model's answer did not validate against the requested schema.

    Attributes:
        text: the raw answer, for inspection.
        usage: what that answer consumed (it was billed; routing counts it in
            the call's ``usage.cost_usd``), where the provider reported it.
    """

    code = "invalid_output"
    usage: Usage | None = None

    def __init__(self, message: str, *, provider: str | None = None, text: str = "") -> None:
        super().__init__(message, provider=provider)
        self.text = text


class CircuitOpenError(ProviderError):
    """The provider was skipped without a call: its circuit breaker is open.

    Not transient (retrying at once is what the breaker prevents); ``retry_after``
    says when it lets a probe call through.
    """

    code = "circuit_open"

    def __init__(self, message: str, *, provider: str | None = None,
                 retry_after: float | None = None, endpoint: str | None = None) -> None:
        super().__init__(message, provider=provider, retry_after=retry_after, endpoint=endpoint)


class AllProvidersFailedError(MMSDKError):
    """Every candidate provider failed or was skipped.

    Attributes:
        attempts: one :class:`mmsdk.Attempt` per call made and per provider skipped.
        errors: one error per attempt that was not ``"ok"``, in the order of
            ``attempts``.
        retry_after: the soonest any of ``errors`` allows a retry, in seconds
            (``None`` when none gave one).
    """

    code = "all_failed"

    def __init__(self, attempts: Sequence[Attempt], capability: str = "", *,
                 errors: Sequence[MMSDKError] = ()) -> None:
        lines = [f"  - {a.provider}: {a.outcome}: {a.error}" for a in attempts]
        what = f" for {capability}" if capability else ""
        message = (
            f"No provider succeeded{what}. Attempts:\n"
            + "\n".join(lines)
            + "\nFix the first error above, or add another provider to the list."
        )
        super().__init__(message)
        self.attempts = list(attempts)
        self.errors = list(errors)
        hints = [hint for error in self.errors
                 if (hint := getattr(error, "retry_after", None)) is not None]
        self.retry_after: float | None = min(hints) if hints else None
