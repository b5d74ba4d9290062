"""The SDK clients of one model object, on :class:`mmsdk.plugin.ClientCache`.

The kit keeps a sync client and one async client per event loop, opens new
ones when the key or endpoint in force changes, and closes them. SDK retries
are off (``max_retries=0``): mmsdk's router owns retries, and the SDK would
otherwise obey any ``Retry-After`` (3600 means an hour's sleep).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsdk.plugin import ClientCache, Connection, ProviderUnavailableError

from ._settings import API_KEY_ENV, connection

if TYPE_CHECKING:
    from anthropic import Anthropic, AsyncAnthropic

__all__ = ["Clients"]


def _client_kwargs(conn: Connection) -> dict[str, Any]:
    credential = {"api_key": conn.api_key} if conn.api_key else \
        {"auth_token": conn.get("auth_token")}
    return {**credential, "base_url": conn.base_url, "max_retries": 0}


def _make(conn: Connection) -> Anthropic:
    from anthropic import Anthropic

    return Anthropic(**_client_kwargs(conn))


def _amake(conn: Connection) -> AsyncAnthropic:
    from anthropic import AsyncAnthropic

    return AsyncAnthropic(**_client_kwargs(conn))


async def _aclose(client: AsyncAnthropic) -> None:
    await client.close()


class Clients:
    """A sync client and per-loop async clients for one provider string.

    Args:
        provider: the provider string, for errors.
        api_key: a router's key, used instead of the settings' and the environment's.
    """

    def __init__(self, provider: str, *, api_key: str | None = None) -> None:
        self.provider = provider
        self._api_key = api_key
        self.cache: ClientCache[Anthropic, AsyncAnthropic] = ClientCache(
            make=_make, amake=_amake, close=lambda client: client.close(), aclose=_aclose)

    def __repr__(self) -> str:
        return f"<Clients {self.provider}>"

    def _connection(self) -> Connection:
        conn = connection(self._api_key)
        if conn is None:
            raise ProviderUnavailableError(
                f"{self.provider} has no API key: {API_KEY_ENV} is not set.",
                provider=self.provider,
                fix=f"export {API_KEY_ENV}=... (or call mmsdk_anthropic.configure(api_key=...))")
        return conn

    def sync(self) -> Anthropic:
        """The sync client for the credentials in force."""
        return self.cache.get(self._connection())

    async def async_(self) -> AsyncAnthropic:
        """The async client for the running loop and the credentials in force."""
        return await self.cache.aget(self._connection())

    def close(self) -> None:
        """Close every client; the next call opens new ones."""
        self.cache.close()
