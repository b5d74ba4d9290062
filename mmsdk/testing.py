"""A deterministic in-process provider for tests and examples.

It is registered only when asked for and never offered as a default route::

    from mmsdk.testing import TestProvider

    with TestProvider("fake", failures=[mmsdk.RateLimitError("busy", retry_after=0)]) as fake:
        result = mmsdk.understand("hi", provider="fake:echo")
        assert fake.calls[0].prompt == "hi"

Every capability is supported. Outputs depend only on the inputs: generated
images are solid colours derived from the prompt and seed, answers echo the
prompt, scores and vectors come from hashes of the image pixels and labels.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from PIL import Image

from ._clock import pin
from ._errors import MMSDKError
from ._hookspecs import hookimpl
from ._model import MIXINS, Model, StreamEvent
from ._registry import ProviderSpec, Registry, get_registry
from ._requests import ClassifyRequest, EmbedRequest, GenerateRequest, Request, UnderstandRequest
from ._types import (
    Availability,
    Capability,
    ClassifyResult,
    EmbedResult,
    Feature,
    GenerateResult,
    MediaLimits,
    ModelInfo,
    UnderstandResult,
    Usage,
    features,
)

__all__ = ["ALL_FEATURES", "TestProvider", "pinned_today"]

ALL_FEATURES = frozenset(Feature)
"""Every :class:`~mmsdk.plugin.Feature`: what a :class:`TestProvider` honours by default."""
EMBED_DIM = 8


@contextmanager
def pinned_today(day: dt.date | None) -> Iterator[dt.date | None]:
    """Every model-lifecycle decision sees *day* as today until the block ends.

    Retired names, deprecation notes and end-of-life warnings read
    ``mmsdk.plugin.today()``; pin it so a test's verdict never moves with the
    calendar. Blocks nest; leaving one restores the date pinned before (or
    the real date). ``None`` unpins inside the block (``MMSDK_TODAY`` or the
    real date apply). Which models already warned is forgotten on entry and exit.

    Example:
        >>> import datetime, mmsdk.plugin
        >>> with pinned_today(datetime.date(2027, 1, 15)):
        ...     mmsdk.plugin.today().isoformat()
        '2027-01-15'
    """
    previous = pin(day)
    try:
        yield day
    finally:
        pin(previous)


def _digest(*parts: Any) -> bytes:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part if isinstance(part, bytes) else repr(part).encode())
    return hasher.digest()


def _pixels(image: Any) -> bytes:
    data: bytes = image.image.tobytes() if image.data is None else image.data
    return data


class TestProvider:
    """A scriptable provider named *name* (provider strings ``name:ANYTHING``).

    Args:
        name: the plugin name in provider strings.
        failures: what the next calls do, in order: an exception (instance or
            class) is raised, ``None`` succeeds. After the list, calls succeed.
        latency: seconds each call sleeps first (in a worker thread for the async
            twins); like a local plugin, it stops early with ``CancelledError`` or
            ``ProviderTimeoutError`` when its request is cancelled or its deadline passes.
        local: declared as local (kept by ``Policy(local_only=True)``).
        available: ``False`` makes it unavailable, with a reason and a fix.
        capabilities: what it offers (default: all four).
        supports: first-class parameters it honours (default: all).
        options: ``options={...}`` keys it accepts.
        limits: image limits ``prepare()`` applies for it.
        answer: fixed text for understand (default: an echo of the prompt),
            or a function of the request returning it (answers that depend on
            the prompt or images); also parsed as JSON when a schema is requested.
        cost_hint / speed_hint: for ``order="cheapest"`` / ``"fastest"``.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        name: str = "test",
        *,
        failures: Iterable[BaseException | type[BaseException] | None] = (),
        latency: float = 0.0,
        local: bool = True,
        available: bool = True,
        capabilities: Iterable[Capability] = tuple(Capability),
        supports: Iterable[Feature | str] = ALL_FEATURES,
        options: Iterable[str] = ("echo",),
        limits: MediaLimits | None = None,
        answer: str | Callable[[UnderstandRequest], str] | None = None,
        max_n: int = 4,
        cost_hint: float = 1.0,
        speed_hint: float = 1.0,
    ) -> None:
        self.name = name
        self.failures = list(failures)
        self.latency = latency
        self.available = available
        self.answer = answer
        self.calls: list[Request] = []
        self._lock = threading.Lock()
        self._registry: Registry | None = None
        self.capabilities = frozenset(Capability(c) for c in capabilities)
        self.info = ModelInfo(supports=features(supports), options=frozenset(options),
                              limits=limits or MediaLimits(), max_n=max_n, local=local,
                              cost_hint=cost_hint, speed_hint=speed_hint)
        # what it can do is what its model class implements: one class per set of capabilities
        mixins = tuple(MIXINS[c] for c in Capability if c in self.capabilities)
        self.model_class: type[_TestModel] = type(
            f"{name.title()}TestModel", (_TestModel, *mixins), {})

    # -- registration --------------------------------------------------------
    @property
    def plugin_name(self) -> str:
        return f"mmsdk.testing:{self.name}"

    def register(self, registry: Registry | None = None) -> TestProvider:
        """Add this provider to *registry* (default: the process registry)."""
        self._registry = registry or get_registry()
        self._registry.add_plugin(self, self.plugin_name)
        return self

    def unregister(self) -> None:
        if self._registry is not None:
            self._registry.remove_plugin(self.plugin_name)
            self._registry = None

    def __enter__(self) -> TestProvider:
        return self.register()

    def __exit__(self, *exc_info: object) -> None:
        self.unregister()

    @hookimpl
    def register_providers(self, register: Any) -> None:
        register(ProviderSpec(
            name=self.name,
            model_class=self.model_class,
            factory=lambda model, provider, info: self.model_class(self, provider, info),
            describe=lambda model: self.info,
            default_models=dict.fromkeys(self.capabilities, "default"),
            check=self._check,
            description="mmsdk.testing deterministic provider",
            offer_as_default=False,
        ))

    def _check(self, model: str) -> Availability:
        if self.available:
            return Availability.yes()
        return Availability.no(f"{self.name} was created with available=False",
                               "create the TestProvider with available=True")

    # -- scripting -------------------------------------------------------------
    def _begin(self, request: Request) -> None:
        with self._lock:
            self.calls.append(request)
            failure = self.failures.pop(0) if self.failures else None
        if self.latency:  # like a local plugin: stops early when cancelled or past its deadline
            left = request.time_left()
            pause = self.latency if left is None else max(0.0, min(self.latency, left + 0.01))
            if request.cancel is not None:
                request.cancel.wait(pause)
            else:
                time.sleep(pause)
            request.raise_if_stopped(self.name, "answering")
        if failure is None:
            return
        if isinstance(failure, type):
            if issubclass(failure, MMSDKError):
                raise failure(f"scripted {failure.__name__}", provider=self.name)
            raise failure(f"scripted {failure.__name__}")
        raise failure


