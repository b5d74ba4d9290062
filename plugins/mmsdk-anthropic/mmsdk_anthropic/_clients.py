"""The SDK clients one model object uses: made once, remade only when the key or endpoint changes.

SDK retries are off (``max_retries=0``): mmsdk's router owns retries, and the
SDK would otherwise obey any ``Retry-After`` (3600 means an hour's sleep).

An ``AsyncAnthropic`` pools connections bound to the event loop that opened
them; reused on another loop it fails and leaks the old transports. So there
is one async client per running loop (for an ordinary app: one), closed inside
its own loop when that loop shuts down (``asyncio.run`` and ``asyncio.Runner``
close pending async generators, and a tiny one here holds the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmsdk.plugin import ProviderUnavailableError

from ._settings import API_KEY_ENV, Connection, connection

if TYPE_CHECKING:
    from anthropic import Anthropic, AsyncAnthropic

__all__ = ["Clients"]

_CLOSE_WAIT = 5.0  # seconds close() waits for a client on another thread's loop
_closing: set[asyncio.Task[None]] = set()  # closes in flight (the loop holds tasks weakly)


def _client_kwargs(conn: Connection) -> dict[str, Any]:
    credential = {"api_key": conn.api_key} if conn.api_key else {"auth_token": conn.auth_token}
    # base_url is ANTHROPIC_BASE_URL unless configure(base_url=...) set one; None = SDK default.
    return {**credential, "base_url": conn.base_url, "max_retries": 0}


async def _close_at_shutdown(client: AsyncAnthropic) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.close()


async def _finish(finalizer: AsyncGenerator[None, None]) -> None:
    await finalizer.aclose()


@dataclass
class _AsyncEntry:
    conn: Connection
    client: AsyncAnthropic
    finalizer: AsyncGenerator[None, None]


class Clients:
    """A sync client and per-loop async clients for one provider string.

    Args:
        provider: the provider string, for errors.
        api_key: a router's key, used instead of the settings' and the environment's.
    """

    def __init__(self, provider: str, *, api_key: str | None = None) -> None:
        self.provider = provider
        self._api_key = api_key
        self._lock = threading.Lock()
        self._sync: tuple[Connection, Anthropic] | None = None
        self._async: dict[asyncio.AbstractEventLoop, _AsyncEntry] = {}

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
        conn = self._connection()
        with self._lock:
            current = self._sync
            if current is not None and current[0] == conn:
                return current[1]
            from anthropic import Anthropic

            client = Anthropic(**_client_kwargs(conn))
            self._sync = (conn, client)
        if current is not None:
            current[1].close()  # new key or endpoint (configure / environment changed)
        return client

    async def async_(self) -> AsyncAnthropic:
        """The async client for the running loop and the credentials in force."""
        conn = self._connection()
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is not None and entry.conn == conn:
            return entry.client
        from anthropic import AsyncAnthropic

        client = AsyncAnthropic(**_client_kwargs(conn))
        finalizer = _close_at_shutdown(client)
        await finalizer.__anext__()  # registers it with the loop's async-generator shutdown
        with self._lock:
            self._async = {other: e for other, e in self._async.items() if not other.is_closed()}
            self._async[loop] = _AsyncEntry(conn, client, finalizer)
        if entry is not None:
            await entry.finalizer.aclose()  # stale credentials: close it now, in its own loop
        return client

    def close(self) -> None:
        """Close every client whose loop can still run its close."""
        with self._lock:
            current, self._sync = self._sync, None
            entries, self._async = self._async, {}
        if current is not None:
            current[1].close()
        for loop, entry in entries.items():
            _close_in_loop(loop, entry.finalizer)


def _close_in_loop(loop: asyncio.AbstractEventLoop, finalizer: AsyncGenerator[None, None]) -> None:
    if loop.is_closed():
        return  # closed at that loop's shutdown, or its sockets went with it
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    closing = _finish(finalizer)
    if running is loop:
        task = loop.create_task(closing)  # close() is sync: let the loop finish it
        _closing.add(task)
        task.add_done_callback(_closing.discard)
    elif loop.is_running():
        # Best effort: a loop too busy to close it now still closes it at its shutdown.
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(closing, loop).result(_CLOSE_WAIT)
    else:
        loop.run_until_complete(closing)
