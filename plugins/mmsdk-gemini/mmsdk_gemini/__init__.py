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
:func:`configure`; ``mmsdk.Router(..., credentials={"gemini": KEY})`` sends that
router's own key instead (not with a Vertex AI project). Imagen models (``gemini:imagen-...``) need Vertex AI
(``GOOGLE_GENAI_USE_VERTEXAI=true``). Importing this module imports no SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmsdk.plugin import Availability, Model, ModelInfo, ProviderSpec, add_secret, hookimpl

from ._describe import describe, lifecycle, model_class
from ._settings import (
    DefaultModels,
    GeminiSettings,
    availability,
    availability_with_key,
    configure,
    get_settings,
)

__all__ = ["GeminiSettings", "configure", "describe", "get_settings", "model_class",
           "provider_spec", "register_providers"]


def _factory(model: str, provider: str, info: ModelInfo, api_key: str | None = None) -> Model:
    from ._model import GeminiModel  # the SDK is imported on first use only

    return GeminiModel(provider, info, model, api_key=api_key)


def provider_spec(api_key: str | None = None) -> ProviderSpec:
    """The ``gemini`` provider as registered.

    Args:
        api_key: a key used instead of ``configure(api_key=...)``,
            ``GOOGLE_API_KEY`` and ``GEMINI_API_KEY``
            (``mmsdk.Router(credentials={"gemini": ...})``); the provider is
            then available without them. Not with a Vertex AI project, whose
            Application Default Credentials take no API key.
    """
    factory: Callable[[str, str, ModelInfo], Model] = _factory
    check: Callable[[str], Availability] = availability
    if api_key is not None:
        add_secret(api_key)

        def factory(model: str, provider: str, info: ModelInfo) -> Model:  # a closure: no
            return _factory(model, provider, info, api_key)  # repr shows the key

        check = availability_with_key
    return ProviderSpec(
        name="gemini",
        model_class=model_class,
        factory=factory,
        describe=describe,
        default_models=DefaultModels(),
        check=check,
        description="Google Gemini via google-genai: understand (images, video, streaming, "
                    "schemas), classify, native image generation; Imagen on Vertex AI",
        retired=lifecycle.retired,  # read against mmsdk.plugin.today() on every lookup
        with_key=provider_spec,
    )


@hookimpl
def register_providers(register: Any) -> None:
    """Register the ``gemini`` provider."""
    register(provider_spec())
