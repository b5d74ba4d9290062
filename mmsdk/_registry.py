"""The provider registry: plugins, provider strings, and cached model objects.

Plugins are found once, lazily, through the ``mmsdk`` entry-point group (the
built-in plugins too). A plugin that fails to import or to register is
recorded and shown by ``mmsdk providers``; it never breaks the others.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.metadata
import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import pluggy

from . import _hookspecs
from ._errors import CapabilityError, MMSDKError, ProviderUnavailableError, UnknownProviderError
from ._model import Model, capabilities_of
from ._redact import redact
from ._spec import ProviderSpec, listed, model_info, validate
from ._types import Availability, Capability, ModelInfo

__all__ = ["ProviderSpec", "Registry", "Replica", "Resolved", "fingerprint", "get_registry",
           "register_plugin", "unregister_plugin"]

logger = logging.getLogger("mmsdk")


class PluginWarning(UserWarning):
    """A plugin failed to load or registered a name that was already taken."""


# Built-in plugins ship as separate distributions: naming one that is not
# installed is an environment problem with a known fix, not a typo.
BUILTIN_PLUGINS = {
    "openai": "mmsdk[openai]", "anthropic": "mmsdk[anthropic]", "gemini": "mmsdk[gemini]",
    "diffusers": "mmsdk[local]", "transformers": "mmsdk[local]", "local": "mmsdk[local]",
}


# The distributions that may register the built-in names (and any ``NAME:...`` alias
# under one, ``local:clip`` included). A third-party plugin that registers one is refused.
BUILTIN_DISTRIBUTIONS = frozenset({"mmsdk-openai", "mmsdk-anthropic", "mmsdk-gemini",
                                   "mmsdk-diffusers", "mmsdk-transformers"})


def reserved(name: str) -> bool:
    """Whether *name* (a provider name or alias) belongs to mmsdk's built-in plugins.

    Compared without case or surrounding spaces, so that a look-alike (``OpenAI``,
    ``"openai "``, ``LOCAL:clip``) cannot answer a user who typed it that way.
    """
    return name.partition(":")[0].strip().casefold() in BUILTIN_PLUGINS


def _allowed(plugin: str) -> bool:
    """Whether ``MMSDK_PLUGINS`` / ``configure(plugins=...)`` lets entry point *plugin* load."""
    from ._settings import get_settings

    chosen = get_settings().plugins
    return chosen is None or plugin in chosen


def fingerprint(api_key: str) -> str:
    """A short, non-reversible tag for *api_key*: what keeps its models and breaker facts apart.

    The key itself is never stored in a tag, a log line or an error.
    """
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


class Replica(NamedTuple):
    """One server of a replica pool (``ModelInfo.endpoints``).

    Attributes:
        url: the base URL, as the plugin declared it (handed back in ``Request.endpoint``).
        key: its breaker facts' name, ``"NAME:MODEL@BASE_URL"`` (no URL password).
        shown: the base URL without any password (``Attempt.endpoint``).
    """

    url: str
    key: str
    shown: str


@dataclass(frozen=True)
class Resolved:
    """A provider string resolved to a spec and a model name.

    Attributes:
        spec: the provider (for a per-router key: the copy that uses that key).
        model: the model name.
        credential: ``None`` for the environment's credentials, else the
            :func:`fingerprint` of the router's key (never the key itself).
    """

    spec: ProviderSpec
    model: str
    credential: str | None = None

    @property
    def provider(self) -> str:
        return f"{self.spec.name}:{self.model}"

    @cached_property
    def info(self) -> ModelInfo:
        try:
            return model_info(self.spec, self.model)
        except MMSDKError:
            raise
        except Exception as exc:  # a broken plugin is reported, never a raw exception
            raise ProviderUnavailableError(
                f"{self.provider}: its plugin's describe() failed: {type(exc).__name__}: "
                f"{_plain(exc)}. "
                "This is a bug in the plugin; please report it.", provider=self.provider,
                fix="reinstall or update the plugin package", code="plugin_broken") from exc

    @cached_property
    def replicas(self) -> tuple[Replica, ...]:
        """The replica pool routing balances over; ``()`` for a single server."""
        urls = tuple(dict.fromkeys(self.info.endpoints))
        if len(urls) < 2:
            return ()
        provider = self.provider
        return tuple(Replica(url, f"{provider}@{redact(url)}", redact(url)) for url in urls)

    def availability(self) -> Availability:
        """The plugin's check; one that raises is reported as unavailable, never raised."""
        try:
            availability = self.spec.check(self.model)
            if not isinstance(availability, Availability):
                raise TypeError(f"check returned {type(availability).__name__}, "
                                "not an Availability")
        except Exception as exc:
            return Availability.no(f"its availability check failed: {type(exc).__name__}: "
                                   f"{exc} (a bug in the plugin)",
                                   "reinstall or update the plugin package")
        return availability


