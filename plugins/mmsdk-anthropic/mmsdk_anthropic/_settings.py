"""Where the plugin's key, endpoint and default models come from.

Precedence, highest first: :func:`configure` (explicit settings), then the
official SDK's own variables (``ANTHROPIC_API_KEY``, ``ANTHROPIC_AUTH_TOKEN``,
``ANTHROPIC_BASE_URL``) and ``MMSDK_ANTHROPIC_MODEL``, then built-in defaults.
Nothing here imports the SDK: availability checks read only this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from mmsdk.plugin import Capability, InvalidInputError, add_secret

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_MODELS",
    "MODEL_ENV",
    "AnthropicSettings",
    "Connection",
    "configure",
    "connection",
    "default_model",
    "get_settings",
]

API_KEY_ENV = "ANTHROPIC_API_KEY"
AUTH_TOKEN_ENV = "ANTHROPIC_AUTH_TOKEN"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
MODEL_ENV = "MMSDK_ANTHROPIC_MODEL"

# Newest names in the installed SDK's ``anthropic.types.Model`` literals (2.12).
# Classification is a one-word answer: the small, cheap model does it well.
DEFAULT_MODELS: dict[Capability, str] = {
    Capability.UNDERSTAND: "claude-sonnet-5-5",
    Capability.CLASSIFY: "claude-haiku-5-5",
}


@dataclass(frozen=True)
class AnthropicSettings:
    """Explicit settings; ``None`` defers to the environment.

    Attributes:
        api_key: the key (else ``ANTHROPIC_API_KEY``, then ``ANTHROPIC_AUTH_TOKEN``).
        base_url: the endpoint (else ``ANTHROPIC_BASE_URL``, else the SDK's default).
        model: the model a bare ``"anthropic"`` means, for every capability
            (else ``MMSDK_ANTHROPIC_MODEL``, else :data:`DEFAULT_MODELS`).
        max_tokens: the answer budget sent when a call gives none (the API requires one).
    """

    api_key: str | None = None
    base_url: str | None = None
    model: str | None = None
    max_tokens: int = 1024

    def __repr__(self) -> str:
        # The key must never show up in a repr, a log line or a traceback.
        key = "set" if self.api_key else "None"
        return (f"AnthropicSettings(api_key=<{key}>, base_url={self.base_url!r}, "
                f"model={self.model!r}, max_tokens={self.max_tokens})")


_settings = AnthropicSettings()


def get_settings() -> AnthropicSettings:
    """The plugin's explicit settings in force."""
    return _settings


def configure(**changes: Any) -> AnthropicSettings:
    """Set the Anthropic plugin's key, endpoint, default model or default ``max_tokens``.

    Models already created pick the new key or endpoint up on their next call.

    Example:
        >>> import mmsdk_anthropic
        >>> _ = mmsdk_anthropic.configure(model="claude-opus-5-5", max_tokens=2048)

    Raises:
        InvalidInputError: for an unknown setting or a bad ``max_tokens``.
    """
    global _settings
    known = {f.name for f in fields(AnthropicSettings)}
    unknown = set(changes) - known
    if unknown:
        raise InvalidInputError(f"Unknown anthropic setting(s) {sorted(unknown)}; known: "
                                f"{sorted(known)}.")
    max_tokens = changes.get("max_tokens", _settings.max_tokens)
    if not isinstance(max_tokens, int) or max_tokens <= 0:
        raise InvalidInputError(f"max_tokens must be a positive int, got {max_tokens!r}.")
    add_secret(changes.get("api_key"))
    _settings = replace(_settings, **changes)
    return _settings


@dataclass(frozen=True)
class Connection:
    """Credentials and endpoint for one set of SDK clients (compared to spot changes)."""

    api_key: str | None
    auth_token: str | None
    base_url: str | None

    def __repr__(self) -> str:
        return f"Connection(base_url={self.base_url!r})"


def connection(api_key: str | None = None) -> Connection | None:
    """The credentials and endpoint in force, or ``None`` when no key is set.

    Args:
        api_key: a router's key (``mmsdk.Router(credentials=...)``): used instead of
            the settings' and the environment's key or auth token.
    """
    settings = _settings
    api_key = api_key or settings.api_key or os.environ.get(API_KEY_ENV) or None
    auth_token = None if api_key else os.environ.get(AUTH_TOKEN_ENV) or None
    if api_key is None and auth_token is None:
        return None
    # An explicit base_url wins; otherwise the SDK reads ANTHROPIC_BASE_URL itself.
    # The environment value is kept here only so a change is noticed.
    base_url = settings.base_url or os.environ.get(BASE_URL_ENV) or None
    return Connection(api_key, auth_token, base_url)


def default_model(capability: Capability) -> str:
    """The model a bare ``"anthropic"`` means for *capability*."""
    return _settings.model or os.environ.get(MODEL_ENV) or DEFAULT_MODELS[capability]
