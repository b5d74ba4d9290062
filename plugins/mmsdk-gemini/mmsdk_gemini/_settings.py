"""Where the Gemini plugin gets its key, endpoint, default models and limits.

Explicit settings (:func:`configure`) win over the environment, which wins
over the built-in defaults. The environment variables are the SDK's own
(``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``, ``GOOGLE_GEMINI_BASE_URL``,
``GOOGLE_GENAI_USE_VERTEXAI``, ``GOOGLE_CLOUD_PROJECT``,
``GOOGLE_CLOUD_LOCATION``) plus ``MMSDK_GEMINI_MODEL`` and
``MMSDK_GEMINI_IMAGE_MODEL`` for the default models. Nothing here imports
the SDK or makes a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmsdk.plugin import (
    Availability,
    Capability,
    CloudSettings,
    InvalidInputError,
    PluginSettings,
    first_env,
    missing_packages,
)
from mmsdk.plugin import DefaultModels as LiveDefaults

__all__ = [
    "DEFAULT_IMAGE_MODEL",
    "DEFAULT_MODEL",
    "SETTINGS",
    "DefaultModels",
    "GeminiSettings",
    "base_url",
    "availability",
    "availability_with_key",
    "configure",
    "get_settings",
    "use_vertex",
]

# Current names per the installed google-genai (3.4) docstrings and the Gemini
# API model list: 3.8 Flash is the stable Flash model, 3.1 Flash Image ("Nano
# Banana 2") the stable native image model.
DEFAULT_MODEL = "gemini-3.8-flash"
DEFAULT_IMAGE_MODEL = "gemini-3.1-flash-image"

# The SDK itself prefers GOOGLE_API_KEY when both are set; follow it so the
# plugin and a bare genai.Client() agree on which key is used.
KEY_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
KEY_FIX = ("export GEMINI_API_KEY=... (or GOOGLE_API_KEY=...), or call "
           "mmsdk_gemini.configure(api_key=...)")


@dataclass(frozen=True, repr=False)
class GeminiSettings(CloudSettings):
    """Explicit settings for the Gemini provider; ``None`` defers to the environment.

    Attributes:
        api_key: the Gemini API key (else ``GOOGLE_API_KEY`` / ``GEMINI_API_KEY``).
        base_url: the API endpoint (else ``GOOGLE_GEMINI_BASE_URL``, or
            ``GOOGLE_VERTEX_BASE_URL`` on Vertex AI, else the SDK default).
        model: default model for understand and classify (else ``MMSDK_GEMINI_MODEL``).
        image_model: default model for generate (else ``MMSDK_GEMINI_IMAGE_MODEL``).
        vertexai: use Vertex AI (else ``GOOGLE_GENAI_USE_VERTEXAI``); needed for Imagen.
        project / location: the Vertex AI project and region (else the
            ``GOOGLE_CLOUD_PROJECT`` / ``GOOGLE_CLOUD_LOCATION`` variables).
        inline_request_bytes: budget for inline media (as base64) plus prompt
            text in one request; the largest media that would pass it go
            through the Files API instead. The Gemini API caps a request at
            20 MB; the default leaves room for the JSON around the media.
        file_poll_interval: seconds between checks while an upload is PROCESSING.
        file_wait_timeout: longest wait for an upload to become ACTIVE when
            the call has no per-attempt timeout.
    """

    api_key: str | None = None
    base_url: str | None = None
    model: str | None = None
    image_model: str | None = None
    vertexai: bool | None = None
    project: str | None = None
    location: str | None = None
    inline_request_bytes: int = 19_900_000
    file_poll_interval: float = 1.0
    file_wait_timeout: float = 600.0


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _validate(settings: GeminiSettings) -> None:
    if settings.inline_request_bytes < 0:
        raise InvalidInputError("inline_request_bytes must be >= 0.")


# base_url is read from the environment in base_url(): which variable depends on vertexai.
SETTINGS = PluginSettings("Gemini", GeminiSettings(), env={
    "api_key": KEY_ENV, "model": "MMSDK_GEMINI_MODEL", "image_model": "MMSDK_GEMINI_IMAGE_MODEL",
    "vertexai": "GOOGLE_GENAI_USE_VERTEXAI", "project": "GOOGLE_CLOUD_PROJECT",
    "location": "GOOGLE_CLOUD_LOCATION",
}, defaults={"model": DEFAULT_MODEL, "image_model": DEFAULT_IMAGE_MODEL, "vertexai": False},
    parse={"vertexai": _truthy}, validate=_validate)


def get_settings() -> GeminiSettings:
    """The explicit Gemini settings in force."""
    return SETTINGS.explicit


def configure(**changes: Any) -> GeminiSettings:
    """Change the Gemini provider's settings for this process.

    Models already created use them from their next call.

    Example:
        >>> import mmsdk_gemini
        >>> _ = mmsdk_gemini.configure(model="gemini-2.5-flash")
    """
    return SETTINGS.configure(**changes)


def reset() -> None:
    """Back to the defaults (tests use this)."""
    SETTINGS.reset()


def use_vertex() -> bool:
    """Whether a Vertex AI configuration is present (settings, else the SDK's variable)."""
    return bool(SETTINGS.resolved().vertexai)


def base_url(settings: GeminiSettings) -> str | None:
    """The endpoint set by settings or the SDK's variable; ``None`` for Google's own."""
    variable = "GOOGLE_VERTEX_BASE_URL" if settings.vertexai else "GOOGLE_GEMINI_BASE_URL"
    return settings.base_url or first_env(variable)


def availability(model: str) -> Availability:
    """Whether the provider can run here: package and credentials. Makes no request."""
    packages = missing_packages("google.genai", install="mmsdk-gemini")
    if not packages.ok:
        return packages
    settings = SETTINGS.resolved()
    if settings.vertexai:
        if settings.project or settings.api_key:
            return Availability.yes()
        return Availability.no(
            "Vertex AI mode is on (GOOGLE_GENAI_USE_VERTEXAI) but no project or key is set",
            "export GOOGLE_CLOUD_PROJECT=... and GOOGLE_CLOUD_LOCATION=... (with Application "
            "Default Credentials), or GOOGLE_API_KEY=... for Vertex AI express mode")
    if settings.api_key is None:
        return Availability.no("no Gemini API key is set (GEMINI_API_KEY or GOOGLE_API_KEY)",
                               KEY_FIX)
    return Availability.yes()


def availability_with_key(model: str) -> Availability:
    """Whether the provider can run here with a key given in code (a router's credentials).

    The key is there, so no variable need be set; but a Vertex AI project
    authenticates with Application Default Credentials, not an API key, so a
    router's key cannot be honoured there (Vertex AI express mode takes one).
    """
    packages = missing_packages("google.genai", install="mmsdk-gemini")
    if not packages.ok:
        return packages
    settings = SETTINGS.resolved()
    if settings.vertexai and settings.project:
        return Availability.no(
            "a Vertex AI project is configured (GOOGLE_CLOUD_PROJECT); it uses Application "
            "Default Credentials, not the router's API key",
            "use the Gemini Developer API (GOOGLE_GENAI_USE_VERTEXAI unset) or Vertex AI "
            "express mode (no project) with Router(credentials={'gemini': ...})")
    return Availability.yes()


class DefaultModels(LiveDefaults):
    """The model a bare ``gemini`` means, per capability, read at lookup time."""

    def __init__(self) -> None:
        super().__init__(SETTINGS, {Capability.UNDERSTAND: "model", Capability.CLASSIFY: "model",
                                    Capability.GENERATE: "image_model"})
