"""SDK clients for one model object: one per base URL, on :class:`mmsdk.plugin.ClientCache`.

The kit keeps them (sync: one set; async: one set per event loop), rebuilds
them when the key or endpoint in force changes, and closes them. What is
left here is OpenAI's: a client per base URL, and which one a call uses.

SDK retries are off (``max_retries=0``): the mmsdk router owns retries. With
several base URLs (a replica pool), the router chooses the replica for each
attempt and names it in ``Request.endpoint``: the call goes to that URL's
client and nowhere else (its failure is the router's to act on). A call that
names none (a model object used directly) starts at the next URL in turn, and
a connection failure (refused, reset, dropped) moves it to the following URL;
a timeout does not: the attempt's time is spent.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

import openai

from mmsdk.plugin import ClientCache, Connection

from ._config import SETTINGS

__all__ = ["ClientPool", "openai_pool"]

logger = logging.getLogger("mmsdk.openai")
T = TypeVar("T")


def _where(url: str | None) -> str:
    if url is None:
        return "default endpoint"
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def openai_connection(api_key: str | None = None) -> Connection:
    """The ``openai`` provider's connection in force: *api_key* (a router's) wins."""
    settings = SETTINGS.resolved()
    return Connection(api_key or settings.api_key, settings.base_url,
                      (("organization", settings.organization), ("project", settings.project)))


def openai_pool(api_key: str | None = None) -> ClientPool:
    """The clients of one ``openai`` model object (settings read at every call)."""
    return ClientPool(lambda: openai_connection(api_key))


class ClientPool:
    """The clients one model object uses.

    Args:
        connect: the connection in force, asked at every call.
        urls: a replica pool's base URLs (``None``: the connection's ``base_url``).
    """

    def __init__(self, connect: Callable[[], Connection],
                 urls: Sequence[str] | None = None) -> None:
        self._connect = connect
        self._fixed = tuple(urls) if urls is not None else None
        self._turn = itertools.count()
        self._urls: tuple[str | None, ...] = self._fixed or ()
        self.clients: ClientCache[list[openai.OpenAI], list[openai.AsyncOpenAI]] = ClientCache(
            make=lambda conn: self._make(openai.OpenAI, conn),
            amake=lambda conn: self._make(openai.AsyncOpenAI, conn, prepare=True),
            close=self._close, aclose=self._aclose)

    def __repr__(self) -> str:
        return f"<ClientPool {', '.join(_where(u) for u in self._urls) or 'unused'}>"

    def _make(self, kind: Callable[..., T], conn: Connection, prepare: bool = False) -> list[T]:
        if prepare:
            with contextlib.suppress(ImportError):  # what the transport imports on first use
                import anyio._backends._asyncio  # noqa: F401
        self._urls = self._fixed or (conn.base_url,)
        return [kind(api_key=conn.api_key, base_url=url, organization=conn.get("organization"),
                     project=conn.get("project"), max_retries=0) for url in self._urls]

    @staticmethod
    def _close(clients: list[openai.OpenAI]) -> None:
        for client in clients:
            client.close()

    @staticmethod
    async def _aclose(clients: list[openai.AsyncOpenAI]) -> None:
        for client in clients:
            await client.close()

    def _chosen(self, endpoint: str) -> int:
        """The index of the client for *endpoint* (a base URL routing chose)."""
        try:
            return self._urls.index(endpoint)
        except ValueError:
            raise ValueError(f"{_where(endpoint)} is not one of this model's base URLs") from None

    def call(self, send: Callable[[openai.OpenAI], T], endpoint: str | None = None) -> T:
        """Run ``send(client)``: on *endpoint*'s client when given, else moving to the next
        base URL on a connection failure."""
        clients = self.clients.get(self._connect())
        if len(clients) == 1:
            return send(clients[0])
        if endpoint is not None:
            return send(clients[self._chosen(endpoint)])
        start = next(self._turn)
        for step in range(len(clients)):
            index = (start + step) % len(clients)
            try:
                return send(clients[index])
            except openai.APITimeoutError:
                raise
            except openai.APIConnectionError:
                if step == len(clients) - 1:
                    raise
                self._failed_over(index)
        raise AssertionError("unreachable")  # pragma: no cover

    async def acall(self, send: Callable[[openai.AsyncOpenAI], Awaitable[T]],
                    endpoint: str | None = None) -> T:
        """Async twin of :meth:`call`."""
        clients = await self.clients.aget(self._connect())
        if len(clients) == 1:
            return await send(clients[0])
        if endpoint is not None:
            return await send(clients[self._chosen(endpoint)])
        start = next(self._turn)
        for step in range(len(clients)):
            index = (start + step) % len(clients)
            try:
                return await send(clients[index])
            except openai.APITimeoutError:
                raise
            except openai.APIConnectionError:
                if step == len(clients) - 1:
                    raise
                self._failed_over(index)
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed_over(self, index: int) -> None:
        logger.warning("mmsdk.openai: %s unreachable; trying the next endpoint",
                       _where(self._urls[index]) if index < len(self._urls) else "endpoint")

    def close(self) -> None:
        """Close every client: sync ones now, async ones on their own loop."""
        self.clients.close()
