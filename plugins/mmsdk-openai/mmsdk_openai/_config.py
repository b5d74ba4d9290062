"""Settings for the ``openai`` provider: keys, endpoint, default models and model lifecycles.

Nothing here imports the ``openai`` SDK: registration and availability checks
must stay cheap.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from dataclasses import dataclass
from typing import Any

from mmsdk.plugin import Availability, Capability, CloudSettings, ModelLifecycle, PluginSettings
from mmsdk.plugin import DefaultModels as LiveDefaults

__all__ = [
    "AVAILABLE",
    "DEFAULT_MODELS",
    "LIFECYCLE",
    "LIFECYCLE_CHECKED",
    "MODEL_ENV",
    "RETIRED",
    "SETTINGS",
    "DefaultModels",
    "OpenAISettings",
    "check_openai",
    "check_sdk",
    "configure",
    "is_image_model",
    "lifecycle",
    "sdk_missing",
]

# Current names from the installed SDK's literals (openai.types.ImageModel and
# openai.types.ChatModel) with no announced shutdown; tests assert both. Every
# chat model without one is a reasoning model (gpt-5.x, gpt-6): the plugin does
# not send them temperature (declared unsupported: a CapabilityError before any
# request, as they answer 400 to anything but the default) and classify scores
# them by the documented rule, since they return no logprobs (_info.is_reasoning).
DEFAULT_MODELS: dict[Capability, str] = {
    Capability.GENERATE: "gpt-image-2",
    Capability.UNDERSTAND: "gpt-5.5",
    Capability.CLASSIFY: "gpt-5.5",
}

MODEL_ENV: dict[Capability, str] = {
    Capability.GENERATE: "MMSDK_OPENAI_GENERATE_MODEL",
    Capability.UNDERSTAND: "MMSDK_OPENAI_UNDERSTAND_MODEL",
    Capability.CLASSIFY: "MMSDK_OPENAI_CLASSIFY_MODEL",
}

# Shutdown dates from the openai SDK 3.57 docstrings ("Announced shutdown date"
# in openai/types/shared/chat_model.py; openai/types/image_model.py for the
# image models). The SDK names no successor (it points at the deprecations
# page): here it is the current model of the same size. From its shutdown date a
# name is retired (fails before any request); before, it works with a note on
# the result, and a ModelDeprecationWarning within 30 days. Audio models are
# left out: mmsdk sends them nothing they could answer.
_CHAT, _MINI, _IMAGE = "gpt-5.5", "gpt-5.4-mini", "gpt-image-2"


def _shutdown(day: dt.date, successor: str, *names: str) -> dict[str, tuple[dt.date, str]]:
    return dict.fromkeys(names, (day, successor))


LIFECYCLE: dict[str, tuple[dt.date, str]] = {
    **_shutdown(dt.date(2024, 9, 13), _MINI, "gpt-3.5-turbo-16k", "gpt-3.5-turbo-0301",
                "gpt-3.5-turbo-0613", "gpt-3.5-turbo-16k-0613"),
    **_shutdown(dt.date(2024, 12, 6), _CHAT, "gpt-4-vision-preview"),
    **_shutdown(dt.date(2025, 6, 6), _CHAT, "gpt-4-32k", "gpt-4-32k-0314", "gpt-4-32k-0613"),
    **_shutdown(dt.date(2025, 7, 28), _CHAT, "o1-preview", "o1-preview-2024-09-12"),
    **_shutdown(dt.date(2025, 10, 27), _MINI, "o1-mini", "o1-mini-2024-09-12"),
    **_shutdown(dt.date(2026, 2, 12), _CHAT, "codex-mini-latest"),
    **_shutdown(dt.date(2026, 2, 17), _CHAT, "chatgpt-4o-latest"),
    **_shutdown(dt.date(2026, 3, 26), _CHAT, "gpt-4-0125-preview", "gpt-4-turbo-preview",
                "gpt-4-0314"),
    **_shutdown(dt.date(2026, 5, 12), _IMAGE, "dall-e-2", "dall-e-3"),
    **_shutdown(dt.date(2026, 7, 23), _CHAT, "gpt-5.1-codex", "gpt-5.1-chat-latest",
                "gpt-5-chat-latest", "gpt-4o-search-preview", "gpt-4o-search-preview-2025-03-11"),
    **_shutdown(dt.date(2026, 7, 23), _MINI, "gpt-4o-mini-search-preview",
                "gpt-4o-mini-search-preview-2025-03-11"),
    **_shutdown(dt.date(2026, 8, 10), _CHAT, "gpt-5.3-chat-latest", "gpt-5.2-chat-latest"),
    **_shutdown(dt.date(2026, 9, 28), _MINI, "gpt-3.5-turbo-1106"),
    **_shutdown(dt.date(2026, 10, 23), "gpt-image-2.5-sunburst", "gpt-image-1"),
    **_shutdown(dt.date(2026, 10, 23), _CHAT, "o1", "o1-2024-12-17", "gpt-4o-2024-05-13",
                "gpt-4-turbo", "gpt-4-turbo-2024-04-09", "gpt-4-1106-preview", "gpt-4",
                "gpt-4-0613"),
    **_shutdown(dt.date(2026, 10, 23), _MINI, "gpt-4.1-nano", "gpt-4.1-nano-2025-04-14",
                "o4-mini", "o4-mini-2025-04-16", "o3-mini", "o3-mini-2025-01-31",
                "gpt-3.5-turbo", "gpt-3.5-turbo-0125"),
    **_shutdown(dt.date(2026, 12, 11), _CHAT, "gpt-5", "gpt-5-2025-08-07", "o3", "o3-2025-04-16"),
    **_shutdown(dt.date(2026, 12, 11), _MINI, "gpt-5-mini", "gpt-5-mini-2025-08-07",
                "gpt-5-nano", "gpt-5-nano-2025-08-07"),
    **_shutdown(dt.date(2027, 1, 14), _CHAT, "gpt-4.1", "gpt-4.1-2025-04-14", "gpt-4o",
                "gpt-4o-2024-11-20", "gpt-4o-2024-08-06"),
    **_shutdown(dt.date(2027, 1, 14), _MINI, "gpt-4.1-mini", "gpt-4.1-mini-2025-04-14",
                "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    **_shutdown(dt.date(2027, 4, 1), _CHAT, "gpt-5.1", "gpt-5.1-2025-11-13"),
    **_shutdown(dt.date(2027, 4, 1), _MINI, "gpt-5.4-nano", "gpt-5.4-nano-2026-03-17"),
}
# The day LIFECYCLE was last compared with the installed SDK's docstrings (and
# OpenAI's deprecations page). Tests pin the clock here; a test fails when a
# default model is past, or within 30 days of, its shutdown on this date.
LIFECYCLE_CHECKED = dt.date(2026, 12, 1)

lifecycle = ModelLifecycle("openai", LIFECYCLE, messages={
    "dall-e-2": "DALL-E 2 was retired on 2026-05-12; use a GPT image model such as "
                "'openai:gpt-image-2'.",
    "dall-e-3": "DALL-E 3 was retired on 2026-05-12; use a GPT image model such as "
                "'openai:gpt-image-2'.",
    "gpt-image-1": "GPT Image 1 was shut down on 2026-10-23; use 'openai:gpt-image-2.5-sunburst' "
                   "or 'openai:gpt-image-2.5-flare' (or 'openai:gpt-image-2').",
})
# Names retired on mmsdk.plugin.today(), each with a message naming the
# successor; read on every lookup, so a model retires on its shutdown date.
RETIRED = lifecycle.retired

_IMAGE_PREFIXES = ("gpt-image", "chatgpt-image", "dall-e")


def is_image_model(model: str) -> bool:
    """Whether *model* is an image-generation model (served by the Images API)."""
    return model.startswith(_IMAGE_PREFIXES)


@dataclass(frozen=True, repr=False)
class OpenAISettings(CloudSettings):
    """Explicit settings; ``None`` defers to the environment, then the built-in default.

    Attributes:
        api_key: else ``OPENAI_API_KEY``.
        base_url: else ``OPENAI_BASE_URL``, else the SDK's default.
        organization / project: else ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID``.
        generate_model / understand_model / classify_model: what bare ``"openai"``
            means, else ``MMSDK_OPENAI_*_MODEL``, else :data:`DEFAULT_MODELS`.
    """

    api_key: str | None = None
    base_url: str | None = None
    organization: str | None = None
    project: str | None = None
    generate_model: str | None = None
    understand_model: str | None = None
    classify_model: str | None = None


# explicit configure() > these variables > DEFAULT_MODELS (mmsdk.plugin.PluginSettings).
SETTINGS = PluginSettings("openai", OpenAISettings(), env={
    "api_key": "OPENAI_API_KEY", "base_url": "OPENAI_BASE_URL",
    "organization": "OPENAI_ORG_ID", "project": "OPENAI_PROJECT_ID",
    **{f"{capability.value}_model": var for capability, var in MODEL_ENV.items()},
}, defaults={f"{capability.value}_model": model for capability, model in DEFAULT_MODELS.items()})


def configure(**changes: Any) -> OpenAISettings:
    """Set explicit settings for the ``openai`` provider; ``None`` restores the default.

    Models already created use them from their next call.

    Example:
        >>> import mmsdk_openai
        >>> _ = mmsdk_openai.configure(base_url="https://proxy.example/v1",
        ...                            understand_model="gpt-4o")
    """
    return SETTINGS.configure(**changes)


class DefaultModels(LiveDefaults):
    """What bare ``"openai"`` means per capability, read live: settings, env, built-in."""

    def __init__(self) -> None:
        super().__init__(SETTINGS, {capability: f"{capability.value}_model"
                                    for capability in DEFAULT_MODELS})


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


def check_sdk(model: str) -> Availability:
    """Usable here with a key given in code (a router's credentials): the SDK is installed."""
    return sdk_missing() or AVAILABLE


def check_openai(model: str) -> Availability:
    """Usable here: the SDK is installed and a key is set. Makes no request."""
    missing = sdk_missing()
    if missing is not None:
        return missing
    if not SETTINGS.resolved().api_key:
        return Availability.no("OPENAI_API_KEY is not set",
                               "export OPENAI_API_KEY=... (or mmsdk_openai.configure(api_key=...))")
    return AVAILABLE
