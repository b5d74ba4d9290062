"""The mmsdk exception tree.

Every exception mmsdk raises derives from :class:`MMSDKError` and says what to
do about it. Messages pass through :func:`mmsdk._redact.redact`, so no API key
ever appears in them::

    MMSDKError
    ├── InvalidInputError          caller mistake: bad image, video, option or value
    ├── UnknownProviderError       caller mistake: no such provider / retired model
    ├── CapabilityError            caller mistake: the provider cannot do that
    ├── ProviderUnavailableError   environment: missing package, key, GPU or weights
    ├── CancelledError             the caller cancelled the call (never retried)
    ├── ProviderError              the provider failed (routing acts on these)
    │   ├── RateLimitError             transient; ``.retry_after`` seconds
    │   ├── ProviderTimeoutError       transient
    │   ├── ProviderConnectionError    transient
    │   ├── ProviderServerError        transient (5xx, overloaded)
    │   ├── AuthenticationError        bad or revoked key
    │   ├── ContentPolicyError         the provider refused on policy grounds
    │   └── OutputValidationError      the answer did not match the requested schema
    └── AllProvidersFailedError    every candidate failed or was skipped; ``.attempts``

Caller mistakes are never retried and never a reason to fall back. Transient
provider errors are retried and fall back; other provider errors fall back
without a retry (a content-policy refusal only when the policy says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._redact import redact

if TYPE_CHECKING:
    from ._types import Attempt

__all__ = [
    "AllProvidersFailedError",
    "AuthenticationError",
    "CancelledError",
    "CapabilityError",
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
        provider: the provider string involved, when there is one.
        attempts: what routing tried before raising (empty if nothing was tried).
    """

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        self.message = redact(message)
        self.provider = provider
        self.attempts: list[Attempt] = []
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidInputError(MMSDKError, ValueError):
    """An input (image, video, option, value) is wrong. Fix the call."""


class UnknownProviderError(MMSDKError, LookupError):
    """No provider is registered under that name, or the model is retired.

    Attributes:
        suggestions: close matches among the known names.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        suggestions: Sequence[str] = (),
    ) -> None:
        super().__init__(message, provider=provider)
        self.suggestions = list(suggestions)


class CapabilityError(MMSDKError):
    """The provider cannot do what was asked (capability or option)."""


class ProviderUnavailableError(MMSDKError):
    """The provider cannot run here: a package, key, GPU or weights are missing.

    Attributes:
        fix: the exact step that makes it available.
    """

    def __init__(self, message: str, *, provider: str | None = None, fix: str = "") -> None:
        self.fix = redact(fix)
        full = f"{message} Fix: {fix}" if fix else message
        super().__init__(full, provider=provider)


class CancelledError(MMSDKError):
    """The caller cancelled the call (e.g. a local plugin's cancel event). Never retried."""


class ProviderError(MMSDKError):
    """The provider failed while serving the call.

    Attributes:
        status: the HTTP status code, when the failure had one.
        transient: whether retrying the same provider may succeed.
    """

    transient = False

    def __init__(
        self, message: str, *, provider: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.status = status


class RateLimitError(ProviderError):
    """Too many requests. ``retry_after`` holds the server's hint in seconds."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


class ProviderTimeoutError(ProviderError):
    """The provider did not answer in time."""

    transient = True


class ProviderConnectionError(ProviderError):
    """The connection to the provider failed or dropped."""

    transient = True


class ProviderServerError(ProviderError):
    """The provider had an internal error or is overloaded (5xx, 529)."""

    transient = True


class AuthenticationError(ProviderError):
    """The provider rejected the credentials. Check the key's value and scope."""


class ContentPolicyError(ProviderError):
    """The provider refused the request or the answer on policy grounds."""


class OutputValidationError(ProviderError):
    """The model's answer did not validate against the requested schema.

    Attributes:
        text: the raw answer, for inspection.
    """

    def __init__(self, message: str, *, provider: str | None = None, text: str = "") -> None:
        super().__init__(message, provider=provider)
        self.text = text


class AllProvidersFailedError(MMSDKError):
    """Every candidate provider failed or was skipped.

    Attributes:
        attempts: one :class:`mmsdk.Attempt` per call made and per provider skipped.
    """

    def __init__(self, attempts: Sequence[Attempt], capability: str = "") -> None:
        lines = [f"  - {a.provider}: {a.outcome}: {a.error}" for a in attempts]
        what = f" for {capability}" if capability else ""
        message = (
            f"No provider succeeded{what}. Attempts:\n"
            + "\n".join(lines)
            + "\nFix the first error above, or add another provider to the list."
        )
        super().__init__(message)
        self.attempts = list(attempts)
