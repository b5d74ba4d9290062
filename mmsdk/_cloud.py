"""The kit for cloud plugins: settings, clients and one error boundary.

A cloud plugin (an SDK talking to a hosted API) needs the same plumbing every
time; this module holds it once, so each plugin keeps only what is its own
(which variables, how to build a client, how its SDK's exceptions read).

**Settings** (:class:`CloudSettings`, :class:`PluginSettings`). One
precedence order, highest first, for every setting of every cloud plugin:

1. explicit settings: ``mmsdk_<plugin>.configure(name=value)`` (``None``
   gives the setting back to the environment);
2. the environment: the official SDK's own variables (``OPENAI_API_KEY``,
   ``ANTHROPIC_BASE_URL``, ``GEMINI_API_KEY`` ...) and mmsdk's
   ``MMSDK_<PLUGIN>_*MODEL`` defaults;
3. the plugin's built-in defaults.

Everything is read when a call is made, not when a model object is created:
a ``configure(api_key=...)`` or a changed variable takes effect on the next
call, with no ``mmsdk.unload``. A router's own key
(``mmsdk.Router(credentials={"openai": KEY})``) wins over all three for
that router's calls. A settings object's repr never shows a key.

**Clients** (:class:`Connection`, :class:`ClientCache`). A model object keeps
one sync client and one async client per event loop (an async client's
connection pool belongs to the loop that opened it), each for the connection
in force: when the key or endpoint changes, the next call opens a client for
the new one and closes the old (a cached client is reused while the
connection's fields are equal; :func:`fingerprint`, never the key, tags a build
in flight). Clients are built off the event loop (importing an SDK and loading the
TLS trust store takes tens of milliseconds), an async client is closed when
its loop shuts down, and :meth:`ClientCache.close` (``mmsdk.unload``) closes
them all.

**Errors** (:class:`ErrorBoundary`). ``with ErrorBoundary(provider,
translate):`` around every SDK call and stream iteration: the plugin's
``translate`` maps its SDK's exceptions (with :func:`error_for_status`,
:func:`parse_retry_after`), :func:`error_for_transport` maps raw httpx /
json ones, and any other exception from a network client becomes a
``ProviderError``. The mapped error is raised with neither ``__cause__`` nor
``__context__`` (:func:`raise_mapped`): an SDK exception holds the request,
and so the key.

Example:
    >>> from dataclasses import dataclass
    >>> from mmsdk.plugin import CloudSettings, PluginSettings
    >>> @dataclass(frozen=True, repr=False)
    ... class AcmeSettings(CloudSettings):
    ...     api_key: str | None = None
    ...     base_url: str | None = None
    >>> SETTINGS = PluginSettings("acme", AcmeSettings(), env={
    ...     "api_key": "ACME_API_KEY", "base_url": "ACME_BASE_URL"},
    ...     defaults={"base_url": "https://api.acme.example/v1"})
    >>> _ = SETTINGS.configure(api_key="k-123")
    >>> SETTINGS.resolved()
    AcmeSettings(api_key='set', base_url='https://api.acme.example/v1')
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import threading
import typing
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar

from ._errors import InvalidInputError, MMSDKError, ProviderError
from ._plugin_helpers import error_for_transport, from_network, raise_mapped
from ._redact import add_secret, redact
from ._registry import fingerprint
from ._types import Capability

__all__ = [
    "ClientCache",
    "CloudSettings",
    "Connection",
    "DefaultModels",
    "ErrorBoundary",
    "PluginSettings",
    "Translate",
    "safe_fetch",
]

S = TypeVar("S", bound="CloudSettings")
C = TypeVar("C")
A = TypeVar("A")
Translate = Callable[[BaseException, str], "MMSDKError | None"]

_CLOSE_WAIT = 5.0  # seconds close() waits for a client on another thread's running loop
_closing: set[asyncio.Task[None]] = set()  # closes in flight (a loop holds tasks weakly)


# -- settings ------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class CloudSettings:
    """Base of a cloud plugin's settings: a frozen dataclass whose repr shows no secret.

    Subclass it with ``@dataclass(frozen=True, repr=False)``; fields named in
    :attr:`SECRETS` show as ``'set'`` or ``None``.
    """

    SECRETS: ClassVar[frozenset[str]] = frozenset({"api_key", "auth_token"})

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in self.SECRETS:
                value = "set" if value else None
            shown.append(f"{item.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


_PLAIN: tuple[type, ...] = (str, int, float, bool)


def _check_type(plugin: str, settings: type, name: str, value: object) -> None:
    """Refuse a *value* that is not of the plain type (str, int, float, bool) the setting
    *name* is annotated with, naming the setting; other annotations are not checked."""
    if value is None:
        return
    try:
        hint = typing.get_type_hints(settings)[name]
    except Exception:  # an annotation that cannot be resolved: the plugin's validate decides
        return
    allowed = tuple(arg for arg in (typing.get_args(hint) or (hint,)) if arg is not type(None))
    if not allowed or not all(arg in _PLAIN for arg in allowed):
        return
    if isinstance(value, bool):
        fits = bool in allowed
    else:
        fits = isinstance(value, allowed) or (float in allowed and isinstance(value, int))
    if not fits:
        wanted = " or ".join(arg.__name__ for arg in allowed)
        raise InvalidInputError(f"{plugin} setting {name!r} must be of type {wanted} (or None to use "
                                f"the environment), got {type(value).__name__}.")


class PluginSettings(Generic[S]):
    """One plugin's settings: explicit (``configure``) > environment > defaults.

    Args:
        plugin: the plugin's name, for errors.
        initial: the explicit settings to start from (usually all ``None``).
        env: setting name -> environment variable(s), first one set wins.
        defaults: setting name -> value used when neither of the above sets it.
        parse: setting name -> how its variable's text becomes a value (default: as is).
        validate: checks a new explicit settings object; raises ``InvalidInputError``.
    """

    def __init__(self, plugin: str, initial: S, *,
                 env: Mapping[str, str | tuple[str, ...]] | None = None,
                 defaults: Mapping[str, object] | None = None,
                 parse: Mapping[str, Callable[[str], object]] | None = None,
                 validate: Callable[[S], None] | None = None) -> None:
        names = {item.name for item in fields(initial)}
        unknown = (set(env or {}) | set(defaults or {}) | set(parse or {})) - names
        if unknown:
            raise ValueError(f"{plugin}: env/defaults/parse name unknown settings {sorted(unknown)}")
        self.plugin = plugin
        self._initial = initial
        self._explicit = initial
        self._env = {name: (names_,) if isinstance(names_, str) else tuple(names_)
                     for name, names_ in (env or {}).items()}
        self._defaults = dict(defaults or {})
        self._parse = dict(parse or {})
        self._validate = validate
        self._lock = threading.Lock()
        self._version = 0
        self._cache: tuple[tuple[object, ...], S] | None = None

    def __repr__(self) -> str:
        return f"<PluginSettings {self.plugin}: {self._explicit!r}>"

    @property
    def explicit(self) -> S:
        """What ``configure`` set (``None`` where it set nothing)."""
        return self._explicit

    @property
    def version(self) -> int:
        """A number that changes with every :meth:`configure` and :meth:`reset`."""
        return self._version

    def variables(self, name: str) -> tuple[str, ...]:
        """The environment variables *name* is read from, in order."""
        return self._env.get(name, ())

    def configure(self, **changes: Any) -> S:
        """Set explicit settings; ``None`` gives a setting back to the environment.

        Raises:
            InvalidInputError: for an unknown setting or a value ``validate`` refuses.
        """
        known = {item.name for item in fields(self._explicit)}
        unknown = set(changes) - known
        if unknown:
            raise InvalidInputError(f"Unknown {self.plugin} setting(s) {sorted(unknown)}; "
                                    f"known: {sorted(known)}.")
        for name, value in changes.items():
            _check_type(self.plugin, type(self._explicit), name, value)
        for name in self._explicit.SECRETS & set(changes):
            add_secret(changes[name])
        with self._lock:
            updated = replace(self._explicit, **changes)
            if self._validate is not None:
                self._validate(updated)
            self._explicit = updated
            self._version += 1
        return updated

    def reset(self, initial: S | None = None) -> None:
        """Back to *initial* (else the settings this object started with); tests use it."""
        with self._lock:
            self._explicit = self._initial if initial is None else initial
            self._version += 1

    def resolved(self) -> S:
        """The settings in force now: each ``None`` filled from the environment, then defaults.

        Read at every call (environment lookups only; the result is reused
        while neither the settings nor the variables change).
        """
        explicit, version = self._explicit, self._version
        seen = (version, *(os.environ.get(var) for names in self._env.values() for var in names))
        cached = self._cache
        if cached is not None and cached[0] == seen:
            return cached[1]
        filled: dict[str, object] = {}
        for item in fields(explicit):
            if getattr(explicit, item.name) is not None:
                continue
            value = self.from_env(item.name)
            if value is None:
                value = self._defaults.get(item.name)
            if value is not None:
                filled[item.name] = value
        settings = replace(explicit, **filled) if filled else explicit
        self._cache = (seen, settings)
        return settings

    def from_env(self, name: str) -> object | None:
        """*name*'s value from its first environment variable that is set (not empty)."""
        for var in self._env.get(name, ()):
            raw = os.environ.get(var)
            if raw:
                parse = self._parse.get(name)
                return parse(raw) if parse is not None else raw
        return None


