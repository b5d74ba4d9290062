"""What a provider model receives: validated options plus prepared media.

The public functions validate the caller's arguments into these models (a bad
value is an :class:`InvalidInputError`), load images once, and hand each
candidate provider a copy whose images went through that provider's ``prepare()``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from ._errors import CancelledError, InvalidInputError, ProviderTimeoutError
from ._prepare import PreparedImage
from ._video import VideoInput

__all__ = [
    "ClassifyRequest",
    "EmbedRequest",
    "GenerateRequest",
    "Request",
    "UnderstandRequest",
    "validate_request",
]

_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
# A str and nothing else: lax mode would turn b"..." into text silently.
Text = Annotated[str, Strict()]


def _a_number(value: Any) -> Any:
    """Refuse text and booleans where a number goes (lax mode takes ``"3"`` and ``True``);
    numpy numbers and whole floats still pass. A :data:`Number` is finite too."""
    if isinstance(value, (str, bytes, bool)):
        raise ValueError(f"expected a number, got {type(value).__name__} {value!r}")
    return value


Int = Annotated[int, BeforeValidator(_a_number)]
Number = Annotated[float, BeforeValidator(_a_number), AllowInfNan(False)]


class Request(BaseModel):
    """Fields every request has.

    Attributes:
        options: provider-specific extras; keys are checked against ``ModelInfo.options``.
        timeout: seconds this attempt may take (from the routing policy); pass it to the SDK.
        progress: show a progress bar for long local work (the CLI turns it on).
        deadline: when this attempt must end, in ``time.monotonic()`` seconds.
            Routing sets it when the attempt starts, so waiting for a busy
            local model and loading it count against ``timeout`` too.
        cancel: set by routing when nobody wants the answer any more (the
            async call was cancelled, a hedge lost the race, the deadline
            passed). Local plugins check :meth:`stop_reason` at every step.
        endpoint: the replica (one of ``ModelInfo.endpoints``) routing chose for
            this attempt; ``None`` when the model declares no pool, or is called
            directly: the plugin chooses.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    options: dict[str, Any] = Field(default_factory=dict)
    timeout: Number | None = Field(default=None, gt=0)
    progress: bool = False
    deadline: Number | None = Field(default=None, exclude=True, repr=False)
    cancel: threading.Event | None = Field(default=None, exclude=True, repr=False)
    endpoint: str | None = Field(default=None, exclude=True, repr=False)
    _started: bool = PrivateAttr(default=False)  # a local model's worker began this attempt

    first_class: ClassVar[dict[str, str]] = {}

    def time_left(self) -> float | None:
        """Seconds until :attr:`deadline` (negative once passed), or ``None`` when unbounded."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def stop_reason(self) -> Literal["cancelled", "timeout"] | None:
        """Why work for this attempt should stop now, or ``None`` to go on."""
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if self.deadline is not None and time.monotonic() > self.deadline:
            return "timeout"
        return None

    def raise_if_stopped(self, provider: str, doing: str = "working") -> None:
        """Raise the error for :meth:`stop_reason`, if there is one."""
        reason = self.stop_reason()
        if reason == "cancelled":
            raise CancelledError(f"{provider}: cancelled while {doing}.", provider=provider)
        if reason == "timeout":
            raise ProviderTimeoutError(
                f"{provider} ran past its {self.timeout}s timeout while {doing}; raise "
                "Policy(timeout=...) or send less work.", provider=provider)

    @contextmanager
    def holding(self, lock: Any, provider: str) -> Iterator[None]:
        """Hold *lock* (a busy local model) for this attempt, giving up at its deadline or cancel.

        A call queued behind a busy model fails fast with ``ProviderTimeoutError``
        when its timeout passes instead of waiting for the model.
        """
        try:
            while not lock.acquire(timeout=0.05):
                self.raise_if_stopped(provider, "waiting for the busy model")
        except ProviderTimeoutError as exc:
            exc.queued = True
            raise
        try:
            self.raise_if_stopped(provider, "waiting for the busy model")
            yield
        finally:
            lock.release()

    def requested(self) -> set[str]:
        """First-class parameters the caller set; each must be in ``ModelInfo.supports``."""
        return {feature for name, feature in self.first_class.items()
                if getattr(self, name) not in (None, False)}


class GenerateRequest(Request):
    """Text to image. ``None`` keeps the checkpoint's or API's own default."""

    prompt: Text = Field(min_length=1)
    negative_prompt: Text | None = None
    width: Int | None = Field(default=None, gt=0, le=16384)
    height: Int | None = Field(default=None, gt=0, le=16384)
    steps: Int | None = Field(default=None, gt=0, le=1000)
    guidance: Number | None = Field(default=None, ge=0, allow_inf_nan=False)
    seed: Int | None = Field(default=None, ge=0)
    n: Int = Field(default=1, ge=1, le=16)
    scheduler: Text | None = None
    image: PreparedImage | None = None
    strength: Number | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    mask: PreparedImage | None = None
    control_image: PreparedImage | None = None
    control_type: Text | None = None
    control_scale: Number | None = Field(default=None, ge=0, allow_inf_nan=False)
    reference_image: PreparedImage | None = None
    reference_scale: Number | None = Field(default=None, ge=0, allow_inf_nan=False)

    first_class: ClassVar[dict[str, str]] = {name: name for name in (
        "negative_prompt", "width", "height", "steps", "guidance", "seed", "scheduler", "image",
        "strength", "mask", "control_image", "control_type", "control_scale", "reference_image",
        "reference_scale")}

    @model_validator(mode="before")
    @classmethod
    def _split_size(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("size") is not None:
            data = dict(data)
            size = data.pop("size")
            match = _SIZE.match(str(size))
            if not match:
                raise ValueError(f"size must look like '1024x768', got {size!r}")
            width, height = int(match[1]), int(match[2])
            for key, value in (("width", width), ("height", height)):
                if data.get(key) not in (None, value):
                    raise ValueError(f"size={size!r} disagrees with {key}={data[key]}")
                data[key] = value
        elif isinstance(data, dict):
            data.pop("size", None)
        return data

    @property
    def size(self) -> str | None:
        """``"WxH"`` when both sides are set."""
        return f"{self.width}x{self.height}" if self.width and self.height else None

    def requested(self) -> set[str]:
        wanted = super().requested()
        return wanted | {"n"} if self.n > 1 else wanted


class UnderstandRequest(Request):
    """Images or video plus text, to text.

    A provider without native video gets the video as sampled frames: they are
    the last ``len(frame_times)`` of ``images``, ``frame_times`` holds when each
    shows (seconds from the start), and the prompt already says so. When they
    are more than the provider takes per request, routing sets
    ``frames_per_request`` and the core answers in chunks (the model object
    receives one request per chunk, never more images than it declared).
    """

    prompt: Text = Field(min_length=1)
    images: list[PreparedImage] = Field(default_factory=list)
    video: VideoInput | None = None
    frames: Int | None = Field(default=None, ge=1, le=256)
    fps: Number | None = Field(default=None, gt=0, le=60, allow_inf_nan=False)
    frame_times: list[float] = Field(default_factory=list, exclude=True, repr=False)
    frames_per_request: Int | None = Field(default=None, exclude=True, repr=False)
    system: Text | None = None
    max_tokens: Int | None = Field(default=None, gt=0)
    temperature: Number | None = Field(default=None, ge=0, le=2, allow_inf_nan=False)
    response_schema: type[BaseModel] | None = None
    stream: bool = False
    detail: Text | None = Field(default=None, pattern="^(low|high|auto)$")

    first_class: ClassVar[dict[str, str]] = {
        "video": "video", "system": "system", "max_tokens": "max_tokens",
        "temperature": "temperature", "response_schema": "schema", "stream": "stream",
        "detail": "detail"}


class ClassifyRequest(Request):
    """Images plus candidate labels, to scores (one result per image)."""

    images: list[PreparedImage] = Field(default_factory=list)
    labels: list[Text] = Field(min_length=1)
    multi_label: bool = False
    template: Text | None = None

    first_class: ClassVar[dict[str, str]] = {"multi_label": "multi_label", "template": "template"}

    @field_validator("labels", mode="before")
    @classmethod
    def _label_list(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ValueError(f"labels must be a list of strings, got {type(value).__name__}")

    @model_validator(mode="after")
    def _check(self) -> ClassifyRequest:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")
        if any(not label.strip() for label in self.labels):
            raise ValueError("labels must be non-empty strings")
        if self.template is not None and "{}" not in self.template:
            raise ValueError("template must contain '{}' where the label goes")
        return self

    def prompts(self) -> list[str]:
        """Each label put into the template (default ``"a photo of a {}."``)."""
        template = self.template or "a photo of a {}."
        return [template.replace("{}", label) for label in self.labels]


class EmbedRequest(Request):
    """Images and/or texts, to unit vectors in one space."""

    images: list[PreparedImage] = Field(default_factory=list)
    texts: list[Text] = Field(default_factory=list)

    @field_validator("texts", mode="before")
    @classmethod
    def _text_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ValueError(f"texts must be a string or a list of strings, got "
                         f"{type(value).__name__}")


def validate_request(cls: type[Request], **values: Any) -> Any:
    """Build *cls* from caller arguments, turning validation errors into one clear message."""
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {_explain(err)}"
            for err in exc.errors(include_url=False)
        )
        raise InvalidInputError(f"Invalid {cls.__name__.removesuffix('Request').lower()} "
                                f"arguments: {problems}.") from None


def _explain(error: Any) -> str:
    """One pydantic error as a sentence that says what was wrong with the value."""
    message = str(error["msg"]).removeprefix("Value error, ")
    kind, given = error["type"], error.get("input")
    if kind.endswith("_type"):
        message += f", got {type(given).__name__}"
    elif kind == "finite_number":
        message += f", got {given!r}"
    return message
