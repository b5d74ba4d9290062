"""The :class:`Router`: providers tried in policy order, with retries and fallback.

A router resolves its provider strings (with its own keys, when it has them),
reads and checks the inputs, holds a concurrency slot, and hands the call to
:mod:`mmsdk._routing`; ``verify_with=`` and ``rerank_with=`` add a second route.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Literal, overload

from pydantic import BaseModel

from ._arguments import Detail, ImageInput, Images, ProviderArg, VideoPath
from ._build import classify_job, embed_job, generate_job, light_inputs, understand_job
from ._cache import Cache, as_cache
from ._cost import check_prices
from ._credentials import Credentials, short
from ._drivers import bounded
from ._errors import (
    CapabilityError,
    InvalidInputError,
    MMSDKError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from ._health import ProviderHealth, health_book, new_budgets
from ._jobs import Job
from ._policy import Policy
from ._registry import ProviderSpec, Registry, Resolved, get_registry, registry_loaded
from ._routing import aexecute, execute
from ._run import RouteContext
from ._score import check_score_inputs, clip_scores, ranked, rerank_failed, reranker
from ._settings import get_settings
from ._slots import Slots
from ._stream import AsyncTextStream, TextStream
from ._types import (
    Attempt,
    Capability,
    ClassifyResult,
    EmbedResult,
    GenerateResult,
    UnderstandResult,
)
from ._verify import averified, check_verify, verified

__all__ = ["DEFAULT_POLICY", "Router", "environment_health"]

DEFAULT_POLICY = Policy()

_ORDER_KEYS: dict[str, Callable[[Resolved], Any]] = {
    "local_first": lambda r: not r.info.local,
    "cloud_first": lambda r: r.info.local,
    "cheapest": lambda r: r.info.cost_hint,
    "fastest": lambda r: r.info.speed_hint,
}


class Router:
    """Providers tried in policy order, with retries and fallback.

    Args:
        providers: a provider string or a list of them; ``None`` means the
            default route (``MMSDK_DEFAULT_PROVIDER``, else every installed
            provider that offers the capability, cloud first).
        policy: retries, timeouts, ordering and privacy rules.
        on_attempt: called with each :class:`Attempt` as it ends.
        credentials: a plugin name mapped to the API key this router uses for
            it instead of the environment's (``{"openai": "sk-..."}``). Models
            and breaker facts made with a key are kept apart per key, so one
            tenant's failures never open another's breaker. Keys are redacted
            from errors and logs and never shown by ``repr``. Naming a plugin
            that takes no per-router key makes it a skipped candidate (a
            :class:`CapabilityError`).
        cache: a folder path or a :class:`mmsdk.Cache` where this router keeps
            the results of repeatable calls (default: ``mmsdk.configure(cache=...)``).
        prices: ``{"PLUGIN:MODEL": {"input_per_mtok": ..., ...}}``: this router's
            prices (a negotiated rate, a tenant's plan), before
            ``mmsdk.configure(prices=...)`` and the plugins' tables.

    Example:
        >>> router = mmsdk.Router(["openai:gpt-5.5", "local:llava"],
        ...                       policy=mmsdk.Policy(hedge_after=2.0))
        >>> router.understand("Describe", images=["photo.jpg"]).text
        >>> tenant = mmsdk.Router("openai:gpt-5.5", credentials={"openai": tenant_key})
    """

    def __init__(self, providers: str | Sequence[str] | None = None,
                 policy: Policy | None = None, *,
                 on_attempt: Callable[[Attempt], Any] | None = None,
                 credentials: Mapping[str, str] | None = None,
                 registry: Registry | None = None,
                 cache: str | os.PathLike[str] | Cache | None = None,
                 prices: Mapping[str, Any] | None = None) -> None:
        if isinstance(providers, str):
            providers = [providers]
        if providers is not None and (not isinstance(providers, (list, tuple)) or not providers
                                      or not all(isinstance(p, str) for p in providers)):
            raise InvalidInputError("provider must be a string, a non-empty list of strings, "
                                    f"or a Router; got {type(providers).__name__} "
                                    f"{short(providers)}.")
        if policy is not None and not isinstance(policy, Policy):
            raise InvalidInputError(f"policy must be a mmsdk.Policy, got {type(policy).__name__}.")
        if on_attempt is not None and not callable(on_attempt):
            raise InvalidInputError("on_attempt must be a function of one Attempt, got "
                                    f"{type(on_attempt).__name__}.")
        self._credentials = Credentials(credentials)
        self._credentials_checked = False
        self._cache = as_cache(cache, "Router cache")
        self._prices = check_prices(prices, "Router prices") if prices is not None else {}
        self.providers = list(providers) if providers is not None else None
        self._policy = policy
        self._on_attempt = on_attempt
        self._registry = registry
        self._budgets = new_budgets()
        self._slots: Slots | None = None  # one limit for sync and async calls, on any loop
        self._slots_lock = threading.Lock()
        # (plugin, model) -> (the registry's spec, its keyed Resolved): with_key and
        # describe() run once per model, not per call.
        self._keyed: dict[tuple[str, str], tuple[ProviderSpec, Resolved]] = {}

    def __repr__(self) -> str:
        shown = f", credentials={sorted(self._credentials)!r}" if self._credentials else ""
        return f"Router({self.providers!r}, policy={self.policy!r}{shown})"

    @property
    def policy(self) -> Policy:
        """This router's policy, else the configured default (``mmsdk.configure(policy=...)``)."""
        return self._policy or get_settings().policy or DEFAULT_POLICY

    def _limit(self, policy: Policy) -> Slots | None:
        limit = policy.max_concurrency
        if limit is None:
            return None
        slots = self._slots
        if slots is None or slots.limit != limit:
            with self._slots_lock:
                if self._slots is None or self._slots.limit != limit:
                    self._slots = Slots(limit)
                slots = self._slots
        return slots

    def _context(self) -> RouteContext:
        settings = get_settings()
        hooks = tuple(h for h in (self._on_attempt, settings.on_attempt) if h is not None)
        cache = self._cache if self._cache is not None else settings.cache
        return RouteContext(budgets=self._budgets, hooks=hooks, cache=cache,
                            prices=self._prices)

    def health(self) -> dict[str, ProviderHealth]:
        """Breaker state of every provider called so far, under this router's policy.

        A replica pool's servers are listed one by one, as ``"NAME:MODEL@BASE_URL"``.

        For a plugin this router has a key for (``credentials=``), the facts
        are those of calls made with that key; for the others, those of calls
        made with the environment's credentials.

        Example:
            >>> router.health()["openai:gpt-5.5"].state
            'closed'
        """
        if not self._credentials:
            return environment_health(self.policy)
        policy, book = self.policy, health_book()
        keyed = self._credentials.fingerprints
        found = {provider: health for provider, health in environment_health(policy).items()
                 if _plugin(provider) not in keyed}
        for plugin, credential in keyed.items():
            for provider in book.providers(credential):
                if _plugin(provider) == plugin:
                    found[provider] = book.health(provider, credential,
                                                  policy.breaker_threshold,
                                                  policy.breaker_cooldown)
        return dict(sorted(found.items()))

    @property
    def registry(self) -> Registry:
        return self._registry or get_registry()

    def _names(self, capability: Capability) -> list[str] | None:
        """The provider strings to try; ``None`` for the registry's default route."""
        if self.providers is not None:
            return self.providers
        configured = os.environ.get("MMSDK_DEFAULT_PROVIDER")
        if configured:
            return [n.strip() for n in configured.split(",") if n.strip()]
        return list(get_settings().default_providers.get(capability.value, ())) or None

    def candidates(self, capability: Capability) -> list[Resolved | MMSDKError]:
        """The providers this router would try for *capability*, in order.

        A provider whose plugin is not installed comes back as the
        :class:`ProviderUnavailableError` routing records when it skips it; one
        whose plugin this router has a key for but which takes no per-router
        key, as a :class:`CapabilityError`.
        """
        if self._credentials and not self._credentials_checked:
            self._check_credentials()
        names = self._names(capability)
        if names is None:
            names = self.registry.default_route(capability)
            if not names:
                raise self._nothing_installed(capability)
        return self._resolve_all(names, capability)

    def _nothing_installed(self, capability: Capability) -> ProviderUnavailableError:
        """The error for a default route with no provider in it at all."""
        left_out = self.registry.disabled
        if left_out:
            return ProviderUnavailableError(
                f"No provider that can {capability.value} is allowed here: MMSDK_PLUGINS or "
                f"mmsdk.configure(plugins=...) leaves out {', '.join(map(repr, left_out))}.",
                fix="name the plugins to load in MMSDK_PLUGINS / configure(plugins=[...]), or "
                    "pass provider=...")
        return ProviderUnavailableError(
            f"No installed plugin provides {capability.value}.",
            fix="pip install 'mmsdk[openai]' (or anthropic, gemini, local), or pass provider=...")

    def _check_credentials(self) -> None:
        """Refuse a key for a plugin that does not exist (a misspelt ``"opneai"`` would
        silently send the app's own key instead). Checked at the first call, since
        endpoints may be added after the router is made."""
        unknown = self.registry.unknown_provider_names(sorted(self._credentials))
        if unknown:
            name, close = next(iter(unknown.items()))
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidInputError(
                f"Router(credentials=...) names {name!r}, which is no installed plugin or "
                f"registered provider.{hint} A key for it would never be used.")
        self._credentials_checked = True

    def _resolve_all(self, names: Sequence[str],
                     capability: Capability) -> list[Resolved | MMSDKError]:
        """*names* resolved as this router calls them, in policy order."""
        resolved: list[Resolved | MMSDKError] = []
        for name in names:
            try:
                found = self.registry.resolve(name, capability)
            except ProviderUnavailableError as missing:
                resolved.append(missing)
                continue
            try:
                found = self.with_credential(found)
                found.info  # noqa: B018  # a plugin whose describe() fails is skipped here,
            except MMSDKError as unusable:  # once, as a missing plugin or a keyless one is
                resolved.append(unusable)
                continue
            resolved.append(found)
        key = _ORDER_KEYS.get(self.policy.order)
        if key is None:
            return resolved
        return sorted(resolved, key=lambda r: (isinstance(r, MMSDKError),
                                               0 if isinstance(r, MMSDKError) else key(r)))

    def with_credential(self, resolved: Resolved) -> Resolved:
        """*resolved* as this router calls it: with its key for that plugin, if it has one.

        Raises:
            CapabilityError: this router has a key for the plugin, which takes none.
            ProviderError: the plugin's ``with_key`` failed (a bug in the plugin).
        """
        plugin = resolved.spec.name
        key = self._credentials.get(plugin)
        if key is None:
            return resolved
        cache_key = (plugin, resolved.model)
        cached = self._keyed.get(cache_key)
        if cached is not None and cached[0] is resolved.spec:
            return cached[1]
        if resolved.spec.with_key is None:
            raise CapabilityError(
                f"{resolved.provider}: the {plugin!r} plugin does not take per-router "
                "credentials; drop it from Router(credentials=...) to use the environment's.",
                provider=resolved.provider)
        try:
            spec = resolved.spec.with_key(key)
            if not isinstance(spec, ProviderSpec):
                raise TypeError(f"with_key returned {type(spec).__name__}, not a ProviderSpec")
        except Exception as exc:  # the message is redacted; the chain may hold the key
            raise ProviderError(f"{resolved.provider}: its plugin failed to take a per-router "
                                f"key: {type(exc).__name__}: {exc}. This is a bug in the "
                                "plugin; please report it.", provider=resolved.provider) from None
        keyed = Resolved(spec, resolved.model, self._credentials.fingerprints[plugin])
        if len(self._keyed) >= 256:  # bound the memo; a router names few models
            self._keyed.clear()
        self._keyed[cache_key] = (resolved.spec, keyed)
        return keyed

    # -- execution -----------------------------------------------------------
    # Provider strings are resolved before any input is read: an unknown name
    # fails at once, before a URL is fetched or a video decoded. The call's
    # clock starts first, so Policy.deadline covers reading inputs too.
    def _run(self, capability: Capability, build: Callable[..., Job], *,
             streaming: bool = False, verify_with: ProviderArg = None) -> Any:
        started = time.monotonic()
        policy = self.policy
        candidates = self.candidates(capability)
        checker = self._checker(capability, verify_with)
        deadline = _deadline(started, policy)
        slots = self._limit(policy)
        if slots is None:
            return self._execute(build(deadline=deadline), candidates, policy, started,
                                 streaming, checker)
        if not slots.acquire(policy.deadline):
            raise _no_slot(policy)
        try:
            result = self._execute(build(deadline=deadline), candidates, policy, started,
                                   streaming, checker)
        except BaseException:
            slots.release()
            raise
        return _handed_over(result, slots, streaming)

    async def _arun(self, capability: Capability, build: Callable[..., Job], *,
                    streaming: bool = False, verify_with: ProviderArg = None) -> Any:
        started = time.monotonic()
        policy = self.policy
        if (self._registry is None and not registry_loaded()) or \
                self.registry.would_import(self._names(capability)):
            # finding entry points and importing the plugins named here takes a while
            candidates = await asyncio.to_thread(self.candidates, capability)
        else:
            candidates = self.candidates(capability)
        checker = None if verify_with is None else \
            await asyncio.to_thread(self._checker, capability, verify_with)
        slots = self._limit(policy)
        if slots is None:
            job = await _abuild(build, started, policy)
            return await self._aexecute(job, candidates, policy, started, streaming, checker)
        try:
            await bounded(slots.aacquire(), _left(started, policy))
        except TimeoutError:
            raise _no_slot(policy) from None
        try:
            job = await _abuild(build, started, policy)
            result = await self._aexecute(job, candidates, policy, started, streaming, checker)
        except BaseException:
            slots.release()
            raise
        return _handed_over(result, slots, streaming)

    def _checker(self, capability: Capability, verify_with: ProviderArg) -> _Checker | None:
        """How to route the cross-check of ``verify_with=`` (resolved before inputs are read).

        A provider string or list is called as this router calls it (its policy,
        keys, budgets and cache); a :class:`Router`, as that router calls it.
        """
        if verify_with is None:
            return None
        if isinstance(verify_with, Router):
            router, names = verify_with, verify_with.providers
            candidates = router.candidates(capability)
        else:
            router = self
            names = [verify_with] if isinstance(verify_with, str) else list(verify_with)
            candidates = self._resolve_all(names, capability)
        context = dataclasses.replace(router._context(), verifier=True)
        return _Checker(candidates, router.policy, router.registry, context,
                        ", ".join(names or ["the default route"]))

    def _execute(self, job: Job, candidates: list[Resolved | MMSDKError], policy: Policy,
                 started: float, streaming: bool, checker: _Checker | None) -> Any:
        main = partial(execute, job, candidates, policy, self.registry, streaming=streaming,
                       started=started, context=self._context())
        if checker is None:
            return main()
        check = partial(execute, job, checker.candidates, checker.policy, checker.registry,
                        started=started, context=checker.context)
        return verified(main, check, checker.label, started)

    async def _aexecute(self, job: Job, candidates: list[Resolved | MMSDKError],
                        policy: Policy, started: float, streaming: bool,
                        checker: _Checker | None) -> Any:
        main = aexecute(job, candidates, policy, self.registry, streaming=streaming,
                        started=started, context=self._context())
        if checker is None:
            return await main
        check = aexecute(job, checker.candidates, checker.policy, checker.registry,
                         started=started, context=checker.context)
        return await averified(main, check, checker.label, started)

    # -- warm-up ---------------------------------------------------------------
    def preload(self, capability: Capability | str | None = None) -> list[str]:
        """Import, build clients and load local weights now, ahead of the first call.

        Args:
            capability: warm what this router would use for one capability;
                ``None``: for every capability its providers offer (a bare
                plugin name means each of its default models).

        Returns:
            The provider strings warmed, e.g. ``["local:clip"]``.

        Raises:
            ProviderUnavailableError: a named provider cannot run here (with
                the fix); the others are warmed first. The default route
                (``providers=None``) skips those, as a call does.
            UnknownProviderError: a provider string is unknown or retired.
            CapabilityError: no provider here offers *capability*.

        Example:
            >>> router = mmsdk.Router(["local:clip"])
            >>> router.preload()        # at start-up: the first request pays nothing
            ['local:clip']
        """
        from ._providers import preload

        return preload(self, capability)

    async def apreload(self, capability: Capability | str | None = None) -> list[str]:
        """Async twin of :meth:`preload`: all of it runs in a worker thread, off the loop."""
        return await asyncio.to_thread(self.preload, capability)

    # -- the four capabilities, sync and async ---------------------------------
    def generate(self, prompt: str, *, negative_prompt: str | None = None,
                 size: str | None = None, width: int | None = None, height: int | None = None,
                 steps: int | None = None, guidance: float | None = None,
                 seed: int | None = None, n: int = 1, scheduler: str | None = None,
                 image: ImageInput | None = None, strength: float | None = None,
                 mask: ImageInput | None = None, control_image: ImageInput | None = None,
                 control_type: str | None = None, control_scale: float | None = None,
                 reference_image: ImageInput | None = None,
                 reference_scale: float | None = None, options: dict[str, Any] | None = None,
                 rerank_with: ProviderArg = None, progress: bool = False) -> GenerateResult:
        """Text (plus optional images) to images. See :func:`mmsdk.generate`."""
        build = partial(
            generate_job, prompt, negative_prompt=negative_prompt, size=size, width=width,
            height=height, steps=steps, guidance=guidance, seed=seed, n=n, scheduler=scheduler,
            image=image, strength=strength, mask=mask, control_image=control_image,
            control_type=control_type, control_scale=control_scale,
            reference_image=reference_image, reference_scale=reference_scale, options=options,
            progress=progress)
        ranker = reranker(self, rerank_with)  # checked before anything is generated
        began = time.monotonic()
        result: GenerateResult = self._run(Capability.GENERATE, build)
        if ranker is None:
            return result
        scoring_began = time.monotonic()
        try:
            scored = ranker.within(began).embed(images=result.images, texts=[prompt])
            scores = clip_scores(scored, len(result.images))
        except MMSDKError as error:
            raise rerank_failed(error, result, ranker, began=began,
                                scoring_began=scoring_began) from None
        return ranked(result, scored, scores, began=began, scoring_began=scoring_began)

    async def agenerate(self, prompt: str, *, negative_prompt: str | None = None,
                        size: str | None = None, width: int | None = None,
                        height: int | None = None, steps: int | None = None,
                        guidance: float | None = None, seed: int | None = None, n: int = 1,
                        scheduler: str | None = None, image: ImageInput | None = None,
                        strength: float | None = None, mask: ImageInput | None = None,
                        control_image: ImageInput | None = None,
                        control_type: str | None = None, control_scale: float | None = None,
                        reference_image: ImageInput | None = None,
                        reference_scale: float | None = None,
                        options: dict[str, Any] | None = None,
                        rerank_with: ProviderArg = None,
                        progress: bool = False) -> GenerateResult:
        """Async twin of :meth:`generate`."""
        build = partial(
            generate_job, prompt, negative_prompt=negative_prompt, size=size, width=width,
            height=height, steps=steps, guidance=guidance, seed=seed, n=n, scheduler=scheduler,
            image=image, strength=strength, mask=mask, control_image=control_image,
            control_type=control_type, control_scale=control_scale,
            reference_image=reference_image, reference_scale=reference_scale, options=options,
            progress=progress)
        ranker = reranker(self, rerank_with)
        began = time.monotonic()
        result: GenerateResult = await self._arun(Capability.GENERATE, build)
        if ranker is None:
            return result
        scoring_began = time.monotonic()
        try:
            scored = await ranker.within(began).aembed(images=result.images, texts=[prompt])
            scores = clip_scores(scored, len(result.images))
        except MMSDKError as error:
            raise rerank_failed(error, result, ranker, began=began,
                                scoring_began=scoring_began) from None
        return ranked(result, scored, scores, began=began, scoring_began=scoring_began)

    @overload
    def understand(self, prompt: str, *, images: Images | None = None,
                   video: VideoPath | None = None, frames: int | None = None,
                   fps: float | None = None,
                   system: str | None = None, max_tokens: int | None = None,
                   temperature: float | None = None, schema: type[BaseModel] | None = None,
                   verify_with: ProviderArg = None,
                   stream: Literal[False] = False, detail: Detail | None = None,
                   options: dict[str, Any] | None = None,
                   progress: bool = False) -> UnderstandResult: ...
    @overload
    def understand(self, prompt: str, *, images: Images | None = None,
                   video: VideoPath | None = None, frames: int | None = None,
                   fps: float | None = None,
                   system: str | None = None, max_tokens: int | None = None,
                   temperature: float | None = None, schema: type[BaseModel] | None = None,
                   verify_with: ProviderArg = None,
                   stream: Literal[True], detail: Detail | None = None,
                   options: dict[str, Any] | None = None,
                   progress: bool = False) -> TextStream: ...
    @overload
    def understand(self, prompt: str, *, images: Images | None = None,
                   video: VideoPath | None = None, frames: int | None = None,
                   fps: float | None = None,
                   system: str | None = None, max_tokens: int | None = None,
                   temperature: float | None = None, schema: type[BaseModel] | None = None,
                   verify_with: ProviderArg = None,
                   stream: bool, detail: Detail | None = None,
                   options: dict[str, Any] | None = None,
                   progress: bool = False) -> UnderstandResult | TextStream: ...
    def understand(self, prompt: str, *, images: Images | None = None,
                   video: VideoPath | None = None, frames: int | None = None,
                   fps: float | None = None,
                   system: str | None = None, max_tokens: int | None = None,
                   temperature: float | None = None, schema: type[BaseModel] | None = None,
                   verify_with: ProviderArg = None,
                   stream: bool = False, detail: Detail | None = None,
                   options: dict[str, Any] | None = None,
                   progress: bool = False) -> UnderstandResult | TextStream:
        """Images or video plus text, to text. See :func:`mmsdk.understand`."""
        check_verify(verify_with, schema, stream)
        build = partial(understand_job, prompt, images=images, video=video, frames=frames,
                        fps=fps, system=system, max_tokens=max_tokens, temperature=temperature,
                        schema=schema, stream=stream, detail=detail, options=options,
                        progress=progress)
        if stream:
            return TextStream(self._run(Capability.UNDERSTAND, build, streaming=True))
        result: UnderstandResult = self._run(Capability.UNDERSTAND, build,
                                             verify_with=verify_with)
        return result

    @overload
    async def aunderstand(self, prompt: str, *, images: Images | None = None,
                          video: VideoPath | None = None, frames: int | None = None,
                          fps: float | None = None,
                          system: str | None = None, max_tokens: int | None = None,
                          temperature: float | None = None,
                          schema: type[BaseModel] | None = None,
                          verify_with: ProviderArg = None,
                          stream: Literal[False] = False, detail: Detail | None = None,
                          options: dict[str, Any] | None = None,
                          progress: bool = False) -> UnderstandResult: ...
    @overload
    async def aunderstand(self, prompt: str, *, images: Images | None = None,
                          video: VideoPath | None = None, frames: int | None = None,
                          fps: float | None = None,
                          system: str | None = None, max_tokens: int | None = None,
                          temperature: float | None = None,
                          schema: type[BaseModel] | None = None,
                          verify_with: ProviderArg = None,
                          stream: Literal[True], detail: Detail | None = None,
                          options: dict[str, Any] | None = None,
                          progress: bool = False) -> AsyncTextStream: ...
    @overload
    async def aunderstand(self, prompt: str, *, images: Images | None = None,
                          video: VideoPath | None = None, frames: int | None = None,
                          fps: float | None = None,
                          system: str | None = None, max_tokens: int | None = None,
                          temperature: float | None = None,
                          schema: type[BaseModel] | None = None,
                          verify_with: ProviderArg = None,
                          stream: bool, detail: Detail | None = None,
                          options: dict[str, Any] | None = None,
                          progress: bool = False) -> UnderstandResult | AsyncTextStream: ...
    async def aunderstand(self, prompt: str, *, images: Images | None = None,
                          video: VideoPath | None = None, frames: int | None = None,
                          fps: float | None = None,
                          system: str | None = None, max_tokens: int | None = None,
                          temperature: float | None = None,
                          schema: type[BaseModel] | None = None,
                          verify_with: ProviderArg = None,
                          stream: bool = False, detail: Detail | None = None,
                          options: dict[str, Any] | None = None,
                          progress: bool = False) -> UnderstandResult | AsyncTextStream:
        """Async twin of :meth:`understand`; with ``stream=True`` an :class:`AsyncTextStream`."""
        check_verify(verify_with, schema, stream)
        build = partial(understand_job, prompt, images=images, video=video, frames=frames,
                        fps=fps, system=system, max_tokens=max_tokens, temperature=temperature,
                        schema=schema, stream=stream, detail=detail, options=options,
                        progress=progress)
        if stream:
            return AsyncTextStream(await self._arun(Capability.UNDERSTAND, build, streaming=True))
        result: UnderstandResult = await self._arun(Capability.UNDERSTAND, build,
                                                    verify_with=verify_with)
        return result

    @overload  # a str is a Sequence too: it matches this first variant, as it should
    def classify(  # type: ignore[overload-overlap]
            self, image: ImageInput, labels: Sequence[str], *, multi_label: bool = False,
            template: str | None = None,
            options: dict[str, Any] | None = None) -> ClassifyResult: ...
    @overload
    def classify(self, image: Sequence[ImageInput], labels: Sequence[str], *,
                 multi_label: bool = False, template: str | None = None,
                 options: dict[str, Any] | None = None) -> list[ClassifyResult]: ...
    def classify(self, image: ImageInput | Sequence[ImageInput], labels: Sequence[str], *,
                 multi_label: bool = False, template: str | None = None,
                 options: dict[str, Any] | None = None) -> ClassifyResult | list[ClassifyResult]:
        """Zero-shot scores. See :func:`mmsdk.classify`."""
        build = partial(classify_job, image, labels, multi_label=multi_label, template=template,
                        options=options)
        return _one_or_many(image, self._run(Capability.CLASSIFY, build))

    @overload  # a str is a Sequence too: it matches this first variant, as it should
    async def aclassify(  # type: ignore[overload-overlap]
            self, image: ImageInput, labels: Sequence[str], *, multi_label: bool = False,
            template: str | None = None,
            options: dict[str, Any] | None = None) -> ClassifyResult: ...
    @overload
    async def aclassify(self, image: Sequence[ImageInput], labels: Sequence[str], *,
                        multi_label: bool = False, template: str | None = None,
                        options: dict[str, Any] | None = None) -> list[ClassifyResult]: ...
    async def aclassify(self, image: ImageInput | Sequence[ImageInput], labels: Sequence[str], *,
                        multi_label: bool = False, template: str | None = None,
                        options: dict[str, Any] | None = None,
                        ) -> ClassifyResult | list[ClassifyResult]:
        """Async twin of :meth:`classify`."""
        build = partial(classify_job, image, labels, multi_label=multi_label, template=template,
                        options=options)
        return _one_or_many(image, await self._arun(Capability.CLASSIFY, build))

    def embed(self, *, images: Images | None = None, texts: Sequence[str] | str | None = None,
              options: dict[str, Any] | None = None) -> EmbedResult:
        """Vectors for images and texts. See :func:`mmsdk.embed`."""
        build = partial(embed_job, images=images, texts=texts, options=options)
        result: EmbedResult = self._run(Capability.EMBED, build)
        return result

    async def aembed(self, *, images: Images | None = None,
                     texts: Sequence[str] | str | None = None,
                     options: dict[str, Any] | None = None) -> EmbedResult:
        """Async twin of :meth:`embed`."""
        build = partial(embed_job, images=images, texts=texts, options=options)
        result: EmbedResult = await self._arun(Capability.EMBED, build)
        return result

    def score(self, images: Images, prompt: str, *,
              options: dict[str, Any] | None = None) -> list[float]:
        """CLIP score of each image against *prompt*. See :func:`mmsdk.score`."""
        count = check_score_inputs(images, prompt)
        return clip_scores(self.embed(images=images, texts=[prompt], options=options), count)

    async def ascore(self, images: Images, prompt: str, *,
                     options: dict[str, Any] | None = None) -> list[float]:
        """Async twin of :meth:`score`."""
        count = check_score_inputs(images, prompt)
        return clip_scores(await self.aembed(images=images, texts=[prompt], options=options),
                           count)


@dataclasses.dataclass(frozen=True)
class _Checker:
    """The route of a ``verify_with=`` cross-check."""

    candidates: list[Resolved | MMSDKError]
    policy: Policy
    registry: Registry
    context: RouteContext
    label: str


def _deadline(started: float, policy: Policy) -> float | None:
    return None if policy.deadline is None else started + policy.deadline


def _left(started: float, policy: Policy) -> float | None:
    deadline = _deadline(started, policy)
    return None if deadline is None else deadline - time.monotonic()


async def _abuild(build: Callable[..., Job], started: float, policy: Policy) -> Job:
    """Read and check the inputs: on the loop when they are small, else in a thread."""
    deadline = _deadline(started, policy)
    if light_inputs(build):
        return build(deadline=deadline)
    try:
        job: Job = await bounded(asyncio.to_thread(build, deadline=deadline),
                                 _left(started, policy))
        return job
    except TimeoutError:
        raise ProviderTimeoutError(f"The {policy.deadline}s deadline passed while "
                                   "reading the inputs; raise Policy(deadline=...).") from None


def _no_slot(policy: Policy) -> ProviderTimeoutError:
    return ProviderTimeoutError(
        f"No free slot (max_concurrency={policy.max_concurrency}) within the "
        f"{policy.deadline}s deadline; raise Policy(max_concurrency=...) or "
        "Policy(deadline=...).")


def _handed_over(result: Any, slots: Slots, streaming: bool) -> Any:
    """*result*, its concurrency slot given back (a stream holds it until it ends)."""
    if streaming:
        result.release = slots.release
    else:
        slots.release()
    return result


def _plugin(provider: str) -> str:
    return provider.partition(":")[0]


def _one_or_many(image: Any, results: list[ClassifyResult]) -> ClassifyResult | list[ClassifyResult]:
    return results if isinstance(image, (list, tuple)) else results[0]


def environment_health(policy: Policy) -> dict[str, ProviderHealth]:
    """Breaker state of every provider called with the environment's credentials."""
    book = health_book()
    return {provider: book.health(provider, None, policy.breaker_threshold,
                                  policy.breaker_cooldown) for provider in book.providers()}
