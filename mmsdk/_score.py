"""CLIP score of images against a prompt, and reranking generated images by it.

The score is torchmetrics' ``CLIPScore`` for one image and one text:
``100 * max(cosine(image_vector, text_vector), 0)``. It is computed here, in the
core, from an ``embed`` call, so any provider that embeds images and texts in
one space scores (``local:clip``, ``transformers:FOLDER``, a SigLIP checkpoint,
``mmsdk.testing`` providers); routing, policy, attempts and errors are those of
that ``embed`` call.

``generate(..., rerank_with=PROVIDER)`` scores the generated images against
the prompt and returns them best first, with ``result.scores`` aligned. The
reranker is checked before anything is generated (an unknown name, or no
candidate that can embed, fails first: generating costs more than checking).
When the reranker fails after the images were made, the call raises the
reranker's error, its message saying that reranking failed and with which
provider; the images are not returned, because the caller asked for them
ranked (generate without ``rerank_with`` and call :func:`mmsdk.score` to
handle a scoring failure yourself).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import CapabilityError, InvalidInputError, MMSDKError, ProviderError, ProviderTimeoutError
from ._registry import Resolved
from ._types import Attempt, Capability, EmbedResult, GenerateResult

if TYPE_CHECKING:
    from ._router import Router

__all__ = ["Reranker", "check_score_inputs", "clip_scores", "ranked", "reranker",
           "rerank_failed"]


def check_score_inputs(images: Any, prompt: Any) -> int:
    """How many images will be scored; a missing image or a bad prompt is the caller's mistake."""
    if not isinstance(prompt, str) or not prompt.strip():
        got = "an empty string" if isinstance(prompt, str) else type(prompt).__name__
        raise InvalidInputError(f"score needs the prompt as a non-empty string, got {got}.")
    if images is None or (isinstance(images, (list, tuple)) and not images):
        raise InvalidInputError("score needs at least one image (a path, bytes, a PIL image, "
                                "an array or a URL, or a list of them).")
    return len(images) if isinstance(images, (list, tuple)) else 1


def clip_scores(result: EmbedResult, count: int) -> list[float]:
    """``100 * max(cos, 0)`` of each of *count* image vectors against the one text vector.

    Vectors are normalised again here: the contract says providers return
    unit vectors, but a score must not depend on a plugin getting that right.

    Raises:
        ProviderError: the provider's vectors cannot be compared (missing,
            wrong count, different sizes, not finite).
    """
    import numpy as np

    provider = result.provider or None
    images, texts = result.image_vectors, result.text_vectors

    def broken(what: str) -> ProviderError:
        return ProviderError(f"{provider or 'The provider'} returned {what}, so its embeddings "
                             "cannot score images against a prompt; score with a provider "
                             "that embeds images and texts in one space (e.g. local:clip).",
                             provider=provider)

    if images is None or texts is None:
        missing = "no image vectors" if images is None else "no text vector"
        raise broken(missing)
    images, texts = np.asarray(images, np.float64), np.asarray(texts, np.float64)
    if images.ndim != 2 or images.shape[0] != count or texts.shape[:1] != (1,) \
            or texts.ndim != 2 or texts.shape[1] != images.shape[1]:
        raise broken(f"image vectors of shape {images.shape} and text vectors of shape "
                     f"{texts.shape} for {count} image(s) and 1 text")
    if not (np.isfinite(images).all() and np.isfinite(texts).all()):
        raise broken("vectors that are not finite")
    norms = np.linalg.norm(images, axis=1) * np.linalg.norm(texts[0])
    dots = images @ texts[0]
    cosines = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return [float(value) for value in 100.0 * np.maximum(cosines, 0.0)]


@dataclass(frozen=True)
class Reranker:
    """The router that scores a call's generated images.

    Attributes:
        router: the one given as ``rerank_with=``, or a copy of the generating
            router (same policy, credentials, retry budgets, concurrency limit
            and hooks) with the given provider string(s).
        shown: ``rerank_with`` as messages show it.
        inherits: a copy of the generating router: the call's ``Policy.deadline``
            covers generating and reranking together.
    """

    router: Router
    shown: str
    inherits: bool

    def within(self, began: float) -> Router:
        """The router to score with, given the call began at *began* (``time.monotonic()``)."""
        if not self.inherits:
            return self.router
        policy = self.router.policy
        if policy.deadline is None:
            return self.router
        left = policy.deadline - (time.monotonic() - began)
        if left <= 0:
            raise ProviderTimeoutError(
                f"The {policy.deadline}s deadline passed after generating, before reranking "
                f"with {self.shown}; raise Policy(deadline=...).")
        bounded = copy.copy(self.router)
        bounded._policy = policy.model_copy(update={"deadline": left})
        return bounded