def _plain(exc: Exception) -> str:
    """*exc*'s message on one line; a pydantic ``ValidationError`` as ``field: problem; ...``,
    without pydantic's headers and documentation links (a plugin author reads it in
    ``mmsdk providers``)."""
    errors = getattr(exc, "errors", None)
    title = getattr(exc, "title", None)
    if callable(errors) and isinstance(title, str):
        try:
            problems = "; ".join(f"{'.'.join(str(p) for p in error['loc']) or title}: "
                                 f"{error['msg'].removeprefix('Value error, ')}"
                                 for error in errors(include_url=False))
        except Exception:  # not pydantic's after all: its own message
            return str(exc)
        return f"invalid {title}: {problems}"
    return str(exc)


class Registry:
    """Registered providers and aliases, and the model objects made from them."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager("mmsdk")
        self._pm.add_hookspecs(_hookspecs)
        self._specs: dict[str, ProviderSpec] = {}
        self._aliases: dict[str, str] = {}
        self._failures: dict[str, str] = {}
        self._pending: dict[str, importlib.metadata.EntryPoint] = {}
        # Entry points left out by MMSDK_PLUGINS / configure(plugins=...), and those loaded.
        self._disabled: dict[str, importlib.metadata.EntryPoint] = {}
        self._loaded: dict[str, importlib.metadata.EntryPoint] = {}
        # The distribution of each entry-point plugin (None: it has none); plugins
        # registered at run time (register_plugin) are not in it.
        self._origin: dict[str, str | None] = {}
        # A name ("provider:x" / "alias:x") two distributions registered: plugin -> value.
        self._contested: dict[str, dict[str, Any]] = {}
        self.owners: dict[str, str] = {}
        # Plugins added with register_plugin(): they may not take a built-in name.
        self._runtime: set[str] = set()
        # Aliases installed distributions declare in the "mmsdk.aliases" entry-point
        # group: alias -> the plugin entry points of that distribution (not imported).
        self._declared: dict[str, list[str]] = {}
        # Models for the environment's credentials are keyed by provider string,
        # those made with a per-router key by (provider string, key fingerprint).
        self._models: dict[str | tuple[str, str], Model] = {}
        self._resolved: dict[tuple[str, Capability | None], Resolved] = {}
        self._lock = threading.Lock()
        self._load_lock = threading.RLock()

    def load_entry_points(self, group: str = "mmsdk") -> None:
        """Find every installed plugin in *group*; each is imported when first needed.

        A provider string imports only the plugin whose entry point bears its
        name; an alias imports only the plugin whose distribution declares it
        in the ``<group>.aliases`` entry-point group (the entry point's name is
        the alias, its value the plugin module); anything that needs the whole
        picture (an unknown name, the default route, ``mmsdk providers``)
        imports them all. Import failures are recorded, never raised.
        """
        for entry_point in importlib.metadata.entry_points(group=group):
            name = entry_point.name
            if name in self._pending or name in self._disabled:  # a second distribution
                name = f"{name}@{_distribution(entry_point) or entry_point.value}"
            (self._pending if _allowed(entry_point.name) else self._disabled)[name] = entry_point
        plugins = [*self._pending.items(), *self._disabled.items()]
        for declared in importlib.metadata.entry_points(group=f"{group}.aliases"):
            dist = _distribution(declared)
            same = [(key, ep.value) for key, ep in plugins if _distribution(ep) == dist]
            owners = [key for key, value in same if value == declared.value] or \
                [key for key, _ in same]
            self._declared.setdefault(declared.name.strip(), []).extend(owners)

    def _declared_owners(self, alias: str) -> list[str]:
        """The not-yet-imported plugins declaring *alias* (a ``local:`` one: built-ins only)."""
        return [key for key in self._declared.get(alias, ()) if key in self._pending
                and (not reserved(alias)
                     or _distribution(self._pending[key]) in BUILTIN_DISTRIBUTIONS)]

    def _check_declared(self, plugin: str) -> None:
        """Report aliases *plugin*'s distribution declares that its hook did not register."""
        if plugin in self._failures:
            return
        missing = sorted(alias for alias, owners in self._declared.items() if plugin in owners
                         and self.owners.get(f"alias:{alias}") != plugin
                         and plugin not in self._contested.get(f"alias:{alias}", {}))
        if missing:
            self._fail(plugin, f"it declares alias(es) {', '.join(map(repr, missing))} "
                               "(entry-point group mmsdk.aliases) that its register_aliases "
                               "hook does not register")

    def apply_plugin_choice(self) -> None:
        """Follow a changed ``configure(plugins=...)``: unload the entry-point plugins it
        leaves out, and make the ones it lets in loadable again."""
        with self._load_lock:
            for name, entry_point in list(self._loaded.items()):
                if not _allowed(entry_point.name):
                    self.remove_plugin(name)
                    del self._loaded[name]
                    self._disabled[name] = entry_point
            for name, entry_point in list(self._pending.items()):
                if not _allowed(entry_point.name):
                    self._disabled[name] = self._pending.pop(name)
            for name, entry_point in list(self._disabled.items()):
                if _allowed(entry_point.name):
                    self._pending[name] = self._disabled.pop(name)
            self._resolved.clear()

    def _load(self, name: str) -> None:
        entry_point = self._pending.pop(name, None)
        if entry_point is None:
            return
        self._origin[name] = _distribution(entry_point)
        self._loaded[name] = entry_point
        try:
            plugin = entry_point.load()
        # SystemExit too: a module that calls sys.exit() when imported must not end the app
        except (Exception, SystemExit) as exc:  # a broken plugin must not break the rest
            self._fail(name, f"import failed: {type(exc).__name__}: {exc}")
            return
        self.add_plugin(plugin, name)
        self._check_declared(name)

    def _third_party(self, plugin: str) -> bool:
        """Whether *plugin* came from an installed distribution that is not mmsdk's own."""
        return plugin in self._origin and self._origin[plugin] not in BUILTIN_DISTRIBUTIONS

    def _label(self, plugin: str) -> str:
        """The distribution *plugin* came from, for messages."""
        return self._origin.get(plugin) or f"plugin {plugin!r}"

    @property
    def conflicts(self) -> dict[str, list[str]]:
        """Names registered by two or more distributions: name -> those distributions.

        A contested name is unusable until one of them is removed or left out with
        ``MMSDK_PLUGINS`` (imports every plugin first).
        """
        if self._pending:
            self.load_pending()
        return {key.partition(":")[2]: [self._label(p) for p in claims]
                for key, claims in self._contested.items()}

    @property
    def disabled(self) -> list[str]:
        """Installed plugins that ``MMSDK_PLUGINS`` / ``configure(plugins=...)`` leaves out."""
        return sorted(self._disabled)

    def unknown_provider_names(self, names: list[str]) -> dict[str, list[str]]:
        """Those of *names* that are neither an installed plugin nor a registered provider,
        each with the close matches to suggest (imports every plugin only for a name that
        is not known yet)."""
        plugins = {*self._pending, *self._loaded, *self._disabled, *self._runtime}
        unknown = [n for n in names if n not in plugins and n not in self._specs]
        if unknown and self._pending:
            self.load_pending()  # a provider a plugin registers under another name
            unknown = [n for n in unknown if n not in self._specs]
        known = sorted(plugins | set(self._specs))
        return {n: difflib.get_close_matches(n, known, n=1) for n in unknown}

    def has_pending(self) -> bool:
        """Whether some installed plugin has not been imported yet."""
        return bool(self._pending)

    def would_import(self, names: list[str] | None) -> bool:
        """Whether resolving *names* (``None``: the default route) may import a plugin."""
        if not self._pending:
            return False
        if names is None:
            return True
        return any(name.strip() not in self._aliases
                   and name.strip().partition(":")[0] not in self._specs for name in names)

    def load_pending(self) -> None:
        """Import every plugin not imported yet."""
        with self._load_lock:
            for name in list(self._pending):
                self._load(name)

    @property
    def specs(self) -> dict[str, ProviderSpec]:
        """Every registered provider (imports every installed plugin first)."""
        if self._pending:
            self.load_pending()
        return self._specs

    @property
    def aliases(self) -> dict[str, str]:
        """Every registered alias (imports every installed plugin first)."""
        if self._pending:
            self.load_pending()
        return self._aliases

    @property
    def failures(self) -> dict[str, str]:
        """Plugins that failed to load or register, with why (imports every plugin first)."""
        if self._pending:
            self.load_pending()
        return self._failures

    def add_plugin(self, plugin: object, name: str, *, runtime: bool = False) -> None:
        """Register *plugin* (a module or object with hookimpls) and collect its providers.

        *runtime*: added by :func:`register_plugin`, so it may not register a built-in name.
        """
        self._resolved.clear()
        if runtime:
            self._runtime.add(name)
        try:
            self._pm.register(plugin, name=name)
        except ValueError as exc:
            self._fail(name, f"not registered: {exc}")
            return
        for hook_name in ("register_providers", "register_aliases"):
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name != name:
                    continue
                register = self._spec_adder(name) if hook_name == "register_providers" \
                    else self._alias_adder(name)
                try:
                    impl.function(register=register)
                except (Exception, SystemExit) as exc:
                    # the whole plugin is skipped: nothing it registered before failing stays
                    self._fail(name, f"{hook_name} failed: {type(exc).__name__}: {exc}")
                    self._withdraw(name)
                    return

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin and everything it registered."""
        self._withdraw(name)
        self._origin.pop(name, None)
        self._runtime.discard(name)
        self._failures.pop(name, None)

    def _withdraw(self, name: str) -> None:
        """Unregister *name*'s hooks and every provider and alias it registered."""
        self._resolved.clear()
        if self._pm.has_plugin(name):
            self._pm.unregister(name=name)
        for key, claims in list(self._contested.items()):
            if claims.pop(name, None) is not None and len(claims) == 1:
                (survivor, value), = claims.items()  # the name is usable again
                del self._contested[key]
                kind, _, label = key.partition(":")
                (self._specs if kind == "provider" else self._aliases)[label] = value
                self.owners[key] = survivor
        for key in [k for k, owner in self.owners.items() if owner == name]:
            del self.owners[key]
            spec = self._specs.pop(key.removeprefix("provider:"), None) \
                if key.startswith("provider:") else None
            if key.startswith("alias:"):
                self._aliases.pop(key.removeprefix("alias:"), None)
            if spec is not None:
                self.unload(spec.name)

    def _fail(self, plugin: str, message: str) -> None:
        earlier = self._failures.get(plugin)  # every reason is kept, in order
        self._failures[plugin] = message if earlier is None else f"{earlier}; {message}"
        logger.error("mmsdk plugin %r: %s", plugin, message)
        warnings.warn(f"mmsdk plugin {plugin!r}: {message}", PluginWarning, stacklevel=3)

    def _spec_adder(self, plugin: str) -> Callable[[ProviderSpec], None]:
        def register(spec: ProviderSpec) -> None:
            if not isinstance(spec, ProviderSpec):
                raise TypeError(f"register() takes a ProviderSpec, got {type(spec).__name__}")
            if ":" in spec.name:
                self._fail(plugin, f"provider name {spec.name!r} rejected: it contains ':'")
                return
            try:
                validate(spec)
            except Exception as exc:  # the author's mistake: reported like any broken plugin
                self._fail(plugin, f"provider {spec.name!r} rejected: {_plain(exc)}")
                return
            if self._claim(plugin, "provider", spec.name, spec):
                self._specs[spec.name] = spec
        return register

    def _claim(self, plugin: str, kind: str, name: str, value: Any) -> bool:
        """Whether *plugin* may register *name*; records refusals and collisions."""
        key = f"{kind}:{name}"
        if reserved(name) and (self._third_party(plugin) or plugin in self._runtime):
            who = f"plugin {plugin!r}, registered at run time," if plugin in self._runtime \
                else self._label(plugin)
            self._fail(plugin, f"{kind} name {name!r} refused: it is reserved to mmsdk's "
                               f"built-in plugins ({who} is not one)")
            return False
        if key in self._contested:
            self._contested[key][plugin] = value
            self._collide(key)
            return False
        owner = self.owners.get(key)
        if owner is None:
            self.owners[key] = plugin
            return True
        if owner in self._origin and plugin in self._origin:  # two installed distributions
            table: dict[str, Any] = self._specs if kind == "provider" else self._aliases
            self._contested[key] = {owner: table.pop(name), plugin: value}
            del self.owners[key]
            self._resolved.clear()
            if kind == "provider":
                self.unload(name)
            self._collide(key)
            return False
        self._fail(plugin, f"{kind} {name!r} rejected: already registered by plugin {owner!r}")
        return False

    def _collide(self, key: str) -> None:
        message = self._conflict_message(key.partition(":")[2], key)
        logger.error("mmsdk: %s", message)
        warnings.warn(f"mmsdk: {message}", PluginWarning, stacklevel=4)

    def _conflict_message(self, name: str, key: str) -> str:
        kind = key.partition(":")[0]
        who = " and ".join(self._label(p) for p in self._contested[key])
        plugins = ",".join(sorted(p.partition("@")[0] for p in self._contested[key]))
        return (f"{kind} {name!r} is registered by {who}; it is unusable until one is "
                f"uninstalled or chosen with MMSDK_PLUGINS (entry points: {plugins}).")

    def _alias_adder(self, plugin: str) -> Callable[[str, str], None]:
        def register(alias: str, target: str) -> None:
            outsider = reserved(alias) and (self._third_party(plugin) or plugin in self._runtime)
            if not outsider and plugin in self._origin \
                    and plugin not in self._declared.get(alias, ()):
                # an installed plugin's aliases must be known without importing it
                self._fail(plugin, f"alias {alias!r} rejected: not declared in its "
                                   "distribution's metadata; add it under "
                                   "[project.entry-points.\"mmsdk.aliases\"] as "
                                   f"\"{alias}\" = \"<plugin module>\"")
                return
            if self._claim(plugin, "alias", alias, target):
                self._aliases[alias] = target
        return register

    def known_names(self) -> list[str]:
        return sorted({*self.specs, *self.aliases})

    def resolve(self, text: str, capability: Capability | None = None) -> Resolved:
        """Turn ``"plugin:model"``, an alias or a bare plugin name into a :class:`Resolved`.

        Strings that name a model are cached (so each model's ``describe()``
        runs once) until the set of plugins changes; a bare plugin name is not,
        because its default model may be configured at run time.
        """
        key = (text, capability)
        cached = self._resolved.get(key) if isinstance(text, str) else None
        if cached is not None and cached.model not in cached.spec.retired:  # retired meanwhile
            return cached
        resolved = self._resolve(text, capability)
        if ":" in self._aliases.get(text.strip(), text):
            self._resolved[key] = resolved
        return resolved

    def forget(self, provider: str) -> None:
        """Drop cached resolutions of *provider*, so its ``describe()`` runs again.

        Routing calls this when a provider is unavailable: what it describes may
        change once its weights, package or key appear.
        """
        for key in [k for k, r in self._resolved.items() if r.provider == provider]:
            self._resolved.pop(key, None)

    def _resolve(self, text: str, capability: Capability | None) -> Resolved:
        if not isinstance(text, str) or not text.strip():
            raise UnknownProviderError(f"A provider must be a non-empty string like "
                                       f"'openai:gpt-5.5', got {text!r}.")
        original = text.strip()
        if self._pending and original not in self._aliases:
            self._load_for(original)
        for key in (f"alias:{original}", f"provider:{original.partition(':')[0]}"):
            if key in self._contested:
                raise ProviderUnavailableError(
                    f"{original}: {self._conflict_message(key.partition(':')[2], key)}",
                    provider=original, code="plugin_conflict",
                    fix="pip uninstall one of them, or set MMSDK_PLUGINS to the one you want")
        target = self._aliases.get(original, original)
        name, _, model = target.partition(":")
        if name not in self._specs and name in self._pending:  # an alias into another plugin
            with self._load_lock:
                self._load(name)
        spec = self._specs.get(name)
        if spec is None and original not in self._aliases:  # an alias of a plugin left out?
            name = next((key.partition("@")[0] for key in self._declared.get(original, ())
                         if key in self._disabled), name)
        if spec is None and name in self._disabled:
            raise ProviderUnavailableError(
                f"{original}: the {name!r} plugin is installed but MMSDK_PLUGINS "
                "(or configure(plugins=...)) leaves it out.", provider=original,
                fix=f"add {name!r} to MMSDK_PLUGINS or configure(plugins=[...])")
        if spec is None:
            extra = BUILTIN_PLUGINS.get(name)
            namespace_taken = any(alias.startswith(f"{name}:") for alias in self._aliases)
            if extra is not None and name not in self._failures and not namespace_taken:
                raise ProviderUnavailableError(
                    f"{original} needs the {name!r} plugin, which is not installed.",
                    provider=original, fix=f"pip install '{extra}'")
            if name in self._failures:
                raise ProviderUnavailableError(
                    f"{original}: the {name!r} plugin failed to load ({self._failures[name]}).",
                    provider=original, fix="reinstall or update the plugin package",
                    code="plugin_broken")
            raise self._unknown(original)
        if not model:
            default = spec.default_models.get(capability) if capability else None
            if default is None and capability is not None and spec.list_models is not None:
                default = next((m for m in listed(spec) if capability in
                                capabilities_of(spec.class_of(m))), None)
            if default is None:
                offered = ", ".join(sorted(c.value for c in spec.capabilities)) or "nothing"
                raise CapabilityError(
                    f"{name} has no default model for {capability.value if capability else 'this'}"
                    f" (it offers: {offered}); name a model as '{name}:MODEL'.", provider=name)
            model = default
        if model in spec.retired:
            raise UnknownProviderError(f"{name}:{model} is retired. {spec.retired[model]}",
                                       provider=f"{name}:{model}", code="retired_model")
        return Resolved(spec, model)

    def _load_for(self, original: str) -> None:
        """Import only the plugins *original* needs, where that can be told without importing."""
        with self._load_lock:
            for owner in self._declared_owners(original):  # an alias declared in metadata
                self._load(owner)
            if original in self._aliases:
                return
            name = original.partition(":")[0]
            self._load(name)
            if name not in self._specs:
                self.load_pending()  # an undeclared alias or an unknown name: look everywhere
            elif not reserved(name) and self.owners.get(f"provider:{name}") in self._origin:
                # an installed third-party name: another distribution may register it too
                for other in [n for n, e in self._pending.items()
                              if _distribution(e) not in BUILTIN_DISTRIBUTIONS]:
                    self._load(other)

    def _unknown(self, text: str) -> UnknownProviderError:
        candidates = self.known_names()
        close = difflib.get_close_matches(text, candidates, n=3, cutoff=0.5)
        if not close:
            close = difflib.get_close_matches(text.partition(":")[0], candidates, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        failed = f" Plugins that failed to load: {sorted(self.failures)}." if self.failures else ""
        return UnknownProviderError(
            f"Unknown provider {text!r}.{hint} Known: {', '.join(candidates) or 'none'}.{failed} "
            "Run 'mmsdk providers' to see what is installed.",
            provider=text, suggestions=close)

    def is_loaded(self, provider: str, credential: str | None = None) -> bool:
        """Whether a model object for *provider* (with that credential) exists, so it was
        available."""
        return _model_key(provider, credential) in self._models

    def model(self, resolved: Resolved) -> Model:
        """The model object for *resolved*, created once per credential and reused."""
        key = _model_key(resolved.provider, resolved.credential)
        model = self._models.get(key)
        if model is not None:
            return model
        with self._lock:
            model = self._models.get(key)
            if model is None:
                model = resolved.spec.build(resolved.model, resolved.provider, resolved.info)
                self._models[key] = model
        return model

    def _forget(self, provider: str | None) -> list[Model]:
        self._resolved.clear()
        with self._lock:
            keys = [k for k in self._models
                    if provider is None or _provider_of(k) == provider
                    or _provider_of(k).partition(":")[0] == provider]
            return [self._models.pop(k) for k in keys]

    def unload(self, provider: str | None = None) -> None:
        """Close and forget cached model objects (all, a plugin's, or one provider string),
        whatever credential they were made with."""
        for model in self._forget(provider):
            model.close()
            model.stop_worker()

    async def aunload(self, provider: str | None = None) -> None:
        """Async twin of :meth:`unload`: awaits each model's ``aclose()``."""
        for model in self._forget(provider):
            await model.aclose()

    def default_route(self, capability: Capability) -> list[str]:
        """Providers tried for ``provider=None``: cloud ones first, then local ones.

        Only mmsdk's own plugins are imported for it: a third-party provider is never
        in the default route, so its code does not run for a call that did not name it.
        """
        with self._load_lock:
            for name, entry_point in list(self._pending.items()):
                if _distribution(entry_point) in BUILTIN_DISTRIBUTIONS:
                    self._load(name)
        names = [f"{spec.name}:{spec.default_models[capability]}"
                 for spec in list(self._specs.values())
                 if spec.offer_as_default and capability in spec.default_models
                 and not self._third_party(self.owners.get(f"provider:{spec.name}", ""))]
        return sorted(names, key=self._is_local)

    def _is_local(self, provider: str) -> bool:
        try:
            return self.resolve(provider).info.local
        except MMSDKError:  # a broken describe(): last, and the call records why it skips it
            return True


def _distribution(entry_point: importlib.metadata.EntryPoint) -> str | None:
    dist = getattr(entry_point, "dist", None)
    return getattr(dist, "name", None) if dist is not None else None


def _model_key(provider: str, credential: str | None) -> str | tuple[str, str]:
    return provider if credential is None else (provider, credential)


def _provider_of(key: str | tuple[str, str]) -> str:
    return key if isinstance(key, str) else key[0]


_registry: Registry | None = None
_registry_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                registry = Registry()
                registry.load_entry_points()
                _registry = registry
    return _registry


def registry_loaded() -> bool:
    """Whether the process registry exists (its plugins' entry points are imported)."""
    return _registry is not None


def register_plugin(plugin: object, name: str) -> None:
    """Register a plugin object at run time, as an entry point would be.

    It may not register a built-in name (``openai``, ``local:...``, ...): those
    belong to mmsdk's own plugin distributions, even before they are imported.
    """
    get_registry().add_plugin(plugin, name, runtime=True)


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin` (or by entry point)."""
    get_registry().remove_plugin(name)


def describe_all(registry: Registry) -> list[dict[str, Any]]:
    """One row per provider, alias and failed plugin, for ``mmsdk providers``."""
    rows: list[dict[str, Any]] = []
    for spec in registry.specs.values():
        try:
            defaults = {c.value: m for c, m in sorted(spec.default_models.items())}
            models = list(dict.fromkeys([*defaults.values(), *listed(spec)]))
            capabilities = sorted(c.value for c in spec.capabilities)
        except Exception as exc:  # a broken plugin is shown, not raised
            rows.append({"provider": spec.name, "capabilities": [], "usable": False,
                         "reason": f"its plugin failed to describe it: {type(exc).__name__}: "
                                   f"{exc}", "fix": "reinstall or update the plugin package",
                         "defaults": {}, "models": []})
            continue
        first = next(iter(models), None)
        resolved = Resolved(spec, first) if first else None
        rows.append(_row(spec.name, resolved, capabilities, spec)
                    | {"defaults": defaults, "models": models})
    for alias, target in sorted(registry.aliases.items()):
        try:
            resolved = registry.resolve(alias)
        except Exception as exc:
            rows.append({"provider": alias, "target": target, "capabilities": [], "usable": False,
                         "reason": str(exc), "fix": ""})
            continue
        try:
            capabilities = sorted(c.value for c in resolved.info.capabilities)
        except MMSDKError as exc:
            rows.append({"provider": alias, "target": target, "capabilities": [], "usable": False,
                         "reason": str(exc), "fix": ""})
            continue
        rows.append(_row(alias, resolved, capabilities, resolved.spec) | {"target": target})
    for name, distributions in sorted(registry.conflicts.items()):
        rows.append({"provider": name, "capabilities": [], "usable": False, "conflict": True,
                     "reason": f"registered by {' and '.join(distributions)}",
                     "fix": "pip uninstall one of them, or set MMSDK_PLUGINS to the one "
                            "you want"})
    for plugin, message in sorted(registry.failures.items()):
        rows.append({"provider": f"{plugin} (plugin)", "capabilities": [], "usable": False,
                     "reason": message, "fix": "reinstall or update the plugin package"})
    for plugin in registry.disabled:
        rows.append({"provider": f"{plugin} (plugin)", "capabilities": [], "usable": False,
                     "reason": "not loaded: MMSDK_PLUGINS (or configure(plugins=...)) "
                               "leaves it out", "fix": f"add {plugin!r} to MMSDK_PLUGINS"})
    return rows


def _row(label: str, resolved: Resolved | None, capabilities: list[str],
         spec: ProviderSpec) -> dict[str, Any]:
    row: dict[str, Any] = {"provider": label, "capabilities": capabilities,
                           "description": spec.description}
    if resolved is None:
        return row | {"usable": False, "reason": "names no model (no default model, and "
                                                 "lists none)", "fix": ""}
    try:
        availability = resolved.availability()
        row["local"] = resolved.info.local
    except Exception as exc:  # a broken check is shown, not raised
        availability = Availability.no(f"availability check failed: {exc}", "")
    return row | {"usable": availability.ok, "reason": availability.reason,
                  "fix": availability.fix}
