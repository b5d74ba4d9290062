"""Introspection and warm-up: what is installed and usable here, and loading it ahead of time.

:func:`providers` returns what ``mmsdk providers`` prints; :func:`preload` backs
:func:`mmsdk.preload` and :meth:`mmsdk.Router.preload`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._errors import (
    CapabilityError,
    InvalidInputError,
    MMSDKError,
    ProviderError,
    ProviderUnavailableError,
)
from ._jobs import check_model
from ._registry import ProviderSpec, Registry, Resolved, describe_all, get_registry
from ._types import Capability

if TYPE_CHECKING:
    from ._router import Router

__all__ = ["ProviderStatus", "preload", "providers"]

logger = logging.getLogger("mmsdk")


class ProviderStatus(BaseModel):
    """One entry of :func:`mmsdk.providers`: a provider, an alias, or a plugin that failed
    (or that ``MMSDK_PLUGINS`` leaves out). A name two distributions register is listed
    as unusable, its ``reason`` naming both.

    Attributes:
        name: what provider strings use: a plugin's provider name (``"openai"``),
            an alias (``"local:clip"``), or, for ``kind="plugin"``, the plugin
            that failed to load.
        kind: ``"provider"``, ``"alias"`` or ``"plugin"`` (a plugin that failed to load).
        plugin: the plugin (entry-point name) that registered it, where known.
        target: the provider string an alias stands for (``None`` otherwise).
        description: the plugin's one-line description.
        capabilities: what it offers.
        local: whether every byte stays on this machine (``None``: unknown).
        usable: whether it can run here now (package, key, GPU, weights).
        reason: why it cannot, when it cannot.
        fix: the step that makes it usable.
        models: the models it names: its default models, in capability order, then
            the models it serves that its plugin lists (``ProviderSpec.list_models``:
            an OpenAI-compatible endpoint's ``/v1/models``, for instance).
        defaults: the model a bare ``name`` means, per capability.
        warnings: retirement and deprecation notes for those models, on today's date.

    Example:
        >>> [s.name for s in mmsdk.providers() if s.usable]
        ['anthropic', 'local:clip']
    """

    model_config = ConfigDict(frozen=True)

    name: str
    kind: Literal["provider", "alias", "plugin"] = "provider"
    plugin: str | None = None
    target: str | None = None
    description: str = ""
    capabilities: list[Capability] = Field(default_factory=list)
    local: bool | None = None
    usable: bool
    reason: str = ""
    fix: str = ""
    models: list[str] = Field(default_factory=list)
    defaults: dict[Capability, str] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)


def providers() -> list[ProviderStatus]:
    """Every installed provider and alias, and every plugin that failed to load.

    Imports every plugin (not the SDKs or models behind them) and runs each
    provider's availability check, which makes no request.

    Raises:
        InvalidInputError: ``MMSDK_TODAY`` is set but is not a date.

    Example:
        >>> for status in mmsdk.providers():
        ...     print(status.name, status.usable, status.fix)
    """
    from ._clock import today

    today()  # a malformed MMSDK_TODAY is the caller's mistake: say so once, not per model
    registry = get_registry()
    return [_status(row, registry) for row in describe_all(registry)]


def _status(row: dict[str, Any], registry: Registry) -> ProviderStatus:
    common = {key: row[key] for key in ("usable", "reason", "fix", "description", "local")
              if row.get(key) is not None}
    capabilities = [Capability(c) for c in row.get("capabilities", ())]
    if "target" in row:
        alias, target = row["provider"], str(row["target"])
        name, _, model = target.partition(":")
        models = [model] if model else []
        return ProviderStatus(name=alias, kind="alias", plugin=registry.owners.get(f"alias:{alias}"),
                              target=target, capabilities=capabilities, models=models,
                              warnings=lifecycle_warnings(registry.specs.get(name), models),
                              **common)
    if "defaults" in row:
        name = row["provider"]
        defaults = {Capability(c): m for c, m in row["defaults"].items()}
        models = list(row.get("models") or dict.fromkeys(defaults.values()))
        return ProviderStatus(name=name, plugin=registry.owners.get(f"provider:{name}"),
                              capabilities=capabilities, models=models, defaults=defaults,
                              warnings=lifecycle_warnings(registry.specs.get(name), models),
                              **common)
    if row.get("conflict"):  # a name two distributions register: unusable until one goes
        return ProviderStatus(name=row["provider"], **common)
    plugin = str(row["provider"]).removesuffix(" (plugin)")
    return ProviderStatus(name=plugin, kind="plugin", plugin=plugin, **common)


def _deprecation_of(spec: ProviderSpec) -> Callable[[str], str | None] | None:
    """The plugin's ``deprecation(model)``: the spec's own, else its lifecycle table's."""
    own = getattr(spec, "deprecation", None)
    if callable(own):
        return own  # type: ignore[no-any-return]
    lifecycle = getattr(spec.retired, "lifecycle", None)  # a ModelLifecycle's retired mapping
    found = getattr(lifecycle, "deprecation", None)
    return found if callable(found) else None


def lifecycle_warnings(spec: ProviderSpec | None, models: Sequence[str]) -> list[str]:
    """Notes on *models* of *spec* that are retired or have an announced end-of-life today."""
    if spec is None:
        return []
    deprecation = _deprecation_of(spec)
    notes: list[str] = []
    for model in dict.fromkeys(models):
        try:
            if model in spec.retired:
                notes.append(f"{spec.name}:{model} is retired. {spec.retired[model]}")
                continue
            note = deprecation(model) if deprecation else None
        except Exception as exc:  # a broken plugin is shown, not raised
            note = f"{spec.name}:{model}: lifecycle check failed: {type(exc).__name__}: {exc}"
        if note:
            notes.append(note)
    return notes


# -- warm-up -----------------------------------------------------------------------
_Plan = dict[str, tuple[Resolved, set[Capability]]]


def preload(router: Router, capability: Capability | str | None) -> list[str]:
    """Import, build and load every provider *router* would use; return the strings warmed.

    Named providers must all be usable: the others are warmed first, then the
    first problem is raised. The default route (``providers=None``) warms what
    can run here and skips the rest, as a call would.
    """
    wanted = [_capability(capability)] if capability is not None else list(Capability)
    registry = router.registry
    plan: _Plan = {}
    problems: list[MMSDKError] = []
    left_out: list[MMSDKError] = []  # not offered, or excluded by the policy: calls skip them

    def add(resolved: Resolved, capabilities: set[Capability]) -> None:
        offered = capabilities & resolved.info.capabilities
        if not offered:
            left_out.append(CapabilityError(
                f"{resolved.provider} cannot {'/'.join(sorted(c.value for c in capabilities))}.",
                provider=resolved.provider))
        elif router.policy.local_only and not resolved.info.local:
            left_out.append(CapabilityError(
                f"{resolved.provider} sends data off this machine and the policy is local_only.",
                provider=resolved.provider))
        else:
            plan.setdefault(resolved.provider, (resolved, set()))[1].update(offered)

    if router.providers is None:
        for wanted_capability in wanted:
            for candidate in router.candidates(wanted_capability):
                if isinstance(candidate, Resolved):  # else its plugin is not installed
                    add(candidate, {wanted_capability})
    else:
        for name in router.providers:
            try:
                found = _resolve(registry, name, capability, wanted)
            except ProviderUnavailableError as missing:  # its plugin is not installed
                problems.append(missing)
                continue
            for resolved, capabilities in found:
                try:  # with the router's key for that plugin, if it has one
                    keyed = router.with_credential(resolved)
                except MMSDKError as keyless:  # the plugin takes no per-router key
                    problems.append(keyless)
                    continue
                add(keyed, capabilities)
    if not plan and not problems and left_out:
        raise left_out[0]
    warmed: list[str] = []
    unusable: list[MMSDKError] = []  # on the default route, skipped as a call skips them
    for provider, (resolved, capabilities) in plan.items():
        try:
            _warm(registry, resolved, capabilities)
        except ProviderUnavailableError as error:
            (problems if router.providers is not None else unusable).append(error)
            logger.info("mmsdk: not preloading %s: %s", provider, error)
            continue
        except MMSDKError as error:
            problems.append(error)
            continue
        warmed.append(provider)
    if problems or (unusable and not warmed):
        raise (problems or unusable)[0]
    return warmed


def _capability(value: Capability | str) -> Capability:
    try:
        return Capability(value)
    except ValueError:
        known = ", ".join(repr(c.value) for c in Capability)
        raise InvalidInputError(f"capability must be one of {known}, got {value!r}.") from None


def _resolve(registry: Registry, name: str, capability: Capability | str | None,
             wanted: list[Capability]) -> list[tuple[Resolved, set[Capability]]]:
    """What *name* means for the wanted capabilities: one model, or a plugin's default models.

    Only ``registry.resolve`` is used, so only the plugin *name* needs is imported.
    """
    if capability is not None:
        return [(registry.resolve(name, wanted[0]), set(wanted))]
    if ":" in name:  # names a model (or is an alias like local:clip, which names one)
        resolved = registry.resolve(name)
        return [(resolved, set(resolved.info.capabilities))]
    found: dict[str, tuple[Resolved, set[Capability]]] = {}
    missing: CapabilityError | None = None
    for offered in Capability:
        try:
            resolved = registry.resolve(name, offered)
        except CapabilityError as error:  # a bare plugin name with no default model for it
            missing = error
            continue
        entry = found.setdefault(resolved.provider, (resolved, set()))
        if offered in resolved.info.capabilities:
            entry[1].add(offered)
    if not found and missing is not None:
        raise missing
    return list(found.values())


def _warm(registry: Registry, resolved: Resolved, capabilities: set[Capability]) -> None:
    """Check, build and load one provider, as the first call to it would."""
    provider = resolved.provider
    try:
        if not registry.is_loaded(provider, resolved.credential):
            availability = resolved.availability()
            if not availability.ok:
                registry.forget(provider)  # its description may change once it is fixed
                raise ProviderUnavailableError(f"{provider} is unavailable here: "
                                               f"{availability.reason}.", provider=provider,
                                               fix=availability.fix)
        model = registry.model(resolved)  # imports the SDK or library, builds clients
        for capability in sorted(capabilities, key=lambda c: c.value):
            check_model(model, capability, provider)
        model.preload()  # a local model loads its weights
    except MMSDKError:
        raise
    except Exception as exc:
        wrapped = ProviderError(f"{provider} failed to preload: {type(exc).__name__}: {exc}. "
                                "This is a bug in its plugin; please report it.",
                                provider=provider)
        raise wrapped from exc
