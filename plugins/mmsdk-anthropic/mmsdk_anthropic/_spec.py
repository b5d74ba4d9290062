"""What the registry needs before anything is imported: limits, capabilities, lifecycle.

Everything here is cheap: no SDK import, no request.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC
from collections.abc import Callable

from mmsdk.plugin import (
    Availability,
    Classify,
    DefaultModels,
    Feature,
    MediaLimits,
    Model,
    ModelInfo,
    ModelLifecycle,
    ProviderSpec,
    Understand,
    add_secret,
    capabilities_of,
    missing_packages,
)

from ._prices import price
from ._settings import API_KEY_ENV, DEFAULT_MODELS, SETTINGS, connection

__all__ = ["Claude", "LIFECYCLE", "LIFECYCLE_CHECKED", "LIMITS", "NAME", "check", "deprecation_warning",
           "describe", "lifecycle_notes", "provider_spec", "retired"]

NAME = "anthropic"


class Claude(Understand, Classify, ABC):
    """What every Claude model does; ``AnthropicModel`` (which imports the SDK) implements it."""


CAPABILITIES = tuple(sorted(capabilities_of(Claude)))
# What a bare "anthropic" means, read on every lookup, so MMSDK_ANTHROPIC_MODEL and
# configure(model=...) apply after the registry has loaded.
DEFAULT_MODELS_LIVE = DefaultModels(SETTINGS, dict.fromkeys(CAPABILITIES, "model"),
                                    builtin=DEFAULT_MODELS)

# The API rejects images over 5 MB *of base64 text* and over 8000 px a side
# (2000 px when a request holds more than 20 images), and takes up to 100
# images per request on 200k-context models. It also downscales anything whose
# long edge passes 1568 px or whose area passes ~1.15 megapixels (~1,600
# tokens) before the model sees it, so sending more only costs upload bytes
# and time-to-first-token: cap there, which also keeps every image under the
# 2000 px many-image rule. Source: platform.claude.com build-with-claude/vision.
LIMITS = MediaLimits(
    formats=("jpeg", "png", "webp", "gif"),
    max_long_edge=1568,
    max_pixels=1_150_000,
    max_bytes=5 * 1024 * 1024,
    count_bytes_as="base64",
    max_images=100,
)

# No "temperature": API version 2026-10-21, which anthropic 2.x sends, rejects
# temperature/top_p/top_k with a 400 at any value, and the SDK dropped them. A
# call that sets temperature= gets a CapabilityError (or, with
# Policy(lenient=True), a warning) from the core instead of a failed request.
SUPPORTS = frozenset({Feature.SYSTEM, Feature.MAX_TOKENS, Feature.SCHEMA, Feature.STREAM,
                      Feature.MULTI_LABEL})
# options={...} keys: passed to messages.create as they are ("effort" goes into
# output_config); the API validates their values.
OPTIONS = frozenset({"effort", "metadata", "service_tier", "stop_sequences"})

# Newest model of each family in the SDK 2.14 ``anthropic.types.Model`` literals.
_HAIKU, _SONNET, _OPUS, _MYTHOS = ("claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5",
                                   "claude-mythos-5-2")

# End-of-life dates from the anthropic SDK 2.14 ``DEPRECATED_MODELS`` table (the
# SDK names no successor: here it is the newest model of the same family), plus
# the 3.5 Sonnet models retired 2025-10-22 per Anthropic's model-deprecations
# page. A name whose date has come is retired (fails before any request); one
# whose date is still ahead works, with a note on the result (and a
# ModelDeprecationWarning within 30 days). Dates are read against
# mmsdk.plugin.today() on every call, never frozen at registration.
LIFECYCLE: dict[str, tuple[dt.date, str]] = {
    **dict.fromkeys(("claude-1.3", "claude-1.3-100k", "claude-instant-1.1",
                     "claude-instant-1.1-100k", "claude-instant-1.2"),
                    (dt.date(2024, 11, 6), _HAIKU)),
    **dict.fromkeys(("claude-2.0", "claude-2.1", "claude-3-sonnet-20240229"),
                    (dt.date(2025, 7, 21), _SONNET)),
    **dict.fromkeys(("claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20241022",
                     "claude-3-5-sonnet-latest"), (dt.date(2025, 10, 22), _SONNET)),
    "claude-3-opus-20240229": (dt.date(2026, 1, 5), _OPUS),
    **dict.fromkeys(("claude-3-7-sonnet-latest", "claude-3-7-sonnet-20250219"),
                    (dt.date(2026, 2, 19), _SONNET)),
    **dict.fromkeys(("claude-3-5-haiku-latest", "claude-3-5-haiku-20241022"),
                    (dt.date(2026, 2, 19), _HAIKU)),
    **dict.fromkeys(("claude-opus-4-0", "claude-opus-4-20250514"),
                    (dt.date(2026, 6, 15), _OPUS)),
    **dict.fromkeys(("claude-sonnet-4-0", "claude-sonnet-4-20250514"),
                    (dt.date(2026, 6, 15), _SONNET)),
    "claude-mythos-preview": (dt.date(2026, 6, 30), _MYTHOS),
    **dict.fromkeys(("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
                    (dt.date(2026, 11, 30), _SONNET)),
    **dict.fromkeys(("claude-opus-4-5", "claude-opus-4-5-20251101"),
                    (dt.date(2027, 1, 22), _OPUS)),
}
# The day LIFECYCLE was last compared with the installed SDK's DEPRECATED_MODELS
# and Anthropic's deprecations page. Tests pin the clock here; a test fails when
# a default model is past, or within 30 days of, its end-of-life on this date.
LIFECYCLE_CHECKED = dt.date(2026, 12, 1)

_LIFECYCLE = ModelLifecycle(NAME, LIFECYCLE)


def retired(today: dt.date | None = None) -> dict[str, str]:
    """Model names past end-of-life (on *today*, default the mmsdk clock), each mapped to a
    message naming its successor."""
    if today is None:
        return dict(_LIFECYCLE.retired)
    return {name: f"It reached end-of-life on {eol.isoformat()}; use "
                  f"'{NAME}:{successor}' instead."
            for name, (eol, successor) in LIFECYCLE.items() if eol <= today}


def deprecation_warning(model: str) -> str | None:
    """A note for a model that still works but has an announced end-of-life (mmsdk clock)."""
    return _LIFECYCLE.deprecation(model)


def lifecycle_notes(model: str) -> list[str]:
    """At the start of a call: fail if *model* is retired by now, else the notes for
    ``result.warnings`` (warning once, in Python, within 30 days of end-of-life)."""
    return _LIFECYCLE.on_call(model)


def _hints(model: str) -> tuple[float, float]:
    """(cost, speed) relative hints by model family, for ``order="cheapest"/"fastest"``."""
    if "haiku" in model:
        return 0.25, 0.5
    if "opus" in model or "mythos" in model:
        return 5.0, 2.0
    return 1.0, 1.0


def describe(model: str) -> ModelInfo:
    """Parameters and limits of one Claude model (all current ones take images)."""
    cost, speed = _hints(model)
    return ModelInfo(supports=SUPPORTS, options=OPTIONS,
                     limits=LIMITS, local=False, cost_hint=cost, speed_hint=speed,
                     price=price(model))


def _check_package() -> Availability:
    return missing_packages("anthropic", install="'anthropic>=2.12'")


def check(model: str) -> Availability:
    """Usable here when the SDK is installed and a key is set; makes no request."""
    packages = _check_package()
    if not packages.ok:
        return packages
    if connection() is None:
        return Availability.no(
            f"no Anthropic API key: {API_KEY_ENV} is not set",
            f"export {API_KEY_ENV}=... (or call mmsdk_anthropic.configure(api_key=...))")
    return Availability.yes()


def _factory(model: str, provider: str, info: ModelInfo, api_key: str | None = None) -> Model:
    from ._model import AnthropicModel  # the SDK is imported only from here on

    return AnthropicModel(provider, info, model, api_key=api_key)


def _check_keyed(model: str) -> Availability:
    """With a router's key: usable when the SDK is installed (the key is there)."""
    return _check_package()


def provider_spec(api_key: str | None = None) -> ProviderSpec:
    """The ``anthropic`` provider as registered.

    Args:
        api_key: a key used instead of ``configure(api_key=...)``,
            ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_AUTH_TOKEN``
            (``mmsdk.Router(credentials={"anthropic": ...})``); the provider is
            then available without them. The endpoint still comes from the
            settings or ``ANTHROPIC_BASE_URL``.
    """
    factory: Callable[[str, str, ModelInfo], Model] = _factory
    if api_key is not None:
        add_secret(api_key)

        def factory(model: str, provider: str, info: ModelInfo) -> Model:  # a closure: no
            return _factory(model, provider, info, api_key)  # repr shows the key

    return ProviderSpec(
        name=NAME,
        model_class=Claude,
        factory=factory,
        describe=describe,
        default_models=DEFAULT_MODELS_LIVE,
        check=check if api_key is None else _check_keyed,
        description="Claude vision through the official anthropic SDK (cloud)",
        retired=_LIFECYCLE.retired,  # read against today() on every lookup
        with_key=provider_spec,
    )