class DefaultModels(Mapping[Capability, str]):
    """What a bare provider name means per capability, read from settings at each lookup.

    For ``ProviderSpec.default_models``: ``configure(...)`` and the variables
    then apply after the plugin was registered.

    Args:
        settings: the plugin's settings.
        fields: capability -> the setting naming its default model (its
            ``defaults`` entry, or *builtin*, supplies the built-in one).
        builtin: capability -> model when the setting resolves to ``None``.
    """

    def __init__(self, settings: PluginSettings[Any], fields: Mapping[Capability, str],
                 builtin: Mapping[Capability, str] | None = None) -> None:
        self._settings = settings
        self._fields = dict(fields)
        self._builtin = dict(builtin or {})

    def __getitem__(self, capability: Capability) -> str:
        name = self._fields[capability]  # KeyError for a capability the plugin lacks
        value = getattr(self._settings.resolved(), name) or self._builtin.get(capability)
        if value is None:
            raise KeyError(capability)
        return str(value)

    def __iter__(self) -> Iterator[Capability]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"DefaultModels({dict(self.items())!r})"


# -- clients -------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class Connection:
    """What a client is made for: credentials and endpoint, compared field by field.

    Attributes:
        api_key: the key (``None``: none).
        base_url: the endpoint (``None``: the SDK's default).
        extra: further settings the client is built with (organization, auth token, ...).
    """

    api_key: str | None = None
    base_url: str | None = None
    extra: tuple[tuple[str, str | None], ...] = field(default=())

    def __repr__(self) -> str:  # never the key, nor an extra (one may be a token)
        return f"Connection(base_url={self.base_url!r}, key={'set' if self.api_key else None!r})"

    def get(self, name: str) -> str | None:
        """An extra setting by name (``None`` when absent)."""
        return dict(self.extra).get(name)

    @cached_property
    def fingerprint(self) -> str:
        """A non-reversible tag for everything above: what keys a client build in flight."""
        parts = [self.api_key or "", self.base_url or ""]
        parts += [f"{name}={value or ''}" for name, value in self.extra]
        return fingerprint("\x1f".join(parts))