class _TestModel(Model):
    """The behaviour of every capability; a provider's class adds the mixins it offers."""

    def __init__(self, owner: TestProvider, provider: str, info: ModelInfo) -> None:
        super().__init__(provider, info)
        self.owner = owner

    def generate(self, request: GenerateRequest) -> GenerateResult:
        self.owner._begin(request)
        size = (request.width or 64, request.height or 64)
        images = [Image.new("RGB", size, tuple(_digest(request.prompt, request.seed, i)[:3]))
                  for i in range(request.n)]
        return GenerateResult(images=images, seed=request.seed,
                              usage=Usage(images=len(images)))

    def _text(self, request: UnderstandRequest) -> str:
        if callable(self.owner.answer):
            return self.owner.answer(request)
        if self.owner.answer is not None:
            return self.owner.answer
        return f"echo: {request.prompt} ({len(request.images)} image(s))"

    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        self.owner._begin(request)
        text = self._text(request)
        return UnderstandResult(text=text, finish_reason="stop",
                                usage=Usage(input_tokens=len(request.prompt.split()),
                                            output_tokens=len(text.split()),
                                            images=len(request.images)))

    def understand_stream(self, request: UnderstandRequest) -> Iterator[StreamEvent]:
        self.owner._begin(request)
        text = self._text(request)
        words = text.split(" ")
        for index, word in enumerate(words):
            yield word if index == len(words) - 1 else word + " "
        yield UnderstandResult(text=text, finish_reason="stop",  # the same usage as understand()
                               usage=Usage(input_tokens=len(request.prompt.split()),
                                           output_tokens=len(text.split()),
                                           images=len(request.images)))

    def classify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        self.owner._begin(request)
        results = []
        for image in request.images:
            raw = np.array([_digest(_pixels(image), p)[0] / 32.0 for p in request.prompts()])
            if request.multi_label:
                scores = 1.0 / (1.0 + np.exp(-(raw - 4.0)))
            else:
                scores = np.exp(raw - raw.max())
                scores = scores / scores.sum()
            results.append(ClassifyResult(scores=dict(zip(request.labels, map(float, scores), strict=True))))
        return results

    def embed(self, request: EmbedRequest) -> EmbedResult:
        self.owner._begin(request)

        def vectors(items: list[bytes]) -> np.ndarray | None:
            if not items:
                return None
            raw = np.array([np.frombuffer(_digest(item)[:EMBED_DIM], np.uint8) for item in items],
                           dtype=np.float32) - 127.5
            normalised: np.ndarray = raw / np.linalg.norm(raw, axis=1, keepdims=True)
            return normalised

        return EmbedResult(image_vectors=vectors([_pixels(i) for i in request.images]),
                           text_vectors=vectors([t.encode() for t in request.texts]))

