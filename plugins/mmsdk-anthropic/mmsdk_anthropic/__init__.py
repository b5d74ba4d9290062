"""mmsdk plugin for Anthropic's Claude: ``anthropic:MODEL`` understands and classifies images.

Registered through the ``mmsdk`` entry-point group; importing this module
imports no SDK (the ``anthropic`` package loads when a model is first used).

Example:
    >>> import mmsdk
    >>> answer = mmsdk.understand("What trends do you see?", images=["chart.png"],
    ...                           provider="anthropic:claude-sonnet-5-5")
    >>> answer.text, answer.usage.output_tokens

Keys and endpoints come from ``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL`` or
from :func:`configure` (``mmsdk.Router(..., credentials={"anthropic": KEY})``
sends that router's own key instead); the default model from ``MMSDK_ANTHROPIC_MODEL`` or
:func:`configure` (``model=``).
"""

from __future__ import annotations

from collections.abc import Callable

from mmsdk.plugin import ProviderSpec, hookimpl

from ._settings import AnthropicSettings, configure, get_settings
from ._spec import LIMITS, describe

__all__ = ["LIMITS", "AnthropicSettings", "configure", "describe", "get_settings",
           "register_providers"]


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register the ``anthropic`` provider (understand, classify)."""
    from ._spec import provider_spec

    register(provider_spec())
