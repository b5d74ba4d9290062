"""mmsdk.score and rerank_with on the tiny CLIP / SigLIP checkpoints.

The reference is the raw model: ``100 * max(cos(image_features, text_features), 0)``
from ``get_image_features`` / ``get_text_features``, as torchmetrics' ``CLIPScore``
defines it (and, where torchmetrics is installed, torchmetrics itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import mmsdk
from mmsdk.plugin import Capability
from mmsdk.testing import TestProvider

PROMPTS = ["a cat", "a photo of a dog on a sofa", "a watercolor of a red fox " * 12]  # last: >77


def reference(name: str, raw: Callable[[str], Any], images: list[Image.Image],
              prompt: str) -> list[float]:
    """The CLIP score straight from transformers: no mmsdk code involved."""
    model, processor = raw(name)
    padding = "max_length" if name == "siglip" else True
    with torch.no_grad():
        image_out = model.get_image_features(**processor(images=images, return_tensors="pt"))
        text_out = model.get_text_features(**processor(
            text=[prompt], return_tensors="pt", padding=padding, truncation=True,
            max_length=model.config.text_config.max_position_embeddings))
    image_features = getattr(image_out, "pooler_output", image_out)
    text_features = getattr(text_out, "pooler_output", text_out)
    cosine = torch.nn.functional.cosine_similarity(image_features, text_features, dim=-1)
    return (100 * cosine.clamp(min=0)).tolist()


@pytest.mark.parametrize("name", ["clip", "siglip"])
@pytest.mark.parametrize("prompt", PROMPTS, ids=["short", "longer", "truncated"])
def test_score_equals_the_raw_transformers_computation(name: str, prompt: str,
                                                       provider: Callable[[str], str],
                                                       raw: Callable[[str], Any],
                                                       images: list[Image.Image]) -> None:
    expected = reference(name, raw, images, prompt)

    scores = mmsdk.score(images, prompt, provider=provider(name))

    assert scores == pytest.approx(expected, abs=1e-4)
    assert all(0.0 <= s <= 100.0 for s in scores)


def test_tiny_clip_gives_both_clipped_and_positive_scores(provider: Callable[[str], str],
                                                          raw: Callable[[str], Any],
                                                          images: list[Image.Image]) -> None:
    """The random tiny CLIP has negative cosines too: the clipping is exercised, not assumed."""
    texts = ["a cat", "a dog", "a red car", "a blue sky", "a tree", "a house"]
    everything = [s for text in texts for s in mmsdk.score(images, text, provider=provider("clip"))]
    raw_cosines = [c / 100 for text in texts for c in reference("clip", raw, images, text)]

    assert any(s == 0.0 for s in everything) and any(s > 0.0 for s in everything)
    assert len(everything) == len(raw_cosines) == 3 * len(texts)


def test_local_clip_preset_scores_through_the_hub_cache(hub_cache: Any,
                                                        provider: Callable[[str], str],
                                                        images: list[Image.Image]) -> None:
    assert mmsdk.score(images, "a cat") == pytest.approx(
        mmsdk.score(images, "a cat", provider=provider("clip")), abs=1e-6)


class _TensorFeatures:
    """The CLIP model as torchmetrics 1.9 expects it: ``get_*_features`` return tensors
    (transformers 4 did; 5 returns an output whose ``pooler_output`` is that tensor)."""

    def __init__(self, model: Any) -> None:
        self.model, self.config = model, model.config

    def to(self, device: Any) -> _TensorFeatures:
        return self

    def get_image_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return getattr(output := self.model.get_image_features(*args, **kwargs),
                       "pooler_output", output)

    def get_text_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return getattr(output := self.model.get_text_features(*args, **kwargs),
                       "pooler_output", output)


def test_score_matches_torchmetrics_clip_score(checkpoints: dict[str, Any],
                                               provider: Callable[[str], str],
                                               raw: Callable[[str], Any],
                                               images: list[Image.Image]) -> None:
    clip_score = pytest.importorskip("torchmetrics.functional.multimodal").clip_score
    model, processor = raw("clip")

    def tiny() -> tuple[Any, Any]:
        return _TensorFeatures(model), processor

    for prompt in PROMPTS[:2]:
        expected = []
        for image in images:
            pixels = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)
            with torch.no_grad():
                expected.append(float(clip_score(pixels, prompt, model_name_or_path=tiny)))
        assert mmsdk.score(images, prompt, provider=provider("clip")) == pytest.approx(
            expected, abs=1e-4)


def test_rerank_with_tiny_clip_orders_testing_generator_images(provider: Callable[[str], str]
                                                               ) -> None:
    prompt = "a watercolor of a red fox"
    with TestProvider("painter", capabilities=[Capability.GENERATE]):
        for seed in range(50):  # a seed whose images the tiny CLIP does not already rank
            plain = mmsdk.generate(prompt, provider="painter:x", n=4, seed=seed)
            scores = mmsdk.score(plain.images, prompt, provider=provider("clip"))
            order = sorted(range(4), key=lambda i: -scores[i])
            if order != list(range(4)):
                break
        assert order != list(range(4))  # the order has to change for this to prove anything
        ranked = mmsdk.generate(prompt, provider="painter:x", n=4, seed=seed,
                                rerank_with=provider("clip"))

    assert ranked.scores == pytest.approx([scores[i] for i in order], abs=1e-6)
    assert [image.tobytes() for image in ranked.images] == \
        [plain.images[i].tobytes() for i in order]
    assert [a.provider for a in ranked.attempts] == ["painter:x", provider("clip")]
