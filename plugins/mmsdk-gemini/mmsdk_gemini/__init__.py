"""mmsdk provider for Google Gemini, through the official ``google-genai`` SDK.

Provider strings are ``gemini:MODEL``; bare ``gemini`` means the default model
for the capability asked (``gemini-3.8-flash`` for understand and classify,
``gemini-3.1-flash-image`` for generate; override them with
``MMSDK_GEMINI_MODEL`` / ``MMSDK_GEMINI_IMAGE_MODEL`` or :func:`configure`)::

    import mmsdk
    answer = mmsdk.understand("What is in this picture?", images=["photo.jpg"],
                              provider="gemini:gemini-2.5-flash")
    picture = mmsdk.generate("a watercolor fox", provider="gemini")

The key comes from ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY`` (the SDK's own
variables), the endpoint from ``GOOGLE_GEMINI_BASE_URL``, or both from
:func:`configure`. Imagen models (``gemini:imagen-...``) need Vertex AI
(``GOOGLE_GENAI_USE_VERTEXAI=true``). Importing this module imports no SDK.
"""

from __future__ import annotations

from typing import Any

from mmsdk.plugin import Model, ProviderSpec, hookimpl

from ._describe import describe, lifecycle
from ._settings import DefaultModels, GeminiSettings, availability, configure, get_settings

__all__ = ["GeminiSettings", "configure", "describe", "get_settings", "register_providers"]


def _factory(model: str) -> Model:
    from ._model import GeminiModel  # the SDK is imported on first use only

    return GeminiModel(f"gemini:{model}", describe(model), model, get_settings())


@hookimpl
def register_providers(register: Any) -> None:
    """Register the ``gemini`` provider."""
    register(ProviderSpec(
        name="gemini",
        factory=_factory,
        describe=describe,
        default_models=DefaultModels(),
        check=availability,
        description="Google Gemini via google-genai: understand (images, video, streaming, "
                    "schemas), classify, native image generation; Imagen on Vertex AI",
        retired=lifecycle.retired,  # read against mmsdk.plugin.today() on every lookup
    ))
