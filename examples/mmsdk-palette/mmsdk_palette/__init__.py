"""mmsdk-palette: colour-name classification, colour histograms and colour descriptions.

Registered through the ``mmsdk`` entry-point group; imports only ``mmsdk.plugin``.
"""

from __future__ import annotations

from collections.abc import Callable

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
    InvalidInputError,
    ModelInfo,
    PreparedImage,
    ProviderSpec,
    Understand,
    UnderstandRequest,
    UnderstandResult,
    hookimpl,
)

INFO = ModelInfo(
    capabilities=frozenset({Capability.CLASSIFY, Capability.EMBED, Capability.UNDERSTAND}),
    supports=frozenset({"multi_label"}),
    local=True,
)
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


class PaletteModel(Classify, Embed, Understand):
    """Colour arithmetic behind the three capabilities."""

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
                model="basic", scores=dict(zip(request.labels, map(float, scores), strict=True))))
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
        return EmbedResult(model="basic", image_vectors=np.stack(vectors))

    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        if not request.images:
            raise InvalidInputError("palette describes images; pass images=.")
        parts = []
        for index, image in enumerate(request.images):
            red, green, blue = (int(v) for v in _mean_colour(image))
            parts.append(f"image {index + 1}: {image.image.width}x{image.image.height}, "
                         f"mean colour #{red:02x}{green:02x}{blue:02x}")
        return UnderstandResult(model="basic", text="; ".join(parts))


def _factory(model: str) -> PaletteModel:
    return PaletteModel(f"palette:{model}", INFO)


def _describe(model: str) -> ModelInfo:
    return INFO


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(ProviderSpec(
        name="palette",
        factory=_factory,
        describe=_describe,
        default_models={c: "basic" for c in INFO.capabilities},
        description="example third-party plugin: colour names and histograms",
        offer_as_default=False,
    ))
