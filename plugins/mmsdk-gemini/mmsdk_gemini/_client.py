"""Building the ``genai.Client`` for a model object, with SDK retries off."""

from __future__ import annotations

import os

from google import genai
from google.genai import types

from mmsdk.plugin import ProviderUnavailableError

from ._build import NO_RETRY
from ._errors import gemini_errors
from ._settings import KEY_FIX, GeminiSettings, api_key, use_vertex, vertex_project

__all__ = ["custom_base_url", "make_client"]


def custom_base_url(settings: GeminiSettings) -> str | None:
    """The endpoint set by settings or ``GOOGLE_GEMINI_BASE_URL``; ``None`` for Google's own."""
    if use_vertex(settings):
        return settings.base_url or os.environ.get("GOOGLE_VERTEX_BASE_URL") or None
    return settings.base_url or os.environ.get("GOOGLE_GEMINI_BASE_URL") or None


def make_client(settings: GeminiSettings, provider: str) -> genai.Client:
    """A client for the Gemini Developer API, or Vertex AI when configured.

    ``base_url=None`` lets the SDK read ``GOOGLE_GEMINI_BASE_URL`` /
    ``GOOGLE_VERTEX_BASE_URL`` itself, so what those set is never overridden.
    """
    options = types.HttpOptions(base_url=settings.base_url, retry_options=NO_RETRY)
    key = api_key(settings)
    try:
        with gemini_errors(provider):
            if use_vertex(settings):
                project = vertex_project(settings)
                if project:
                    return genai.Client(vertexai=True, project=project,
                                        location=settings.location, http_options=options)
                return genai.Client(vertexai=True, api_key=key, http_options=options)
            if not key:
                raise ProviderUnavailableError(f"{provider} has no API key.", provider=provider,
                                               fix=KEY_FIX)
            return genai.Client(vertexai=False, api_key=key, http_options=options)
    except ValueError as exc:  # the SDK's own configuration checks
        raise ProviderUnavailableError(f"{provider} could not create its client: {exc}",
                                       provider=provider, fix=KEY_FIX) from None