def reranker(router: Router, rerank_with: Any) -> Reranker | None:
    """Check ``rerank_with=`` before generating; ``None`` when no reranking was asked for.

    Raises:
        InvalidInputError: ``rerank_with`` is not a provider string, a list of
            them or a Router.
        UnknownProviderError: a provider string is unknown or retired.
        CapabilityError / ProviderUnavailableError: no candidate can embed
            (for one provider: why that one cannot).
    """
    from ._router import Router

    if rerank_with is None:
        return None
    if isinstance(rerank_with, Router):
        ranker, inherits = rerank_with, False
        shown = repr(rerank_with.providers) if rerank_with.providers is not None \
            else "the default embed route"
    else:
        names = [rerank_with] if isinstance(rerank_with, str) else rerank_with
        if not isinstance(names, (list, tuple)) or not names or \
                not all(isinstance(name, str) and name.strip() for name in names):
            raise InvalidInputError(
                "rerank_with must be a provider string that embeds images and texts (e.g. "
                "'local:clip'), a list of them, or a mmsdk.Router; got "
                f"{type(rerank_with).__name__}.")
        router._limit(router.policy)  # the copy shares the router's concurrency slots
        ranker, inherits = copy.copy(router), True
        ranker.providers = list(names)
        shown = repr(rerank_with)
    candidates = ranker.candidates(Capability.EMBED)
    local_only = ranker.policy.local_only
    if not any(_can_embed(candidate, local_only) for candidate in candidates):
        if len(candidates) == 1 and isinstance(candidates[0], MMSDKError):
            raise candidates[0]
        raise CapabilityError(
            f"rerank_with={shown}: no candidate can embed images and texts"
            f"{' on this machine (the policy is local_only)' if local_only else ''}, so none "
            "can score the generated images; use a CLIP-like provider such as 'local:clip'.")
    return Reranker(ranker, shown, inherits)


def _can_embed(candidate: Resolved | MMSDKError, local_only: bool) -> bool:
    """Whether routing could call *candidate* to embed, by its declared metadata alone."""
    if isinstance(candidate, MMSDKError):
        return False
    try:
        info = candidate.info
    except MMSDKError:  # a plugin whose describe() fails: routing skips it too
        return False
    return Capability.EMBED in info.capabilities and (info.local or not local_only)


def ranked(result: GenerateResult, scored: EmbedResult, scores: Sequence[float], *,
           began: float, scoring_began: float) -> GenerateResult:
    """*result* with its images best first, ``scores`` aligned, and the reranker's attempts."""
    order = sorted(range(len(scores)), key=lambda index: -scores[index])  # stable on ties
    attempts = _joined(result.attempts, scored.attempts, scoring_began - began)
    gen_cost, rank_cost = result.usage.cost_usd, scored.usage.cost_usd
    usage = result.usage.model_copy(update={
        "cost_usd": None if gen_cost is None or rank_cost is None else gen_cost + rank_cost})
    return result.model_copy(update={
        "images": [result.images[index] for index in order],
        "scores": [float(scores[index]) for index in order],
        "attempts": attempts,
        "usage": usage,
        "warnings": [*result.warnings, *(f"rerank: {w}" for w in scored.warnings)],
        "elapsed": time.monotonic() - began,
    })


def rerank_failed(error: MMSDKError, result: GenerateResult, reranker: Reranker, *,
                  began: float, scoring_began: float) -> MMSDKError:
    """The reranker's *error*, saying that reranking failed, with every attempt of the call."""
    error.message = (f"Reranking the {len(result.images)} image(s) generated by "
                     f"{result.provider} with rerank_with={reranker.shown} failed (the images "
                     "are not returned; generate without rerank_with and call mmsdk.score to "
                     f"keep them): {error.message}")
    error.args = (error.message,)
    error.attempts = _joined(result.attempts, error.attempts, scoring_began - began)
    return error


def _joined(generating: Sequence[Attempt], scoring: Sequence[Attempt],
            offset: float) -> list[Attempt]:
    """The call's attempts: generating's, then scoring's with ``started`` counted from the
    call's start (scoring began *offset* seconds after it)."""
    return [*generating,
            *(a.model_copy(update={"started": a.started + offset}) for a in scoring)]
