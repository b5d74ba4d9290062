"""mmsdk-palette: colour-name classification, colour histograms and colour descriptions.

An example third-party plugin, written as ``docs/plugins.md`` says: one model
class whose mixins are its capabilities, one :class:`ProviderSpec`, one alias
declared in ``pyproject.toml``. It imports only ``mmsdk.plugin``, numpy and PIL.

Models: ``palette:basic`` describes colours as hex codes, ``palette:named`` by
the nearest CSS colour name; ``colours`` is an alias of ``palette:named``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from PIL import ImageColor

from mmsdk.plugin import (
    Capability,
    Classify,
    ClassifyRequest,
    ClassifyResult,
    Embed,
    EmbedRequest,
    EmbedResult,
    Feature,
    InvalidInputError,
    ModelInfo,
    PreparedImage,
    ProviderSpec,
    StreamEvent,
    Understand,
    UnderstandRequest,
    UnderstandResult,
    Usage,
    hookimpl,
)

__all__ = ["MODELS", "PaletteModel", "register_aliases", "register_providers"]

MODELS = ("basic", "named")
"""What ``palette:MODEL`` may name; the first is what bare ``palette`` means."""
INFO = ModelInfo(supports={Feature.MULTI_LABEL, Feature.STREAM}, local=True, cost_hint=0.0)
BINS = 4  # histogram bins per channel: 64-dimensional vectors


def _mean_colour(image: PreparedImage) -> np.ndarray:
    pixels = np.asarray(image.image.convert("RGB"), dtype=np.float64)
    mean: np.ndarray = pixels.reshape(-1, 3).mean(axis=0)
    return mean


def _label_colour(label: str) -> np.ndarray:
    try:
        return np.array(ImageColor.getrgb(label)[:3], dtype=np.float64)
    except ValueError:
        raise InvalidInputError(f"palette: {label!r} is not a colour name PIL knows "
                                "(try 'red', 'navy', '#ff8800').") from None


def _nearest_name(colour: np.ndarray) -> str:
    names = list(ImageColor.colormap)
    targets = np.stack([_label_colour(name) for name in names])
    return names[int(np.argmin(np.linalg.norm(targets - colour, axis=1)))]


class PaletteModel(Classify, Embed, Understand):
    """Colour arithmetic behind three capabilities: the mixins are the declaration.

    mmsdk builds it as ``PaletteModel(provider, info)``; ``self.model_name`` is
    ``"basic"`` or ``"named"``.
    """

    def classify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        targets = np.stack([_label_colour(label) for label in request.labels])
        results = []
        for image in request.images:
            distance = np.linalg.norm(targets - _mean_colour(image), axis=1) / 441.7
            if request.multi_label:
                scores = 1.0 - distance
            else:
                weights = np.exp(-distance * 10)
                scores = weights / weights.sum()
            results.append(ClassifyResult(
                model=self.model_name,
                scores=dict(zip(request.labels, map(float, scores), strict=True))))
        return results

    def embed(self, request: EmbedRequest) -> EmbedResult:
        if request.texts:
            raise InvalidInputError("palette embeds images only; drop texts=.")
        vectors = []
        for image in request.images:
            pixels = np.asarray(image.image.convert("RGB")).reshape(-1, 3) // (256 // BINS)
            codes = pixels[:, 0] * BINS * BINS + pixels[:, 1] * BINS + pixels[:, 2]
            histogram = np.bincount(codes, minlength=BINS ** 3).astype(np.float32)
            vectors.append(histogram / np.linalg.norm(histogram))
        return EmbedResult(model=self.model_name, image_vectors=np.stack(vectors))

    # understand: one part per image. The sync call and the stream share _parts; the
    # async call is native (no worker thread: the arithmetic is quick), and the async
    # stream keeps mmsdk's default, which pulls understand_stream in a thread.
    def _parts(self, request: UnderstandRequest) -> Iterator[str]:
        if not request.images:
            raise InvalidInputError("palette describes images; pass images=.")
        for index, image in enumerate(request.images):
            mean = _mean_colour(image)
            if self.model_name == "named":
                colour = _nearest_name(mean)
            else:
                red, green, blue = (int(v) for v in mean)
                colour = f"#{red:02x}{green:02x}{blue:02x}"
            yield (f"{'; ' if index else ''}image {index + 1}: {image.image.width}x"
                   f"{image.image.height}, mean colour {colour}")

    def _result(self, text: str, request: UnderstandRequest) -> UnderstandResult:
        return UnderstandResult(model=self.model_name, text=text, finish_reason="stop",
                                usage=Usage(images=len(request.images),
                                            output_tokens=len(text.split())))

    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        return self._result("".join(self._parts(request)), request)

    def understand_stream(self, request: UnderstandRequest) -> Iterator[StreamEvent]:
        """Yield each image's description as it is ready, then the whole result."""
        parts = []
        for part in self._parts(request):
            request.raise_if_stopped(self.provider, "describing")  # a reader that left
            parts.append(part)
            yield part
        yield self._result("".join(parts), request)

    async def aunderstand(self, request: UnderstandRequest) -> UnderstandResult:
        return self.understand(request)


def _describe(model: str) -> ModelInfo:
    if model not in MODELS:
        raise InvalidInputError(f"palette has no model {model!r}; it has {', '.join(MODELS)}.")
    return INFO


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(ProviderSpec(
        name="palette",
        model_class=PaletteModel,
        describe=_describe,
        default_models=dict.fromkeys((Capability.CLASSIFY, Capability.EMBED,
                                      Capability.UNDERSTAND), MODELS[0]),
        list_models=lambda: MODELS,
        description="example third-party plugin: colour names and histograms",
        offer_as_default=False,  # third-party providers never join provider=None anyway
    ))


@hookimpl
def register_aliases(register: Callable[[str, str], None]) -> None:
    # declared in pyproject.toml ([project.entry-points."mmsdk.aliases"]) too, so that
    # mmsdk knows "colours" belongs to this plugin without importing any plugin
    register("colours", "palette:named")
