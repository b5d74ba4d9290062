"""Inputs the model cannot take are caller mistakes (InvalidInputError), found before generating.

Without these checks they surface from transformers as a ValueError mapped to
``ProviderError`` (routing then falls back to the next provider as if this one
had failed) or, for an answer longer than the context, as silent garbage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from PIL import Image

import mmsdk
from mmsdk._registry import get_registry

CONTEXT = 512  # the tiny LLaVAs' max_position_embeddings


def _model(provider: str) -> Any:
    registry = get_registry()
    return registry.model(registry.resolve(provider))


@pytest.fixture
def forwards(provider: Callable[[str], str]) -> Iterator[list[int]]:
    """One entry per forward pass of the tiny LLaVA."""
    calls: list[int] = []
    handle = _model(provider("llava")).loaded({}).model.register_forward_hook(
        lambda *_: calls.append(1))
    yield calls
    handle.remove()


def test_max_tokens_beyond_the_context_is_invalid_input(provider: Callable[[str], str],
                                                        forwards: list[int]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="context") as caught:
        mmsdk.understand("Describe.", max_tokens=CONTEXT, provider=provider("llava"))

    assert "max_tokens=" in caught.value.message  # says how many fit
    assert forwards == []  # caught before generating


def test_max_tokens_that_fit_the_context_run(provider: Callable[[str], str],
                                            forwards: list[int]) -> None:
    prompt_tokens = mmsdk.understand("Describe.", max_tokens=1,
                                     provider=provider("llava")).usage.input_tokens
    room = CONTEXT - prompt_tokens

    answer = mmsdk.understand("Describe.", max_tokens=room, temperature=1.5,
                              options={"seed": 3}, provider=provider("llava"))

    assert answer.usage.input_tokens + answer.usage.output_tokens <= CONTEXT


def test_the_default_max_tokens_is_capped_by_the_context(provider: Callable[[str], str]) -> None:
    """A prompt that leaves less room than the default 256 still runs, up to the context."""
    prompt = "word " * 60  # ~300 tokens with this byte-level tokenizer
    answer = mmsdk.understand(prompt, provider=provider("endless_llava"))

    assert answer.usage.input_tokens > CONTEXT - 256
    assert answer.usage.input_tokens + answer.usage.output_tokens == CONTEXT
    assert answer.finish_reason == "length"


def test_a_prompt_longer_than_the_context_is_invalid_input(
        provider: Callable[[str], str]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="context"):
        mmsdk.understand("word " * 1000, provider=provider("llava"))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"temperature": 1.0, "options": {"top_p": 5.0}}, "top_p"),
    ({"temperature": 1.0, "options": {"top_p": 0}}, "top_p"),
    ({"options": {"repetition_penalty": 0}}, "repetition_penalty"),
    ({"options": {"repetition_penalty": float("nan")}}, "repetition_penalty"),
    ({"options": {"seed": 2**70}}, "seed"),
], ids=["top_p-above-1", "top_p-zero", "penalty-zero", "penalty-nan", "seed-too-big"])
def test_generation_settings_out_of_range_are_invalid_input(
        kwargs: dict[str, Any], match: str, provider: Callable[[str], str],
        forwards: list[int]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=match):
        mmsdk.understand("Hi", max_tokens=2, provider=provider("llava"), **kwargs)
    assert forwards == []


def test_an_image_token_typed_into_the_prompt_is_invalid_input(
        provider: Callable[[str], str], images: list[Image.Image]) -> None:
    """The processor refuses it (a ValueError): a caller mistake, no fallback."""
    with pytest.raises(mmsdk.InvalidInputError, match="image") as caught:
        mmsdk.understand("What is <image> here?", images=images[:1], max_tokens=2,
                         provider=[provider("llava"), provider("llava_next")])
    assert len(caught.value.attempts) == 1  # the second provider was not tried


@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_long_labels_are_truncated_to_the_text_positions(name: str,
                                                         provider: Callable[[str], str],
                                                         raw: Callable[[str], Any],
                                                         images: list[Image.Image]) -> None:
    model, processor = raw(name)
    positions = model.config.text_config.max_position_embeddings
    labels = ["cat " * 200, "dog"]
    padding = "max_length" if name == "siglip" else True
    inputs = processor(text=[f"a photo of a {label}." for label in labels], images=images[:1],
                       return_tensors="pt", padding=padding, truncation=True,
                       max_length=positions)
    with torch.no_grad():
        logits = model(**inputs).logits_per_image[0]
    expected = (logits.sigmoid() if name == "siglip" else logits.softmax(dim=0)).tolist()

    result = mmsdk.classify(images[0], labels, provider=provider(name),
                            multi_label=name == "siglip")

    assert [result.scores[label] for label in labels] == pytest.approx(expected, abs=1e-6)
