"""Streaming answers: iterators of text chunks whose ``.result`` is the whole answer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, NoReturn

from ._errors import MMSDKError, ProviderError
from ._jobs import finish, validate_structured
from ._plugin_helpers import raise_mapped
from ._run import Opened
from ._types import UnderstandResult

__all__ = ["AsyncTextStream", "TextStream"]

_EMPTY = object()


class _StreamState:
    """What both stream flavours share: the first event, chunks seen, the ending."""

    def __init__(self, opened: Opened) -> None:
        self._opened = opened
        self._pending: Any = opened.first
        self._chunks: list[str] = []
        self._final: UnderstandResult | None = None
        self.result: UnderstandResult | None = None
        """The whole answer, set once the stream is exhausted."""

    @property
    def provider(self) -> str:
        return self._opened.bound.resolved.provider

    def _release(self) -> None:
        """Give the router's concurrency slot back (once): the stream has ended."""
        release, self._opened.release = self._opened.release, None
        if release is not None:
            release()

    def __del__(self) -> None:  # a stream dropped unfinished must not keep its slot
        self._release()

    def _take(self, event: Any) -> str | None:
        if isinstance(event, str):
            if event:
                self._chunks.append(event)
                return event
            return None
        if isinstance(event, UnderstandResult):
            self._final = event
            return None
        error = ProviderError(f"{self.provider} streamed a {type(event).__name__}; expected str "
                              "chunks and one UnderstandResult.", provider=self.provider)
        error.partial_text = "".join(self._chunks)
        raise error

    def _wrap(self, exc: Exception) -> MMSDKError:
        """The error to raise for *exc*, carrying the text the caller has received so far."""
        if isinstance(exc, MMSDKError):
            error = exc
        else:
            error = ProviderError(f"{self.provider} failed mid-stream: {type(exc).__name__}: "
                                  f"{exc}.", provider=self.provider)
        error.partial_text = "".join(self._chunks)
        return error

    def _raise(self, exc: Exception) -> NoReturn:
        """Raise the error for *exc*, which broke the stream (its chain holds no key)."""
        error = self._wrap(exc)
        if error is exc:
            raise error  # a plugin's own mmsdk error, chained as the plugin chose
        raise_mapped(error, exc)

    def _complete(self) -> None:
        run, bound = self._opened.run, self._opened.bound
        final = self._final or UnderstandResult(text="".join(self._chunks))
        if not final.text:
            final.text = "".join(self._chunks)
        request = bound.request
        try:
            final = validate_structured(final, request, self.provider)  # type: ignore[arg-type]
        except MMSDKError as error:  # the answer arrived whole but did not validate
            error.partial_text = "".join(self._chunks)
            raise
        finish(final, bound)
        final.usage.cost_usd = run.stream_cost(final, bound)
        final.attempts = run.ordered_attempts()
        final.elapsed = time.monotonic() - run.started
        self.result = final


class TextStream(_StreamState, Iterator[str]):
    """Iterate for text chunks; after the last one, ``.result`` holds the whole answer.

    Example:
        >>> stream = mmsdk.understand("Describe", images=[img], provider="openai", stream=True)
        >>> for chunk in stream:
        ...     print(chunk, end="")
        >>> stream.result.usage
    """

    def __init__(self, opened: Opened) -> None:
        super().__init__(opened)
        self._iterator: Iterator[Any] = opened.iterator

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        while True:
            if self._pending is not _EMPTY:
                event, self._pending = self._pending, _EMPTY
            else:
                try:
                    event = next(self._iterator)
                except StopIteration:
                    self._release()
                    if self.result is None:
                        self._complete()
                    raise
                except Exception as exc:
                    self._release()
                    self._raise(exc)
            chunk = self._take(event)
            if chunk is not None:
                return chunk

    def text(self) -> str:
        """Consume the rest of the stream and return the whole answer."""
        for _ in self:
            pass
        assert self.result is not None
        return self.result.text

    def close(self) -> None:
        self._release()
        close = getattr(self._iterator, "close", None)
        if close:
            close()

    def __enter__(self) -> TextStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncTextStream(_StreamState, AsyncIterator[str]):
    """Async twin of :class:`TextStream`."""

    def __init__(self, opened: Opened) -> None:
        super().__init__(opened)
        self._iterator: AsyncIterator[Any] = opened.iterator

    def __aiter__(self) -> AsyncTextStream:
        return self

    async def __anext__(self) -> str:
        while True:
            if self._pending is not _EMPTY:
                event, self._pending = self._pending, _EMPTY
            else:
                try:
                    event = await self._iterator.__anext__()
                except StopAsyncIteration:
                    self._release()
                    if self.result is None:
                        self._complete()
                    raise
                except BaseException as exc:
                    self._release()
                    if not isinstance(exc, Exception):
                        raise  # cancelled: the slot is back, the task goes on unwinding
                    self._raise(exc)
            chunk = self._take(event)
            if chunk is not None:
                return chunk

    async def text(self) -> str:
        """Consume the rest of the stream and return the whole answer."""
        async for _ in self:
            pass
        assert self.result is not None
        return self.result.text

    async def aclose(self) -> None:
        self._release()
        close = getattr(self._iterator, "aclose", None)
        if close:
            await close()

    async def __aenter__(self) -> AsyncTextStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
