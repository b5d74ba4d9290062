"""A result cache on disk (diskcache), for repeatable calls only.

``mmsdk.configure(cache=PATH)`` or ``Router(..., cache=PATH)`` turns it on; a
:class:`Cache` bounds its size. Routing consults it for each candidate as the
route reaches it, after fitting the inputs to that provider: a hit returns the
stored result (``result.cached`` is ``True``, one ``"ok"`` attempt, no
request made, ``usage.cost_usd`` 0) and the route ends there.

A call is cached when asking again gives the same answer:

* generate: with a fixed ``seed``;
* understand: cloud providers with ``temperature=0``; local ones with greedy
  decoding (``temperature`` unset or 0); never a stream;
* classify: local providers (deterministic scores); cloud classify takes no
  ``temperature`` and is not cached;
* embed: always (the vectors of an input do not change).

The key is a SHA-256 of the provider string, the credential's fingerprint for
a router with its own key, the capability, and every field of the request the
provider receives: each image as the bytes that would be sent (or its pixels
for in-process providers), a native video's file content, the prompt, labels,
the schema's JSON schema, options and first-class parameters. Timeouts and
progress bars are not part of it.

Values are pickled by diskcache (SQLite plus files), which is safe for several
threads and processes sharing one folder; keep the folder private, as one
would any pickle store. A result that cannot be stored, or an entry that
cannot be read back, is logged and treated as a miss: the cache never fails a
call.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from typing import Any

from pydantic import BaseModel

from ._errors import InvalidInputError
from ._types import Capability

__all__ = ["Cache", "as_cache", "cache_key", "repeatable"]

logger = logging.getLogger("mmsdk.cache")

DEFAULT_SIZE = 1 << 30  # 1 GiB
_KEY_VERSION = "mmsdk-cache/1"
_NOT_KEYED = frozenset({"timeout", "progress", "deadline", "cancel", "endpoint"})


class Cache:
    """A size-bounded result cache in a folder, shared safely by threads and processes.

    Args:
        path: the folder (created on first use).
        size_limit: bytes kept on disk, about; past it the least recently used
            entries are evicted (default 1 GiB).

    Example:
        >>> mmsdk.configure(cache=mmsdk.Cache("~/.cache/mmsdk", size_limit=200_000_000))
    """

    def __init__(self, path: str | os.PathLike[str], *, size_limit: int = DEFAULT_SIZE) -> None:
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise InvalidInputError(f"cache path must be a folder path, got {path!r}.")
        if isinstance(size_limit, bool) or not isinstance(size_limit, int) or size_limit <= 0:
            raise InvalidInputError(f"cache size_limit must be a number of bytes above zero, "
                                    f"got {size_limit!r}.")
        self.path = os.path.expanduser(os.fspath(path))
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise InvalidInputError(f"cache path {self.path!r} is a file, not a folder; name a "
                                    "folder (created on first use).")
        self.size_limit = size_limit
        self._store: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Cache({self.path!r}, size_limit={self.size_limit})"

    def _open(self) -> Any:
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    import diskcache  # type: ignore[import-untyped]  # only when a cache is in use: importing mmsdk stays light

                    # One eviction per store (diskcache's default, ten, empties a
                    # cache of a few large results at once); set() culls further
                    # when one large result alone overflows it.
                    self._store = diskcache.Cache(self.path, size_limit=self.size_limit,
                                                  eviction_policy="least-recently-used",
                                                  cull_limit=1)
                store = self._store
        return store

    def get(self, key: str) -> Any:
        """The value stored under *key*, or ``None`` (a miss, or an unreadable entry)."""
        try:
            return self._open().get(key)
        except Exception as exc:  # a corrupt entry or a disk error: a miss, never a failure
            logger.warning("mmsdk: the cache at %s could not be read (%s: %s); calling the "
                           "provider", self.path, type(exc).__name__, exc)
            return None

    def set(self, key: str, value: Any) -> bool:
        """Store *value* under *key*; ``False`` (logged) when it could not be stored."""
        try:
            store = self._open()
            stored: bool = store.set(key, value)
            if store.volume() > self.size_limit:
                store.cull()
            return stored
        except Exception as exc:  # an unpicklable schema object, a full disk
            logger.warning("mmsdk: a result could not be cached at %s (%s: %s)", self.path,
                           type(exc).__name__, exc)
            return False

    def __len__(self) -> int:
        return len(self._open())

    def volume(self) -> int:
        """Bytes the cache takes on disk (what ``size_limit`` bounds)."""
        volume: int = self._open().volume()
        return volume

    def clear(self) -> None:
        """Remove every entry."""
        self._open().clear()

    def close(self) -> None:
        """Close its files (it reopens on next use)."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def as_cache(value: Any, what: str) -> Cache | None:
    """*value* (a folder path, a :class:`Cache` or ``None``) as a :class:`Cache`."""
    if value is None or isinstance(value, Cache):
        return value
    if isinstance(value, (str, os.PathLike)):
        return Cache(value)
    raise InvalidInputError(f"{what} must be a folder path or a mmsdk.Cache, got "
                            f"{type(value).__name__}.")


