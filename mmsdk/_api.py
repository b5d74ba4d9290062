"""The module-level calls (``mmsdk.generate``, ``mmsdk.understand``, ...).

Each one hands its arguments to the :class:`Router` for its ``provider=`` and
``policy=`` (one router per route, reused across calls).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal, overload

from pydantic import BaseModel

from ._arguments import Detail, ImageInput, Images, ProviderArg, VideoPath
from ._errors import InvalidInputError
from ._health import ProviderHealth
from ._policy import Policy
from ._registry import get_registry
from ._router import DEFAULT_POLICY, Router, environment_health
from ._settings import get_settings
from ._stream import AsyncTextStream, TextStream
from ._types import (
    Capability,
    ClassifyResult,
    EmbedResult,
    GenerateResult,
    UnderstandResult,
)

__all__ = [
    "Detail", "ImageInput", "Images", "ProviderArg", "Router", "VideoPath", "aclassify",
    "aembed", "agenerate", "apreload", "ascore", "aunderstand", "aunload", "classify", "embed",
    "generate", "health", "preload", "score", "understand", "unload",
]


_routers: dict[tuple[Any, Policy | None], Router] = {}


def _router(provider: ProviderArg, policy: Policy | None = None) -> Router:
    """The router for a ``provider=`` argument and ``policy=``.

    One router per provider string or list and policy, reused across calls, so
    its retry budget and concurrency limit span calls as they do for an app's
    own :class:`Router`.
    """
    if isinstance(provider, Router):
        if policy is not None:
            raise InvalidInputError("Give policy= to the Router, not to the call, when "
                                    "provider= is a Router.")
        return provider
    if provider is not None and not isinstance(provider, (str, list, tuple)):
        raise InvalidInputError("provider must be a string like 'openai:gpt-5.5', a list of "
                                f"them, or a mmsdk.Router; got {type(provider).__name__}.")
    if policy is not None and not isinstance(policy, Policy):
        raise InvalidInputError(f"policy must be a mmsdk.Policy, got {type(policy).__name__}.")
    key = (provider if not isinstance(provider, list) else tuple(provider), policy)
    try:
        router = _routers.get(key)
    except TypeError:  # an unhashable list item: Router() reports it
        return Router(provider, policy)
    if router is None:
        if len(_routers) >= 256:  # bound the memo; routes are normally few
            _routers.clear()
        router = _routers[key] = Router(provider, policy)
    return router


def health() -> dict[str, ProviderHealth]:
    """Breaker state of every provider called in this process, under the default policy.

    A replica pool's servers are listed one by one, as ``"NAME:MODEL@BASE_URL"``.

    Example:
        >>> mmsdk.health()
        {'openai:gpt-5.5': ProviderHealth(state='closed', consecutive_failures=0, ...)}
    """
    return environment_health(get_settings().policy or DEFAULT_POLICY)


# -- module-level functions ---------------------------------------------------------
def generate(prompt: str, *, provider: ProviderArg = None, policy: Policy | None = None,
             negative_prompt: str | None = None, size: str | None = None,
             width: int | None = None, height: int | None = None, steps: int | None = None,
             guidance: float | None = None, seed: int | None = None, n: int = 1,
             scheduler: str | None = None, image: ImageInput | None = None,
             strength: float | None = None, mask: ImageInput | None = None,
             control_image: ImageInput | None = None, control_type: str | None = None,
             control_scale: float | None = None, reference_image: ImageInput | None = None,
             reference_scale: float | None = None, options: dict[str, Any] | None = None,
             rerank_with: ProviderArg = None, progress: bool = False) -> GenerateResult:
    """Make images from a text prompt (plus optional input, mask, control and reference images).

    Args:
        prompt: what to draw.
        provider: ``"PLUGIN:MODEL"``, a fallback list of them, or a :class:`Router`.
        policy: retries, timeouts and ordering (default: ``mmsdk.configure(policy=...)``).
        size: ``"WxH"``; or give ``width`` and ``height``.
        steps / guidance / seed / scheduler: ``num_inference_steps``,
            ``guidance_scale``, a seeded generator, a scheduler name. ``None``
            keeps the model's own default.
        image / strength / mask: img2img and inpainting.
        control_image / control_type / control_scale: ControlNet.
        reference_image / reference_scale: IP-Adapter.
        options: provider-specific extras; unknown keys raise ``InvalidInputError``.
        rerank_with: a provider that embeds images and texts (``"local:clip"``),
            a list of them or a :class:`Router`: the images come back best first
            by their CLIP score against *prompt* (see :func:`score`), in
            ``result.scores``; the scoring attempts follow the generating ones in
            ``result.attempts``. It is checked before generating; if scoring
            fails afterwards, its error is raised (saying so) and no image is
            returned. A string or list is called with this call's policy and
            router (one ``Policy.deadline`` covers both steps).
        progress: show a progress bar for long local work.

    Example:
        >>> result = mmsdk.generate("a watercolor Japanese garden", provider="local:sd15", seed=1)
        >>> result.images[0].save("garden.png")
        >>> best = mmsdk.generate("a red fox", provider="local:sd15", n=4, rerank_with="local:clip")
        >>> best.scores            # descending, one per image
        [31.2, 29.8, 27.5, 24.1]
    """
    return _router(provider, policy).generate(
        prompt, negative_prompt=negative_prompt, size=size, width=width, height=height,
        steps=steps, guidance=guidance, seed=seed, n=n, scheduler=scheduler, image=image,
        strength=strength, mask=mask, control_image=control_image, control_type=control_type,
        control_scale=control_scale, reference_image=reference_image,
        reference_scale=reference_scale, options=options, rerank_with=rerank_with,
        progress=progress)


async def agenerate(prompt: str, *, provider: ProviderArg = None, policy: Policy | None = None,
                    negative_prompt: str | None = None, size: str | None = None,
                    width: int | None = None, height: int | None = None,
                    steps: int | None = None, guidance: float | None = None,
                    seed: int | None = None, n: int = 1, scheduler: str | None = None,
                    image: ImageInput | None = None, strength: float | None = None,
                    mask: ImageInput | None = None, control_image: ImageInput | None = None,
                    control_type: str | None = None, control_scale: float | None = None,
                    reference_image: ImageInput | None = None,
                    reference_scale: float | None = None,
                    options: dict[str, Any] | None = None,
                    rerank_with: ProviderArg = None,
                    progress: bool = False) -> GenerateResult:
    """Async twin of :func:`generate` (same arguments)."""
    return await _router(provider, policy).agenerate(
        prompt, negative_prompt=negative_prompt, size=size, width=width, height=height,
        steps=steps, guidance=guidance, seed=seed, n=n, scheduler=scheduler, image=image,
        strength=strength, mask=mask, control_image=control_image, control_type=control_type,
        control_scale=control_scale, reference_image=reference_image,
        reference_scale=reference_scale, options=options, rerank_with=rerank_with,
        progress=progress)


@overload
def understand(prompt: str, *, images: Images | None = None, video: VideoPath | None = None,
               frames: int | None = None, fps: float | None = None,
               provider: ProviderArg = None,
               policy: Policy | None = None, system: str | None = None,
               max_tokens: int | None = None, temperature: float | None = None,
               schema: type[BaseModel] | None = None, verify_with: ProviderArg = None,
               stream: Literal[False] = False,
               detail: Detail | None = None, options: dict[str, Any] | None = None,
               progress: bool = False) -> UnderstandResult: ...
@overload
def understand(prompt: str, *, images: Images | None = None, video: VideoPath | None = None,
               frames: int | None = None, fps: float | None = None,
               provider: ProviderArg = None,
               policy: Policy | None = None, system: str | None = None,
               max_tokens: int | None = None, temperature: float | None = None,
               schema: type[BaseModel] | None = None, verify_with: ProviderArg = None,
               stream: Literal[True],
               detail: Detail | None = None, options: dict[str, Any] | None = None,
               progress: bool = False) -> TextStream: ...
@overload
def understand(prompt: str, *, images: Images | None = None, video: VideoPath | None = None,
               frames: int | None = None, fps: float | None = None,
               provider: ProviderArg = None,
               policy: Policy | None = None, system: str | None = None,
               max_tokens: int | None = None, temperature: float | None = None,
               schema: type[BaseModel] | None = None, verify_with: ProviderArg = None,
               stream: bool,
               detail: Detail | None = None, options: dict[str, Any] | None = None,
               progress: bool = False) -> UnderstandResult | TextStream: ...
def understand(prompt: str, *, images: Images | None = None, video: VideoPath | None = None,
               frames: int | None = None, fps: float | None = None,
               provider: ProviderArg = None,
               policy: Policy | None = None, system: str | None = None,
               max_tokens: int | None = None, temperature: float | None = None,
               schema: type[BaseModel] | None = None, verify_with: ProviderArg = None,
               stream: bool = False,
               detail: Detail | None = None, options: dict[str, Any] | None = None,
               progress: bool = False) -> UnderstandResult | TextStream:
    """Answer a question about images or a video.

    Returns an :class:`UnderstandResult`, or with ``stream=True`` a
    :class:`TextStream` of ``str`` chunks whose ``.result`` is the whole answer.
    With ``schema=`` (a pydantic model), ``result.data`` is a validated instance.

    A provider with native video (``"video"`` in ``ModelInfo.supports``, e.g.
    Gemini) gets the file; any other gets sampled frames, with the time of each
    in the prompt (``Frame 1 at 0.0 s, ...``), and when they are more than it
    takes per request (``ModelInfo.limits.max_images``), the video is answered
    in chunks and the partial answers combined by one more request. Frames
    capped, ignored or sparse are reported in ``result.warnings``.

    Args:
        frames: how many frames to sample, spread evenly (default 8); with
            ``fps``, the most frames ``fps`` sampling may take.
        fps: sample this many frames per second of video (at most 256 frames).
        verify_with: a second provider (a list of them, or a :class:`Router`)
            asked the same question concurrently; needs ``schema``.
            ``result.verification`` holds its answer and the fields both agree
            and disagree on; if it fails, ``verification.error`` says why and
            the main answer stands. Its attempts are in ``result.attempts``,
            marked ``verifier=True``.

    Example:
        >>> answer = mmsdk.understand("What trends do you see?", images=["chart.png"],
        ...                           provider="anthropic:claude-sonnet-4-6")
        >>> print(answer.text, answer.usage.output_tokens)
        >>> checked = mmsdk.understand("Extract the total", images=["receipt.jpg"],
        ...                            schema=Receipt, provider="openai:gpt-5.5",
        ...                            verify_with="anthropic:claude-sonnet-4-6")
        >>> checked.verification.disagree
        ['total']
    """
    return _router(provider, policy).understand(
        prompt, images=images, video=video, frames=frames, fps=fps, system=system,
        max_tokens=max_tokens, temperature=temperature, schema=schema, verify_with=verify_with,
        stream=stream, detail=detail, options=options, progress=progress)


@overload
async def aunderstand(prompt: str, *, images: Images | None = None,
                      video: VideoPath | None = None, frames: int | None = None,
                      fps: float | None = None,
                      provider: ProviderArg = None, policy: Policy | None = None,
                      system: str | None = None, max_tokens: int | None = None,
                      temperature: float | None = None, schema: type[BaseModel] | None = None,
                      verify_with: ProviderArg = None,
                      stream: Literal[False] = False, detail: Detail | None = None,
                      options: dict[str, Any] | None = None,
                      progress: bool = False) -> UnderstandResult: ...
@overload
async def aunderstand(prompt: str, *, images: Images | None = None,
                      video: VideoPath | None = None, frames: int | None = None,
                      fps: float | None = None,
                      provider: ProviderArg = None, policy: Policy | None = None,
                      system: str | None = None, max_tokens: int | None = None,
                      temperature: float | None = None, schema: type[BaseModel] | None = None,
                      verify_with: ProviderArg = None,
                      stream: Literal[True], detail: Detail | None = None,
                      options: dict[str, Any] | None = None,
                      progress: bool = False) -> AsyncTextStream: ...
@overload
async def aunderstand(prompt: str, *, images: Images | None = None,
                      video: VideoPath | None = None, frames: int | None = None,
                      fps: float | None = None,
                      provider: ProviderArg = None, policy: Policy | None = None,
                      system: str | None = None, max_tokens: int | None = None,
                      temperature: float | None = None, schema: type[BaseModel] | None = None,
                      verify_with: ProviderArg = None,
                      stream: bool, detail: Detail | None = None,
                      options: dict[str, Any] | None = None,
                      progress: bool = False) -> UnderstandResult | AsyncTextStream: ...
async def aunderstand(prompt: str, *, images: Images | None = None,
                      video: VideoPath | None = None, frames: int | None = None,
                      fps: float | None = None,
                      provider: ProviderArg = None, policy: Policy | None = None,
                      system: str | None = None, max_tokens: int | None = None,
                      temperature: float | None = None, schema: type[BaseModel] | None = None,
                      verify_with: ProviderArg = None,
                      stream: bool = False, detail: Detail | None = None,
                      options: dict[str, Any] | None = None,
                      progress: bool = False) -> UnderstandResult | AsyncTextStream:
    """Async twin of :func:`understand`; with ``stream=True`` returns an :class:`AsyncTextStream`."""
    return await _router(provider, policy).aunderstand(
        prompt, images=images, video=video, frames=frames, fps=fps, system=system,
        max_tokens=max_tokens, temperature=temperature, schema=schema, verify_with=verify_with,
        stream=stream, detail=detail, options=options, progress=progress)


@overload  # a str is a Sequence too: it matches this first variant, as it should
def classify(  # type: ignore[overload-overlap]
        image: ImageInput, labels: Sequence[str], *, provider: ProviderArg = None,
        policy: Policy | None = None, multi_label: bool = False, template: str | None = None,
        options: dict[str, Any] | None = None) -> ClassifyResult: ...
@overload
def classify(image: Sequence[ImageInput], labels: Sequence[str], *,
             provider: ProviderArg = None, policy: Policy | None = None,
             multi_label: bool = False, template: str | None = None,
             options: dict[str, Any] | None = None) -> list[ClassifyResult]: ...
def classify(image: ImageInput | Sequence[ImageInput], labels: Sequence[str], *,
             provider: ProviderArg = None, policy: Policy | None = None,
             multi_label: bool = False, template: str | None = None,
             options: dict[str, Any] | None = None) -> ClassifyResult | list[ClassifyResult]:
    """Score *labels* for an image (or, given a list or tuple, for each image: a list).

    Example:
        >>> result = mmsdk.classify("photo.jpg", labels=["cat", "dog"], provider="local:clip")
        >>> result.top
        ('cat', 0.93)
    """
    return _router(provider, policy).classify(image, labels, multi_label=multi_label,
                                              template=template, options=options)


@overload  # a str is a Sequence too: it matches this first variant, as it should
async def aclassify(  # type: ignore[overload-overlap]
        image: ImageInput, labels: Sequence[str], *, provider: ProviderArg = None,
        policy: Policy | None = None, multi_label: bool = False, template: str | None = None,
        options: dict[str, Any] | None = None) -> ClassifyResult: ...
@overload
async def aclassify(image: Sequence[ImageInput], labels: Sequence[str], *,
                    provider: ProviderArg = None, policy: Policy | None = None,
                    multi_label: bool = False, template: str | None = None,
                    options: dict[str, Any] | None = None) -> list[ClassifyResult]: ...
async def aclassify(image: ImageInput | Sequence[ImageInput], labels: Sequence[str], *,
                    provider: ProviderArg = None, policy: Policy | None = None,
                    multi_label: bool = False, template: str | None = None,
                    options: dict[str, Any] | None = None,
                    ) -> ClassifyResult | list[ClassifyResult]:
    """Async twin of :func:`classify`."""
    return await _router(provider, policy).aclassify(image, labels, multi_label=multi_label,
                                                     template=template, options=options)


def embed(*, images: Images | None = None, texts: Sequence[str] | str | None = None,
          provider: ProviderArg = None, policy: Policy | None = None,
          options: dict[str, Any] | None = None) -> EmbedResult:
    """Unit vectors for images and texts in one space, in input order.

    Example:
        >>> vectors = mmsdk.embed(images=["a.jpg"], texts=["a cat"], provider="local:clip")
        >>> float(vectors.image_vectors @ vectors.text_vectors.T)
    """
    return _router(provider, policy).embed(images=images, texts=texts, options=options)


async def aembed(*, images: Images | None = None, texts: Sequence[str] | str | None = None,
                 provider: ProviderArg = None, policy: Policy | None = None,
                 options: dict[str, Any] | None = None) -> EmbedResult:
    """Async twin of :func:`embed`."""
    return await _router(provider, policy).aembed(images=images, texts=texts, options=options)


def score(images: Images, prompt: str, *, provider: ProviderArg = "local:clip",
          policy: Policy | None = None, options: dict[str, Any] | None = None) -> list[float]:
    """The CLIP score of each image against *prompt*, in input order.

    torchmetrics' ``CLIPScore`` for each image: ``100 * max(cosine, 0)`` of its
    vector and the prompt's, from any provider that embeds images and texts in
    one space (CLIP, SigLIP). Scores from different models are not comparable.

    Args:
        images: one image or a list of them (any image input).
        prompt: the text to score them against (truncated to the model's text length).
        provider: the embedding provider, a fallback list, or a :class:`Router`.
        policy: retries, timeouts and ordering.
        options: the provider's embed options (``{"batch_size": 8}``).

    Returns:
        One float in ``[0, 100]`` per image.

    Raises:
        InvalidInputError: no image, a bad image, or an empty prompt.
        CapabilityError: the provider cannot embed.

    Example:
        >>> mmsdk.score(["a.png", "b.png"], "a red fox", provider="local:clip")
        [31.2, 24.1]
    """
    return _router(provider, policy).score(images, prompt, options=options)


async def ascore(images: Images, prompt: str, *, provider: ProviderArg = "local:clip",
                 policy: Policy | None = None,
                 options: dict[str, Any] | None = None) -> list[float]:
    """Async twin of :func:`score`."""
    return await _router(provider, policy).ascore(images, prompt, options=options)


def preload(provider: ProviderArg, capability: Capability | str | None = None) -> list[str]:
    """Import, build clients and load local weights ahead of the first call.

    Args:
        provider: a provider string, a list of them, a :class:`Router`, or
            ``None`` for the default route (only what can run here is warmed).
        capability: warm for this capability only; ``None``: every capability
            offered (a bare plugin name means each of its default models).

    Returns:
        The provider strings warmed.

    Raises:
        ProviderUnavailableError: a named provider cannot run here; says the fix.

    Example:
        >>> mmsdk.preload("local:clip")     # at start-up, not on the first request
        ['local:clip']
    """
    return _router(provider).preload(capability)


async def apreload(provider: ProviderArg, capability: Capability | str | None = None,
                   ) -> list[str]:
    """Async twin of :func:`preload`: all of it runs in a worker thread, off the event loop."""
    return await asyncio.to_thread(preload, provider, capability)


def unload(provider: str | None = None) -> None:
    """Free loaded models: all of them, one plugin's, or one provider string's."""
    get_registry().unload(provider)


async def aunload(provider: str | None = None) -> None:
    """Async twin of :func:`unload`; closes async clients inside the running loop."""
    await get_registry().aunload(provider)
