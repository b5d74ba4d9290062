"""Where the plugin's key, endpoint and default models come from (:class:`mmsdk.plugin.PluginSettings`).

Precedence, highest first: :func:`configure` (explicit settings), then the
official SDK's own variables (``ANTHROPIC_API_KEY``, ``ANTHROPIC_AUTH_TOKEN``,
``ANTHROPIC_BASE_URL``) and ``MMSDK_ANTHROPIC_MODEL``, then built-in defaults;
read at every call. Nothing here imports the SDK: availability checks read
only this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmsdk.plugin import Capability, CloudSettings, Connection, InvalidInputError, PluginSettings

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_MODELS",
    "MODEL_ENV",
    "SETTINGS",
    "AnthropicSettings",
    "configure",
    "connection",
    "get_settings",
]

API_KEY_ENV = "ANTHROPIC_API_KEY"
MODEL_ENV = "MMSDK_ANTHROPIC_MODEL"

# Newest names in the installed SDK's ``anthropic.types.Model`` literals (2.12).
# Classification is a one-word answer: the small, cheap model does it well.
DEFAULT_MODELS: dict[Capability, str] = {
    Capability.UNDERSTAND: "claude-sonnet-5-5",
    Capability.CLASSIFY: "claude-haiku-5-5",
}


@dataclass(frozen=True, repr=False)
class AnthropicSettings(CloudSettings):
    """Explicit settings; ``None`` defers to the environment.

    Attributes:
        api_key: the key (else ``ANTHROPIC_API_KEY``).
        auth_token: a bearer token, used when no key is set (else ``ANTHROPIC_AUTH_TOKEN``).
        base_url: the endpoint (else ``ANTHROPIC_BASE_URL``, else the SDK's default).
        model: the model a bare ``"anthropic"`` means, for every capability
            (else ``MMSDK_ANTHROPIC_MODEL``, else :data:`DEFAULT_MODELS`).
        max_tokens: the answer budget sent when a call gives none (the API requires one).
    """

    api_key: str | None = None
    base_url: str | None = None
    model: str | None = None
    max_tokens: int = 1024
    auth_token: str | None = None


def _validate(settings: AnthropicSettings) -> None:
    if not isinstance(settings.max_tokens, int) or settings.max_tokens <= 0:
        raise InvalidInputError(f"max_tokens must be a positive int, got {settings.max_tokens!r}.")


SETTINGS = PluginSettings("anthropic", AnthropicSettings(), env={
    "api_key": API_KEY_ENV, "auth_token": "ANTHROPIC_AUTH_TOKEN",
    "base_url": "ANTHROPIC_BASE_URL", "model": MODEL_ENV}, validate=_validate)


def get_settings() -> AnthropicSettings:
    """The plugin's explicit settings in force."""
    return SETTINGS.explicit


def configure(**changes: Any) -> AnthropicSettings:
    """Set the Anthropic plugin's key, endpoint, default model or default ``max_tokens``.

    Models already created use them from their next call.

    Example:
        >>> import mmsdk_anthropic
        >>> _ = mmsdk_anthropic.configure(model="claude-opus-5-5", max_tokens=2048)

    Raises:
        InvalidInputError: for an unknown setting or a bad ``max_tokens``.
    """
    return SETTINGS.configure(**changes)


def connection(api_key: str | None = None) -> Connection | None:
    """The credentials and endpoint in force, or ``None`` when no key is set.

    Args:
        api_key: a router's key (``mmsdk.Router(credentials=...)``): used instead of
            the settings' and the environment's key or auth token.
    """
    settings = SETTINGS.resolved()
    api_key = api_key or settings.api_key
    auth_token = None if api_key else settings.auth_token
    if api_key is None and auth_token is None:
        return None
    return Connection(api_key, settings.base_url, (("auth_token", auth_token),))

