"""Settings for the ``openai`` provider: keys, endpoint, default and retired models.

Nothing here imports the ``openai`` SDK: registration and availability checks
must stay cheap.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from mmsdk.plugin import Availability, Capability, InvalidInputError, add_secret

__all__ = [
    "AVAILABLE",
    "DEFAULT_MODELS",
    "MODEL_ENV",
    "RETIRED",
    "DefaultModels",
    "OpenAISettings",
    "check_openai",
    "configure",
    "get_settings",
    "is_image_model",
    "sdk_missing",
]

# Current names from the installed SDK's literals (openai.types.ImageModel and
# openai.types.ChatModel); tests assert they are still there. gpt-4.1 rather
# than a GPT-5 model for understand/classify: it honours temperature and
# returns logprobs, which classification scores are read from.
DEFAULT_MODELS: dict[Capability, str] = {
    Capability.GENERATE: "gpt-image-2",
    Capability.UNDERSTAND: "gpt-4.1",
    Capability.CLASSIFY: "gpt-4.1",
}

MODEL_ENV: dict[Capability, str] = {
    Capability.GENERATE: "MMSDK_OPENAI_GENERATE_MODEL",
    Capability.UNDERSTAND: "MMSDK_OPENAI_UNDERSTAND_MODEL",
    Capability.CLASSIFY: "MMSDK_OPENAI_CLASSIFY_MODEL",
}

# From the openai SDK's docstrings (openai/types/image_model.py).
RETIRED: dict[str, str] = {
    "dall-e-2": "DALL-E 2 was retired on 2026-05-12; use a GPT image model such as "
                "'openai:gpt-image-2'.",
    "dall-e-3": "DALL-E 3 was retired on 2026-05-12; use a GPT image model such as "
                "'openai:gpt-image-2'.",
    "gpt-image-1": "GPT Image 1 was shut down on 2026-10-23; use 'openai:gpt-image-2.5-sunburst' "
                   "or 'openai:gpt-image-2.5-flare' (or 'openai:gpt-image-2').",
}

_IMAGE_PREFIXES = ("gpt-image", "chatgpt-image", "dall-e")


def is_image_model(model: str) -> bool:
    """Whether *model* is an image-generation model (served by the Images API)."""
    return model.startswith(_IMAGE_PREFIXES)


@dataclass(frozen=True)
class OpenAISettings:
    """Explicit settings; ``None`` falls back to the SDK's own environment variables.

    Attributes:
        api_key: used instead of ``OPENAI_API_KEY``.
        base_url: used instead of ``OPENAI_BASE_URL``.
        organization / project: used instead of ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID``.
        generate_model / understand_model / classify_model: what bare ``"openai"``
            means, instead of ``MMSDK_OPENAI_*_MODEL`` or the built-in defaults.
    """

    api_key: str | None = None
    base_url: str | None = None
    organization: str | None = None
    project: str | None = None
    generate_model: str | None = None
    understand_model: str | None = None
    classify_model: str | None = None

    def __repr__(self) -> str:  # never show the key
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_key"}
        key = "set" if self.api_key else None
        return f"OpenAISettings(api_key={key!r}, " + \
            ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


_settings = OpenAISettings()
_lock = threading.Lock()
_version = 0


def get_settings() -> tuple[OpenAISettings, int]:
    """The settings in force and their version (bumped by every :func:`configure`)."""
    return _settings, _version


def configure(**changes: Any) -> OpenAISettings:
    """Set explicit settings for the ``openai`` provider; ``None`` restores the default.

    Clients already created are rebuilt on their next call.

    Example:
        >>> import mmsdk_openai
        >>> _ = mmsdk_openai.configure(base_url="https://proxy.example/v1",
        ...                            understand_model="gpt-4o")
    """
    global _settings, _version
    known = {f.name for f in fields(OpenAISettings)}
    unknown = set(changes) - known
    if unknown:
        raise InvalidInputError(f"Unknown openai setting(s) {sorted(unknown)}; known: "
                                f"{sorted(known)}.")
    add_secret(changes.get("api_key"))
    with _lock:
        _settings = replace(_settings, **changes)
        _version += 1
    return _settings


class DefaultModels(Mapping[Capability, str]):
    """What bare ``"openai"`` means per capability, read live: settings, env, built-in."""

    def __getitem__(self, capability: Capability) -> str:
        builtin = DEFAULT_MODELS[capability]  # KeyError for capabilities we lack
        explicit = getattr(_settings, f"{capability.value}_model", None)
        return explicit or os.environ.get(MODEL_ENV[capability]) or builtin

    def __iter__(self) -> Iterator[Capability]:
        return iter(DEFAULT_MODELS)

    def __len__(self) -> int:
        return len(DEFAULT_MODELS)


_sdk_found = False


def sdk_missing() -> Availability | None:
    """``Availability.no`` when the openai SDK is not installed (found once, then cached)."""
    global _sdk_found
    if _sdk_found:
        return None
    try:
        found = importlib.util.find_spec("openai") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return Availability.no("package openai not installed", "pip install mmsdk-openai")
    _sdk_found = True
    return None


AVAILABLE = Availability.yes()  # asked on every call: build it once


def check_openai(model: str) -> Availability:
    """Usable here: the SDK is installed and a key is set. Makes no request."""
    missing = sdk_missing()
    if missing is not None:
        return missing
    if not (_settings.api_key or os.environ.get("OPENAI_API_KEY")):
        return Availability.no("OPENAI_API_KEY is not set",
                               "export OPENAI_API_KEY=... (or mmsdk_openai.configure(api_key=...))")
    return AVAILABLE
