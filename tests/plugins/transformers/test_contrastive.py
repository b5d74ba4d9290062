"""CLIP / SigLIP through mmsdk equal the raw transformers recipe on the same checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import mmsdk

LABELS = ["cat", "dog", "car"]


def _raw_logits(model: Any, processor: Any, images: list[Image.Image], prompts: list[str],
                padding: Any = True) -> torch.Tensor:
    """The seed example: processor(text, images, padding) → model(**inputs).logits_per_image."""
    inputs = processor(text=prompts, images=images, return_tensors="pt", padding=padding,
                       truncation=True)
    with torch.no_grad():
        return model(**inputs).logits_per_image


def _scores(result: Any) -> list[float]:
    return [result.scores[label] for label in LABELS]


@pytest.mark.parametrize("via", ["folder", "local:clip"], ids=["folder", "preset-hub-cache"])
def test_clip_classify_equals_the_seed_softmax(via: str, provider: Callable[[str], str],
                                                raw: Callable[[str], Any], hub_cache: Any,
                                                images: list[Image.Image]) -> None:
    model, processor = raw("clip")
    prompts = [f"a photo of a {label}." for label in LABELS]
    expected = _raw_logits(model, processor, images[:1], prompts).softmax(dim=1)[0].tolist()

    result = mmsdk.classify(images[0], LABELS,
                            provider=provider("clip") if via == "folder" else via)

    assert _scores(result) == pytest.approx(expected, abs=1e-6)
    assert sum(result.scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert result.top[0] == LABELS[int(np.argmax(expected))]
    assert result.provider.startswith("transformers:")


def test_batched_classification_equals_one_by_one(provider: Callable[[str], str],
                                                  images: list[Image.Image]) -> None:
    together = mmsdk.classify(images, LABELS, provider=provider("clip"))
    chunked = mmsdk.classify(images, LABELS, provider=provider("clip"),
                             options={"batch_size": 2})
    alone = [mmsdk.classify(image, LABELS, provider=provider("clip")) for image in images]

    assert len(together) == len(images)
    for batch, small, single in zip(together, chunked, alone, strict=True):
        assert _scores(batch) == pytest.approx(_scores(single), abs=1e-6)
        assert _scores(small) == pytest.approx(_scores(single), abs=1e-6)
    assert _scores(together[0]) != pytest.approx(_scores(together[1]), abs=1e-4)


def test_multi_label_scores_each_label_with_a_sigmoid(provider: Callable[[str], str],
                                                      raw: Callable[[str], Any],
                                                      images: list[Image.Image]) -> None:
    model, processor = raw("clip")
    prompts = [f"a photo of a {label}." for label in LABELS]
    expected = _raw_logits(model, processor, images, prompts).sigmoid()

    results = mmsdk.classify(images, LABELS, provider=provider("clip"), multi_label=True)

    for result, row in zip(results, expected.tolist(), strict=True):
        assert _scores(result) == pytest.approx(row, abs=1e-6)
    assert sum(results[0].scores.values()) != pytest.approx(1.0, abs=1e-3)


def test_template_changes_the_text_prompts(provider: Callable[[str], str],
                                          raw: Callable[[str], Any],
                                          images: list[Image.Image]) -> None:
    model, processor = raw("clip")
    template = "a blurry picture of {}, seen from far away"
    prompts = [template.replace("{}", label) for label in LABELS]
    expected = _raw_logits(model, processor, images[:1], prompts).softmax(dim=1)[0].tolist()

    templated = mmsdk.classify(images[0], LABELS, provider=provider("clip"), template=template)
    default = mmsdk.classify(images[0], LABELS, provider=provider("clip"))

    assert _scores(templated) == pytest.approx(expected, abs=1e-6)
    assert _scores(templated) != pytest.approx(_scores(default), abs=1e-4)


@pytest.mark.parametrize("via", ["folder", "local:siglip"], ids=["folder", "preset-hub-cache"])
@pytest.mark.parametrize("multi_label", [False, True], ids=["softmax", "multi-label-sigmoid"])
def test_siglip_scores(via: str, multi_label: bool, provider: Callable[[str], str],
                       raw: Callable[[str], Any], hub_cache: Any,
                       images: list[Image.Image]) -> None:
    model, processor = raw("siglip")
    prompts = [f"a photo of a {label}." for label in LABELS]
    # SigLIP's recipe pads every text to max_length, as it was trained.
    logits = _raw_logits(model, processor, images, prompts, padding="max_length")
    expected = logits.sigmoid() if multi_label else logits.softmax(dim=1)

    results = mmsdk.classify(images, LABELS, multi_label=multi_label,
                             provider=provider("siglip") if via == "folder" else via)

    for result, row in zip(results, expected.tolist(), strict=True):
        assert _scores(result) == pytest.approx(row, abs=1e-6)


@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_embeddings_equal_the_normalised_model_features(name: str,
                                                        provider: Callable[[str], str],
                                                        raw: Callable[[str], Any],
                                                        images: list[Image.Image]) -> None:
    model, processor = raw(name)
    texts = ["a cat", "a photo of a dog on a sofa"]
    padding = "max_length" if name == "siglip" else True
    with torch.no_grad():
        image_out = model.get_image_features(**processor(images=images, return_tensors="pt"))
        text_out = model.get_text_features(**processor(text=texts, return_tensors="pt",
                                                       padding=padding, truncation=True))
    expected_images = torch.nn.functional.normalize(image_out.pooler_output, dim=-1).numpy()
    expected_texts = torch.nn.functional.normalize(text_out.pooler_output, dim=-1).numpy()

    result = mmsdk.embed(images=images, texts=texts, provider=provider(name))

    assert result.image_vectors is not None and result.text_vectors is not None
    assert result.image_vectors.dtype == np.float32 and result.text_vectors.dtype == np.float32
    assert result.image_vectors.shape == expected_images.shape == (3, expected_images.shape[1])
    np.testing.assert_allclose(result.image_vectors, expected_images, atol=1e-6)
    np.testing.assert_allclose(result.text_vectors, expected_texts, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(result.image_vectors, axis=1), 1.0, atol=1e-6)


def test_image_and_text_vectors_share_one_space(provider: Callable[[str], str],
                                                raw: Callable[[str], Any],
                                                images: list[Image.Image]) -> None:
    """Cosine similarity times CLIP's logit scale gives back classify's softmax."""
    model, _ = raw("clip")
    prompts = [f"a photo of a {label}." for label in LABELS]
    vectors = mmsdk.embed(images=images, texts=prompts, provider=provider("clip"))
    classified = mmsdk.classify(images, LABELS, provider=provider("clip"))

    assert vectors.image_vectors is not None and vectors.text_vectors is not None
    logits = model.logit_scale.exp().item() * vectors.image_vectors @ vectors.text_vectors.T
    softmax = torch.tensor(logits).softmax(dim=1).numpy()
    for result, row in zip(classified, softmax, strict=True):
        assert _scores(result) == pytest.approx(row.tolist(), abs=1e-5)


def test_embed_texts_only_leaves_image_vectors_empty(provider: Callable[[str], str]) -> None:
    result = mmsdk.embed(texts="a cat", provider=provider("clip"))

    assert result.image_vectors is None
    assert result.text_vectors is not None and result.text_vectors.shape[0] == 1