def repeatable(capability: Capability, request: Any, local: bool) -> bool:
    """Whether the same call gives the same answer (the only calls cached)."""
    if capability is Capability.GENERATE:
        return getattr(request, "seed", None) is not None
    if capability is Capability.UNDERSTAND:
        if getattr(request, "stream", False):
            return False
        temperature = getattr(request, "temperature", None)
        return temperature == 0 or (local and temperature is None)
    if capability is Capability.CLASSIFY:
        return local
    return True  # embed


def cache_key(capability: Capability, bound: Any) -> str | None:
    """The key for *bound* (a job fitted to one provider), or ``None`` when not repeatable."""
    resolved, request = bound.resolved, bound.request
    if not repeatable(capability, request, resolved.info.local):
        return None
    digest = hashlib.sha256()
    _feed(digest, [_KEY_VERSION, capability.value, resolved.provider, resolved.credential])
    for name in sorted(type(request).model_fields):
        if name not in _NOT_KEYED:
            _feed(digest, name)
            _feed(digest, getattr(request, name))
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    """Add *value* to *digest*, typed and length-prefixed so distinct values never collide."""
    from ._prepare import PreparedImage
    from ._video import VideoInput

    if isinstance(value, PreparedImage):
        if value.format is not None:
            _chunk(digest, b"img:" + value.format.encode(), value.data or b"")
        else:
            image = value.image
            _chunk(digest, f"pix:{image.mode}:{image.size}".encode(), image.tobytes())
    elif isinstance(value, VideoInput):
        stat = os.stat(value.path)
        _chunk(digest, b"video", _file_digest(os.fspath(value.path), stat.st_size,
                                              stat.st_mtime_ns))
    elif isinstance(value, type) and issubclass(value, BaseModel):
        schema = json.dumps(value.model_json_schema(), sort_keys=True, default=repr)
        _chunk(digest, b"schema", schema.encode())
    elif isinstance(value, (list, tuple)):
        _chunk(digest, b"list", str(len(value)).encode())
        for item in value:
            _feed(digest, item)
    else:
        text = json.dumps(value, sort_keys=True, default=repr)
        _chunk(digest, b"json", text.encode())


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> bytes:
    """SHA-256 of a file's content, read once per version (size and modification time):
    a call looks its video up for each candidate it reaches."""
    file_digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            file_digest.update(block)
    return file_digest.digest()


def _chunk(digest: Any, tag: bytes, data: bytes) -> None:
    digest.update(tag + b":" + str(len(data)).encode() + b":")
    digest.update(data)


def stored(result: Any) -> Any:
    """What is kept for *result*: schema objects as plain data (re-validated on a hit)."""
    items = result if isinstance(result, list) else [result]
    copies = []
    for item in items:
        data = getattr(item, "data", None)
        if isinstance(data, BaseModel):
            item = item.model_copy(update={"data": data.model_dump(mode="json")})
        copies.append(item)
    return copies if isinstance(result, list) else copies[0]


def restored(value: Any, request: Any) -> Any:
    """A stored result back as the call returns it, or ``None`` if it no longer fits."""
    schema = getattr(request, "response_schema", None)
    items = value if isinstance(value, list) else [value]
    for item in items:
        if schema is not None and isinstance(getattr(item, "data", None), dict):
            try:
                item.data = schema.model_validate(item.data)
            except ValueError:  # the schema changed its fields under the same JSON schema
                return None
        item.cached = True
    return value
