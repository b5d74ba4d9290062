"""Process-wide settings: input caps, URL safety and the default route."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["Settings", "configure", "get_settings"]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Limits and defaults. Change them with :func:`mmsdk.configure`.

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
        url_max_redirects: redirects followed for URL inputs.
        default_providers: the route used when ``provider=None``, per capability.
            Also set by ``MMSDK_DEFAULT_PROVIDER`` (comma-separated, all capabilities).
    """

    max_input_bytes: int = 50 * 1024 * 1024
    max_input_pixels: int = 64 * 1024 * 1024
    max_video_bytes: int = 2 * 1024 * 1024 * 1024
    allow_private_urls: bool = field(default_factory=lambda: _env_flag("MMSDK_ALLOW_PRIVATE_URLS"))
    url_allow_hosts: tuple[str, ...] = ()
    url_connect_timeout: float = 5.0
    url_read_timeout: float = 20.0
    url_max_redirects: int = 5
    default_providers: dict[str, tuple[str, ...]] = field(default_factory=dict)


_settings = Settings()


def get_settings() -> Settings:
    """Return the settings in force."""
    return _settings


def configure(**changes: Any) -> Settings:
    """Change settings for this process and return the new ones.

    Example:
        >>> import mmsdk
        >>> _ = mmsdk.configure(max_input_pixels=40_000_000)
    """
    global _settings
    known = {f.name for f in fields(Settings)}
    unknown = set(changes) - known
    if unknown:
        from ._errors import InvalidInputError

        raise InvalidInputError(
            f"Unknown setting(s) {sorted(unknown)}; known settings: {sorted(known)}."
        )
    _settings = replace(_settings, **changes)
    return _settings
