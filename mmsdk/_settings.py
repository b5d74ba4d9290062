"""Process-wide settings: input caps, URL safety and the default route."""

from __future__ import annotations

import math
import os
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["Settings", "configure", "get_settings"]


def _env_plugins() -> tuple[str, ...] | None:
    value = os.environ.get("MMSDK_PLUGINS")
    if value is None:
        return None
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Limits and defaults. Change them with :func:`mmsdk.configure`.

    Every value is checked when set: a wrong type or an impossible value (a
    negative cap, a NaN timeout) is an :class:`InvalidInputError`.

    Attributes:
        max_input_bytes: largest encoded image or fetched URL accepted.
        max_input_pixels: largest decoded image accepted (decompression-bomb guard).
        max_video_bytes: largest video file accepted.
        allow_private_urls: let URL inputs reach loopback, private, link-local
            and metadata addresses (off: such URLs raise ``InvalidInputError``).
            Also set by ``MMSDK_ALLOW_PRIVATE_URLS=1``.
        url_allow_hosts: host names allowed even when they resolve to private
            addresses (an internal CDN, say).
        url_connect_timeout / url_read_timeout: seconds, for URL inputs.
        url_total_timeout: seconds one URL input may take in all (connecting,
            redirects and the whole body), however steadily it trickles in.
        url_max_redirects: redirects followed for URL inputs.
        keep_image_metadata: send images with their EXIF (GPS included), XMP,
            IPTC and comments. Off by default: metadata is stripped, losslessly
            where the format allows, before an image leaves the process.
        policy: the :class:`mmsdk.Policy` of every call and router that names
            none (``None``: ``Policy()``, whose ``timeout`` leaves the SDKs' own).
        on_attempt: ``fn(attempt)`` called after every attempt of every call
            (an exception in it is logged, never raised into the call).
        default_providers: the route used when ``provider=None``, per capability.
            Also set by ``MMSDK_DEFAULT_PROVIDER`` (comma-separated, all capabilities).
        plugins: the installed plugins (entry-point names, built-ins included) that
            may load; ``None``: all of them, ``[]``: none. Also set by
            ``MMSDK_PLUGINS=name,name`` (empty: none); ``configure`` refuses a name
            that is no installed plugin. Plugins registered at run time
            with ``register_plugin`` are not affected.
        prices: ``{"PLUGIN:MODEL": {"input_per_mtok": ..., ...}}``: prices in US
            dollars that override the rates they name in (or add to) the plugins' tables
            (keys as :class:`mmsdk.Price`). ``usage.cost_usd``, ``Policy(max_cost_usd=...)``
            and ``order="cheapest"`` use them.
        cache: where results of repeatable calls are kept: a folder path, a
            :class:`mmsdk.Cache` (to bound its size), or ``None`` (no cache).
            ``Router(cache=...)`` overrides it per router.
    """

    max_input_bytes: int = 50 * 1024 * 1024
    max_input_pixels: int = 64 * 1024 * 1024
    max_video_bytes: int = 2 * 1024 * 1024 * 1024
    allow_private_urls: bool = field(default_factory=lambda: _env_flag("MMSDK_ALLOW_PRIVATE_URLS"))
    url_allow_hosts: tuple[str, ...] = ()
    url_connect_timeout: float = 5.0
    url_read_timeout: float = 20.0
    url_total_timeout: float = 30.0
    url_max_redirects: int = 5
    keep_image_metadata: bool = False
    default_providers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    policy: Any = None
    on_attempt: Any = None
    plugins: tuple[str, ...] | None = field(default_factory=_env_plugins)
    prices: dict[str, Any] = field(default_factory=dict)
    cache: Any = None

    def __post_init__(self) -> None:
        for name, hint in _hints().items():
            checked = _check(name, hint, getattr(self, name))
            if checked is not getattr(self, name):
                object.__setattr__(self, name, checked)


_MINIMUM = {"url_max_redirects": 0}  # every other number must be above zero
_hint_cache: dict[str, Any] = {}


def _hints() -> dict[str, Any]:
    if not _hint_cache:
        resolved = typing.get_type_hints(Settings)
        _hint_cache.update({f.name: resolved[f.name] for f in fields(Settings)})
    return _hint_cache


def _invalid(message: str) -> Exception:
    from ._errors import InvalidInputError

    return InvalidInputError(message)


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or \
            not all(isinstance(item, str) for item in value):
        raise _invalid(f"Setting {name} must be a list of strings, got {value!r}.")
    return tuple(value)


def _installed_plugins(names: tuple[str, ...]) -> tuple[str, ...]:
    """*names* if each is an installed plugin (entry point in the ``mmsdk`` group), else an
    ``InvalidInputError`` with the closest name: a misspelt one would load nothing."""
    import difflib
    import importlib.metadata

    installed = sorted({ep.name for ep in importlib.metadata.entry_points(group="mmsdk")})
    for name in names:
        if name not in installed:
            close = difflib.get_close_matches(name, installed, n=1)
            hint = f"Did you mean {close[0]!r}? " if close else ""
            raise _invalid(f"Setting plugins names {name!r}, which is no installed plugin. "
                           f"{hint}Installed: {', '.join(installed) or 'none'}.")
    return names


def _check(name: str, hint: Any, value: Any) -> Any:
    """*value* if it fits *hint* (lists become tuples), else an ``InvalidInputError``."""
    if name == "on_attempt":
        if value is not None and not callable(value):
            raise _invalid(f"Setting on_attempt must be a function of one Attempt, got {value!r}.")
        return value
    if name == "plugins":
        return None if value is None else _installed_plugins(_strings(name, value))
    if name == "prices":
        if value == {}:
            return value
        from ._cost import check_prices

        return check_prices(value)
    if name == "cache":
        if value is None:
            return None
        from ._cache import as_cache

        return as_cache(value, "Setting cache")
    if name == "policy":
        from ._policy import Policy

        if value is not None and not isinstance(value, Policy):
            raise _invalid(f"Setting policy must be a mmsdk.Policy, got {type(value).__name__}.")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _invalid(f"Setting {name} must be True or False, got {value!r}.")
        return value
    if hint in (int, float):
        kind = "an integer" if hint is int else "a number"
        ok = isinstance(value, int) if hint is int else isinstance(value, (int, float))
        if not ok or isinstance(value, bool):
            raise _invalid(f"Setting {name} must be {kind}, got {type(value).__name__} "
                           f"{value!r}.")
        lowest = _MINIMUM.get(name)
        if not math.isfinite(value) or (value < lowest if lowest is not None else value <= 0):
            bound = f"at least {lowest}" if lowest is not None else "above zero"
            raise _invalid(f"Setting {name} must be a finite number {bound}, got {value!r}.")
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and args[1:] == (Ellipsis,) and args[0] is str:
        return _strings(name, value)
    if origin is dict and args and args[0] is str:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _invalid(f"Setting {name} must be a dict with string keys, got {value!r}.")
        return {key: _strings(f"{name}[{key!r}]", [item] if isinstance(item, str) else item)
                for key, item in value.items()}
    return value  # a type this check does not know: taken as given


_settings = Settings()


def get_settings() -> Settings:
    """Return the settings in force."""
    return _settings


def configure(**changes: Any) -> Settings:
    """Change settings for this process and return the new ones.

    Raises:
        InvalidInputError: an unknown setting name, or a value of the wrong
            type or out of range; nothing is changed then.

    Example:
        >>> import mmsdk
        >>> _ = mmsdk.configure(max_input_pixels=40_000_000)
    """
    global _settings
    known = {f.name for f in fields(Settings)}
    unknown = set(changes) - known
    if unknown:
        raise _invalid(f"Unknown setting(s) {sorted(unknown)}; known settings: {sorted(known)}.")
    _settings = replace(_settings, **changes)
    if "plugins" in changes:
        from ._registry import get_registry, registry_loaded

        if registry_loaded():
            get_registry().apply_plugin_choice()
    return _settings
