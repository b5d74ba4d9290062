"""SDK clients for one model object: one per base URL.

Clients are created on first use and reused (sync: one set; async: one set per
event loop, because an ``AsyncOpenAI`` connection pool cannot outlive its
loop). Each async set is closed when its loop shuts down (a small async
generator registered with the loop, which ``asyncio.run`` and
``asyncio.Runner`` close via ``shutdown_asyncgens``), or by :meth:`close`.

SDK retries are off (``max_retries=0``): the mmsdk router owns retries. With
several base URLs (a replica pool), the router chooses the replica for each
attempt and names it in ``Request.endpoint``: the call goes to that URL's
client and nowhere else (its failure is the router's to act on). A call that
names none (a model object used directly) starts at the next URL in turn, and
a connection failure (refused, reset, dropped) moves it to the following URL;
a timeout does not: the attempt's time is spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import openai

__all__ = ["ClientPool", "Endpoints"]

logger = logging.getLogger("mmsdk.openai")
T = TypeVar("T")


@dataclass(frozen=True)
class Endpoints:
    """Where and how to connect.

    Attributes:
        urls: base URLs; ``None`` lets the SDK use ``OPENAI_BASE_URL`` or its default.
        api_key: ``None`` lets the SDK read ``OPENAI_API_KEY``.
        organization / project: ``None`` lets the SDK read its own variables.
    """

    urls: tuple[str | None, ...]
    api_key: str | None = None
    organization: str | None = None
    project: str | None = None

    def __repr__(self) -> str:  # never show the key
        return f"Endpoints(urls={self.urls!r}, api_key={'set' if self.api_key else None!r})"


def _where(url: str | None) -> str:
    if url is None:
        return "default endpoint"
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


async def _closer(clients: list[openai.AsyncOpenAI]) -> AsyncIterator[None]:
    """Suspended for the loop's lifetime; the loop closes it at shutdown."""
    try:
        yield
    finally:
        for client in clients:
            await client.close()


async def _aclose(closer: AsyncIterator[None]) -> None:
    await closer.aclose()  # type: ignore[attr-defined]


@dataclass
class _LoopClients:
    version: int
    clients: list[openai.AsyncOpenAI]
    closer: AsyncIterator[None]


class ClientPool:
    """The clients one model object uses.

    Args:
        endpoints: returns the current connection settings.
        version: returns a number that changes when those settings change.
    """

    def __init__(self, endpoints: Callable[[], Endpoints], version: Callable[[], int]) -> None:
        self._endpoints = endpoints
        self._version = version
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._sync: list[openai.OpenAI] = []
        self._sync_version = -1
        self._urls: tuple[str | None, ...] = ()
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = \
            weakref.WeakKeyDictionary()
        self._building: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[int, asyncio.Task[list[openai.AsyncOpenAI]]]] = \
            weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"<ClientPool {', '.join(_where(u) for u in self._urls) or 'unused'}>"

    # -- sync ------------------------------------------------------------------
    def _sync_clients(self) -> list[openai.OpenAI]:
        version = self._version()
        if version == self._sync_version:
            return self._sync
        with self._lock:
            if version != self._sync_version:
                old, config = self._sync, self._endpoints()
                self._sync = [openai.OpenAI(api_key=config.api_key, base_url=url,
                                            organization=config.organization,
                                            project=config.project, max_retries=0)
                              for url in config.urls]
                self._urls, self._sync_version = config.urls, version
                for client in old:
                    client.close()
        return self._sync

    def _chosen(self, endpoint: str) -> int:
        """The index of the client for *endpoint* (a base URL routing chose)."""
        try:
            return self._urls.index(endpoint)
        except ValueError:
            raise ValueError(f"{_where(endpoint)} is not one of this model's base URLs") from None

    def call(self, send: Callable[[openai.OpenAI], T], endpoint: str | None = None) -> T:
        """Run ``send(client)``: on *endpoint*'s client when given, else moving to the next
        base URL on a connection failure."""
        clients = self._sync_clients()
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

    # -- async -----------------------------------------------------------------
    async def _async_clients(self) -> list[openai.AsyncOpenAI]:
        loop = asyncio.get_running_loop()
        version = self._version()
        entry = self._async.get(loop)
        if entry is not None and entry.version == version:
            return entry.clients
        # Calls arriving together on a cold loop (a burst over a pool) share one build.
        building = self._building.get(loop)
        if building is None or building[0] != version:
            building = (version, loop.create_task(self._build(loop, version)))
            self._building[loop] = building
        return await asyncio.shield(building[1])  # a caller that leaves does not stop it

    async def _build(self, loop: asyncio.AbstractEventLoop,
                     version: int) -> list[openai.AsyncOpenAI]:
        try:
            entry = self._async.get(loop)
            if entry is not None and entry.version == version:
                return entry.clients
            if entry is not None:
                await entry.closer.aclose()  # type: ignore[attr-defined]
            config = self._endpoints()

            def build() -> list[openai.AsyncOpenAI]:
                with contextlib.suppress(ImportError):  # what the transport imports on first use
                    import anyio._backends._asyncio  # noqa: F401
                return [openai.AsyncOpenAI(api_key=config.api_key, base_url=url,
                                           organization=config.organization,
                                           project=config.project, max_retries=0)
                        for url in config.urls]

            # Building a client loads the TLS trust store (tens of ms): not on the caller's loop.
            clients = await asyncio.to_thread(build)
            closer = _closer(clients)
            await closer.__anext__()  # registers it with this loop's shutdown_asyncgens
            with self._lock:  # loops in other threads share this pool
                for stale in [other for other in list(self._async) if other.is_closed()]:
                    self._async.pop(stale, None)
                self._async[loop] = _LoopClients(version, clients, closer)
                self._urls = config.urls
            return clients
        finally:
            building = self._building.get(loop)
            if building is not None and building[0] == version:
                self._building.pop(loop, None)

    async def acall(self, send: Callable[[openai.AsyncOpenAI], Awaitable[T]],
                    endpoint: str | None = None) -> T:
        """Async twin of :meth:`call`."""
        clients = await self._async_clients()
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

    # -- lifetime --------------------------------------------------------------
    def close(self) -> None:
        """Close every client: sync ones now, async ones on their own loop."""
        with self._lock:
            sync, self._sync, self._sync_version = self._sync, [], -1
            entries = list(self._async.items())
            self._async.clear()
        for client in sync:
            client.close()
        for loop, entry in entries:
            if loop.is_closed():
                continue  # its shutdown_asyncgens closed them already
            closing = _aclose(entry.closer)
            if loop.is_running():  # unload() called from async code: close on that loop
                asyncio.run_coroutine_threadsafe(closing, loop)
            else:
                loop.run_until_complete(closing)