async def _held(client: object, aclose: Callable[[Any], Awaitable[None]]
                ) -> AsyncGenerator[None, None]:
    """Suspended for its loop's lifetime; ``shutdown_asyncgens`` closes it, and the client."""
    try:
        yield
    finally:
        await aclose(client)


async def _finish(holder: AsyncGenerator[None, None]) -> None:
    await holder.aclose()


@dataclass
class _LoopEntry(Generic[A]):
    connection: Connection
    client: A
    holder: AsyncGenerator[None, None]


class ClientCache(Generic[C, A]):
    """The SDK clients of one model object: a sync one, and an async one per event loop.

    Each is made for the :class:`Connection` it is asked with; a call with
    another connection (a new key or endpoint) gets a new client and the
    old one is closed. Building happens off the event loop for async clients
    (in a worker thread: the SDK import and TLS set-up must not stall the loop).

    Args:
        make: builds a sync client for a connection (may import the SDK).
        amake: builds an async client for a connection; runs in a worker thread.
        close: closes a sync client.
        aclose: closes an async client, on its own loop.
    """

    def __init__(self, *, make: Callable[[Connection], C], amake: Callable[[Connection], A],
                 close: Callable[[C], None], aclose: Callable[[A], Awaitable[None]]) -> None:
        self._make, self._amake = make, amake
        self._close, self._aclose = close, aclose
        self._lock = threading.Lock()
        self._sync: tuple[Connection, C] | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopEntry[A]] = \
            weakref.WeakKeyDictionary()
        self._building: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[str, asyncio.Task[A]]] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"<ClientCache sync={self._sync is not None} loops={len(self._async)}>"

    def get(self, connection: Connection) -> C:
        """The sync client for *connection* (built, or rebuilt, on first need)."""
        current = self._sync
        if current is not None and current[0] == connection:  # same fields, same fingerprint
            return current[1]
        with self._lock:
            current = self._sync
            if current is not None and current[0] == connection:
                return current[1]
            client = self._make(connection)
            self._sync = (connection, client)
        if current is not None:
            self._close(current[1])  # stale key or endpoint
        return client

    async def aget(self, connection: Connection) -> A:
        """The running loop's async client for *connection*."""
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is not None and entry.connection == connection:
            return entry.client
        tag = connection.fingerprint
        # Calls arriving together on a cold loop share one build.
        building = self._building.get(loop)
        if building is None or building[0] != tag:
            building = (tag, loop.create_task(self._build(loop, connection)))
            self._building[loop] = building
        return await asyncio.shield(building[1])  # a caller that leaves does not stop it

    async def _build(self, loop: asyncio.AbstractEventLoop, connection: Connection) -> A:
        tag = connection.fingerprint
        try:
            client = await asyncio.to_thread(self._amake, connection)
            holder = _held(client, self._aclose)
            await holder.__anext__()  # registers it with this loop's shutdown_asyncgens
            with self._lock:  # loops in other threads share this cache
                for stale in [other for other in list(self._async) if other.is_closed()]:
                    self._async.pop(stale, None)
                old = self._async.get(loop)
                self._async[loop] = _LoopEntry(connection, client, holder)
            if old is not None:
                await old.holder.aclose()  # stale key or endpoint: close it now, on its loop
            return client
        finally:
            building = self._building.get(loop)
            if building is not None and building[0] == tag:
                self._building.pop(loop, None)

    def current(self, loop: asyncio.AbstractEventLoop | None = None) -> C | A | None:
        """The sync client, or *loop*'s async client, if one is open (``None`` if not)."""
        if loop is None:
            return self._sync[1] if self._sync is not None else None
        entry = self._async.get(loop)
        return entry.client if entry is not None else None

    def loops(self) -> int:
        """How many event loops hold an async client (closed loops included until pruned)."""
        return len(self._async)

    def close(self) -> None:
        """Close every client: the sync one now, each async one on its own loop."""
        with self._lock:
            current, self._sync = self._sync, None
            entries = list(self._async.items())
            self._async.clear()
        if current is not None:
            self._close(current[1])
        for loop, entry in entries:
            _close_on(loop, entry.holder)

    async def aclose(self) -> None:
        """:meth:`close`, awaiting the running loop's own async client."""
        loop = asyncio.get_running_loop()
        with self._lock:
            mine = self._async.pop(loop, None)
        self.close()
        if mine is not None:
            await mine.holder.aclose()


