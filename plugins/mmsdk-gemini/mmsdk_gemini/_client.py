"""The ``genai.Client`` a call uses: built for the connection in force, with SDK retries off."""

from __future__ import annotations

from google import genai
from google.genai import types

from mmsdk.plugin import ClientCache, Connection, ProviderUnavailableError

from ._build import NO_RETRY
from ._errors import gemini_errors
from ._settings import KEY_FIX, SETTINGS, base_url

__all__ = ["client_cache", "gemini_connection"]


def gemini_connection(api_key: str | None = None) -> Connection:
    """The connection in force: *api_key* (a router's) wins over settings and environment."""
    settings = SETTINGS.resolved()
    vertex = bool(settings.vertexai)
    return Connection(api_key or settings.api_key, base_url(settings), (
        ("vertexai", "1" if vertex else None),
        ("project", settings.project if vertex else None),
        ("location", settings.location if vertex else None)))


def make_client(conn: Connection, provider: str) -> genai.Client:
    """A client for the Gemini Developer API, or Vertex AI when configured."""
    options = types.HttpOptions(base_url=conn.base_url, retry_options=NO_RETRY)
    key = conn.api_key
    try:
        with gemini_errors(provider):
            if conn.get("vertexai"):
                project = conn.get("project")
                if project:
                    return genai.Client(vertexai=True, project=project,
                                        location=conn.get("location"), http_options=options)
                return genai.Client(vertexai=True, api_key=key, http_options=options)
            if not key:
                raise ProviderUnavailableError(f"{provider} has no API key.", provider=provider,
                                               fix=KEY_FIX)
            return genai.Client(vertexai=False, api_key=key, http_options=options)
    except ValueError as exc:  # the SDK's own configuration checks
        raise ProviderUnavailableError(f"{provider} could not create its client: {exc}",
                                       provider=provider, fix=KEY_FIX) from None


async def _aclose(client: genai.Client) -> None:
    await client.aio.aclose()
    client.close()


def client_cache(provider: str) -> ClientCache[genai.Client, genai.Client]:
    """A model object's clients: a sync one, and one per event loop (used through ``.aio``)."""
    return ClientCache(make=lambda conn: make_client(conn, provider),
                       amake=lambda conn: make_client(conn, provider),
                       close=lambda client: client.close(), aclose=_aclose)
