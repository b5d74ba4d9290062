"""Results every capability returns, and the metadata a provider declares.

Results are pydantic models; images in them are ``PIL.Image.Image`` and
vectors are numpy arrays.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Set
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    import numpy as np

    Vectors = np.ndarray
else:  # numpy is not imported with mmsdk: EmbedResult checks its vectors by hand
    Vectors = Any

__all__ = [
    "Attempt",
    "Availability",
    "Capability",
    "ClassifyResult",
    "EmbedResult",
    "Feature",
    "GenerateResult",
    "MediaLimits",
    "ModelInfo",
    "Price",
    "Result",
    "SentImage",
    "UnderstandResult",
    "Usage",
    "Verification",
]

class Capability(str, enum.Enum):
    """What a provider can do."""

    GENERATE = "generate"
    UNDERSTAND = "understand"
    CLASSIFY = "classify"
    EMBED = "embed"


class Feature(str, enum.Enum):
    """A first-class call parameter a model can honour (``ModelInfo.supports``).

    A call that sets one its provider does not list is a :class:`CapabilityError`
    (or, with ``Policy(lenient=True)``, a warning). An unknown name in
    ``supports`` is the plugin author's mistake, reported when the plugin registers.
    """

    # generate
    NEGATIVE_PROMPT = "negative_prompt"
    WIDTH = "width"
    HEIGHT = "height"
    STEPS = "steps"
    GUIDANCE = "guidance"
    SEED = "seed"
    SCHEDULER = "scheduler"
    N = "n"
    IMAGE = "image"
    STRENGTH = "strength"
    MASK = "mask"
    CONTROL_IMAGE = "control_image"
    CONTROL_TYPE = "control_type"
    CONTROL_SCALE = "control_scale"
    REFERENCE_IMAGE = "reference_image"
    REFERENCE_SCALE = "reference_scale"
    # understand
    VIDEO = "video"
    SYSTEM = "system"
    MAX_TOKENS = "max_tokens"
    TEMPERATURE = "temperature"
    SCHEMA = "schema"
    STREAM = "stream"
    DETAIL = "detail"
    # classify
    MULTI_LABEL = "multi_label"
    TEMPLATE = "template"


def features(values: Any) -> frozenset[Feature]:
    """*values* as :class:`Feature` members; an unknown one raises ``ValueError`` naming it
    and every valid name."""
    if isinstance(values, (str, Feature)):
        values = [values]
    found: set[Feature] = set()
    unknown: list[str] = []
    for value in values:
        try:
            found.add(Feature(value))
        except ValueError:
            unknown.append(repr(value))
    if unknown:
        valid = ", ".join(f.value for f in Feature)
        raise ValueError(f"unknown feature(s) {', '.join(unknown)} in supports; valid features "
                         f"(mmsdk.plugin.Feature): {valid}")
    return frozenset(found)


class MediaLimits(BaseModel):
    """What a provider accepts for images; ``prepare()`` converts inputs to fit.

    Attributes:
        formats: accepted encodings, most preferred first (``"png"``,
            ``"jpeg"``, ``"webp"``, ``"gif"``). Empty: the provider takes PIL
            images in process and nothing is re-encoded.
        max_long_edge: longest side in pixels; larger images are downscaled.
        max_pixels: width * height cap; larger images are downscaled.
        max_bytes: per-image byte cap, counted as ``count_bytes_as`` says.
        count_bytes_as: ``"raw"`` or ``"base64"`` (Anthropic counts the base64 text).
        max_images: images per request; more is a :class:`CapabilityError`.
    """

    model_config = ConfigDict(frozen=True)

    formats: tuple[str, ...] = ()
    max_long_edge: int | None = None
    max_pixels: int | None = None
    max_bytes: int | None = None
    count_bytes_as: Literal["raw", "base64"] = "raw"
    max_images: int | None = None


class Price(BaseModel):
    """A model's public price in US dollars (``mmsdk.configure(prices=...)`` overrides it).

    Attributes:
        input_per_mtok: per million input tokens (text and images).
        cached_input_per_mtok: per million cached input tokens (else ``input_per_mtok``).
        output_per_mtok: per million output text tokens.
        image_output_per_mtok: per million output image tokens (image models).
        per_image: per generated image, for models priced by the image.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: float | None = Field(default=None, ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    output_per_mtok: float | None = Field(default=None, ge=0)
    image_output_per_mtok: float | None = Field(default=None, ge=0)
    per_image: float | None = Field(default=None, ge=0)


class ModelInfo(BaseModel):
    """Capability metadata for one provider model; the router filters on it.

    A plugin's ``describe(model)`` returns one without ``capabilities``: mmsdk
    fills them in from the model's class (its :class:`Generate` /
    :class:`Understand` / :class:`Classify` / :class:`Embed` mixins).

    Attributes:
        capabilities: what the model can do (set by mmsdk, from the model class).
        supports: first-class call parameters it honours, as :class:`Feature`
            members (plain strings are accepted and checked: an unknown one is
            a ``ValueError``). A set parameter missing here is a
            :class:`CapabilityError`.
        options: keys accepted in ``options={...}``; any other key is an
            :class:`InvalidInputError`.
        limits: image limits that ``prepare()`` applies.
        max_n: most images one generate call can return.
        local: whether every byte stays on this machine.
        cost_hint: relative cost for ``order="cheapest"`` (lower is cheaper).
        speed_hint: relative latency for ``order="fastest"`` (lower is faster).
        endpoints: the base URLs of a replica pool serving this model (two or
            more; ``()`` for a single server). Routing then chooses the replica
            for each attempt, hands it to the model as ``Request.endpoint``,
            keeps a circuit breaker per replica (``"NAME:MODEL@BASE_URL"``) and
            moves a call that fails transiently to another healthy replica.
        balance: how routing chooses among healthy replicas:
            ``"least_in_flight"`` (the less busy of two random replicas) or
            ``"round_robin"`` (the one chosen least recently).
        price: the model's public price, or ``None`` where it is unknown
            (local models cost 0 whatever this says).
    """

    model_config = ConfigDict(frozen=True)

    capabilities: frozenset[Capability] = frozenset()
    # Set, not frozenset: authors may write a set literal; it is stored as a frozenset.
    supports: Set[Feature] = frozenset()
    options: Set[str] = frozenset()
    limits: MediaLimits = MediaLimits()
    max_n: int = 1
    local: bool = False
    cost_hint: float = 1.0
    speed_hint: float = 1.0
    endpoints: tuple[str, ...] = ()
    balance: Literal["least_in_flight", "round_robin"] = "least_in_flight"
    price: Price | None = None

    @field_validator("supports", mode="before")
    @classmethod
    def _known_features(cls, value: Any) -> frozenset[Feature]:
        return features(value)


class Availability(BaseModel):
    """Whether a provider can run here, and if not, why and how to fix it."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    reason: str = ""
    fix: str = ""

    @classmethod
    def yes(cls) -> Availability:
        return cls(ok=True)

    @classmethod
    def no(cls, reason: str, fix: str) -> Availability:
        return cls(ok=False, reason=reason, fix=fix)


class Usage(BaseModel):
    """What a call consumed, where the provider reports it (else ``None``)."""

    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    images: int | None = None
    cost_usd: float | None = None


class Attempt(BaseModel):
    """One call made (retries and hedges included) or one provider skipped by routing.

    Attributes:
        provider: the provider string.
        outcome: ``"ok"``, ``"error"``, ``"skipped"`` (no call made), or
            ``"abandoned"`` (cancelled: a hedge that lost, a passed deadline,
            a caller that left).
        error: what went wrong, or ``None``.
        error_type: the mmsdk error class name (``"RateLimitError"``), or ``None``.
        status: the HTTP status, where there was one.
        retry_after: the server's ``Retry-After`` hint in seconds, if it gave one.
        endpoint: the base URL that served or failed it (pooled servers).
        started: seconds from the start of the call to the start of this attempt.
        waited: seconds slept before it (backoff or ``Retry-After``).
        seconds: how long the attempt took.
        verifier: made to cross-check the answer (``understand(..., verify_with=...)``),
            not to answer.
    """

    provider: str
    outcome: Literal["ok", "error", "skipped", "abandoned"]
    error: str | None = None
    error_type: str | None = None
    status: int | None = None
    retry_after: float | None = None
    endpoint: str | None = None
    started: float = 0.0
    waited: float = 0.0
    seconds: float = 0.0
    verifier: bool = False


class SentImage(BaseModel):
    """What ``prepare()`` actually sent for one input image."""

    source: str
    format: str | None
    width: int
    height: int
    bytes: int | None = None
    resized: bool = False


class Result(BaseModel):
    """Fields every result has. Routing fills ``provider``, ``attempts`` and ``elapsed``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    provider: str = ""
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
    attempts: list[Attempt] = Field(default_factory=list)
    elapsed: float = 0.0
    warnings: list[str] = Field(default_factory=list)
    sent: list[SentImage] = Field(default_factory=list)
    cached: bool = False


class GenerateResult(Result):
    """Images made by :func:`mmsdk.generate`."""

    images: list[Image.Image]
    revised_prompt: str | None = None
    seed: int | None = None
    scores: list[float] | None = None


class Verification(BaseModel):
    """A second provider's answer to the same question (``understand(..., verify_with=...)``).

    Attributes:
        provider: the verifier's provider string.
        data: its validated schema object (``None`` if it failed).
        agree: field names both answers share (strings compared after
            normalising, floats to 3 significant digits).
        disagree: field names whose values differ.
        error: why the verifier failed, if it did; the main answer stands.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    provider: str
    data: Any = None
    agree: list[str] = Field(default_factory=list)
    disagree: list[str] = Field(default_factory=list)
    error: str | None = None


class UnderstandResult(Result):
    """The answer of :func:`mmsdk.understand`. ``data`` holds the validated schema object."""

    text: str
    data: Any = None
    finish_reason: str | None = None
    verification: Verification | None = None


class ClassifyResult(Result):
    """Scores per label, best first in :attr:`ranked`."""

    scores: dict[str, float]

    @property
    def ranked(self) -> list[tuple[str, float]]:
        return sorted(self.scores.items(), key=lambda item: item[1], reverse=True)

    @property
    def top(self) -> tuple[str, float]:
        return self.ranked[0]


class EmbedResult(Result):
    """Unit-normalised vectors of shape ``(n, d)`` in input order."""

    image_vectors: Vectors | None = None
    text_vectors: Vectors | None = None

    @field_validator("image_vectors", "text_vectors")
    @classmethod
    def _numpy_arrays(cls, value: Any) -> Any:
        numpy = sys.modules.get("numpy")  # no array exists before numpy is imported
        if value is not None and (numpy is None or not isinstance(value, numpy.ndarray)):
            raise PydanticCustomError("is_instance_of", "Input should be an instance of ndarray",
                                      {"class": "ndarray"})
        return value