def _close_on(loop: asyncio.AbstractEventLoop, holder: AsyncGenerator[None, None]) -> None:
    if loop.is_closed():
        return  # its shutdown_asyncgens closed the client already
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    closing = _finish(holder)
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


# -- errors --------------------------------------------------------------------------------
class ErrorBoundary:
    """``with ErrorBoundary(provider, translate):`` maps what an SDK raises to mmsdk errors.

    Inside, an mmsdk error, and anything that is not an ``Exception``
    (``KeyboardInterrupt``, ``GeneratorExit``), passes through. Any other
    exception goes to *translate* (the plugin's SDK mapping), then to
    :func:`error_for_transport` (httpx, json); an exception from a network
    client that neither maps becomes a ``ProviderError``. The mapped error
    is raised unchained (:func:`raise_mapped`). Anything else (a bug in the
    plugin) propagates unchanged.

    A plain class, not ``@contextmanager``: it wraps every call.
    """

    __slots__ = ("provider", "translate")

    def __init__(self, provider: str, translate: Translate) -> None:
        self.provider = provider
        self.translate = translate

    def __enter__(self) -> ErrorBoundary:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc is None or isinstance(exc, MMSDKError) or not isinstance(exc, Exception):
            return
        mapped = map_exception(exc, self.provider, self.translate)
        if mapped is not None:
            raise_mapped(mapped)


def map_exception(exc: BaseException, provider: str, translate: Translate) -> MMSDKError | None:
    """What :class:`ErrorBoundary` raises for *exc* (``None``: let it through)."""
    mapped = translate(exc, provider) or error_for_transport(exc, provider=provider)
    if mapped is None and from_network(exc):
        mapped = ProviderError(f"{provider} failed: {type(exc).__name__}: {redact(str(exc))}",
                               provider=provider)
    return mapped


# -- fetching ------------------------------------------------------------------------------
def safe_fetch(url: str, *, label: str, deadline: float | None = None,
               allow_hosts: tuple[str, ...] = ()) -> bytes:
    """Download *url* with mmsdk's guarded fetcher and the settings in force.

    The same rules as a URL input: http(s) only, byte cap, total time limit,
    no private, loopback or metadata address unless ``mmsdk.configure``
    allows it or its host is in *allow_hosts* (e.g. the server that just
    answered, which may sit on a private network).

    Args:
        url: an http(s) URL.
        label: how errors name what was fetched.
        deadline: the call's deadline (``time.monotonic()`` seconds), if any.
        allow_hosts: hosts allowed even when private, for this fetch only.

    Raises:
        InvalidInputError: a malformed, refused, failing, too large or too slow URL.
        ProviderTimeoutError: the deadline passed while fetching.
    """
    from ._fetch import fetch_url  # httpx: imported on first use only
    from ._settings import get_settings

    settings = get_settings()
    if allow_hosts:
        settings = dataclasses.replace(
            settings, url_allow_hosts=(*settings.url_allow_hosts, *allow_hosts))
    return fetch_url(url, settings, label=label, deadline=deadline)
