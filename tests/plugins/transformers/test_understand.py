"""LLaVA / LLaVA-Next through mmsdk equal raw ``model.generate`` on the same checkpoint."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from mmsdk_transformers._prompting import schema_instruction
from PIL import Image
from pydantic import BaseModel
from samples import write_clip

import mmsdk


class Answer(BaseModel):
    label: str
    count: int


def _raw_generate(model: Any, processor: Any, text: str, images: list[Image.Image],
                  system: str | None = None, **kwargs: Any) -> tuple[str, int, int]:
    """The model card's recipe: chat template → processor → generate → decode the new tokens."""
    content: list[dict[str, Any]] = [{"type": "image"} for _ in images]
    content.append({"type": "text", "text": text})
    conversation = [{"role": "user", "content": content}]
    if system:
        conversation.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
    prompt = processor.apply_chat_template(conversation, add_generation_prompt=True)
    inputs = processor(images=images or None, text=prompt, return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**inputs, **kwargs)
    new = output[0, inputs["input_ids"].shape[1]:]
    return processor.decode(new, skip_special_tokens=True), inputs["input_ids"].shape[1], len(new)


@pytest.mark.parametrize(("name", "via"), [("llava", "folder"), ("llava_next", "folder"),
                                           ("llava_next", "local:llava"),
                                           ("llava", "local:llava-1.5")],
                         ids=["llava", "llava-next", "local:llava-hub-cache",
                              "local:llava-1.5-hub-cache"])
def test_greedy_answer_equals_raw_generate(name: str, via: str, provider: Callable[[str], str],
                                           raw: Callable[[str], Any], hub_cache: Any,
                                           images: list[Image.Image]) -> None:
    model, processor = raw(name)
    text, prompt_tokens, new_tokens = _raw_generate(model, processor, "What is in the image?",
                                                    images[:1], max_new_tokens=12, do_sample=False)

    result = mmsdk.understand("What is in the image?", images=images[:1], max_tokens=12,
                              provider=provider(name) if via == "folder" else via)

    assert result.text == text
    assert result.usage.input_tokens == prompt_tokens
    assert result.usage.output_tokens == new_tokens
    assert result.finish_reason == ("length" if new_tokens == 12 else "stop")


@pytest.mark.parametrize("name", ["llava", "llava_next"])
def test_several_images_go_into_one_prompt(name: str, provider: Callable[[str], str],
                                           raw: Callable[[str], Any],
                                           images: list[Image.Image]) -> None:
    model, processor = raw(name)
    text, prompt_tokens, _ = _raw_generate(model, processor, "Compare them.", images[:2],
                                           max_new_tokens=8, do_sample=False)

    result = mmsdk.understand("Compare them.", images=images[:2], max_tokens=8,
                              provider=provider(name))

    assert result.text == text
    assert result.usage.input_tokens == prompt_tokens
    assert result.usage.images == 2


def test_text_only_question(provider: Callable[[str], str], raw: Callable[[str], Any]) -> None:
    model, processor = raw("llava")
    text, _, _ = _raw_generate(model, processor, "Say hi.", [], max_new_tokens=6, do_sample=False)

    assert mmsdk.understand("Say hi.", max_tokens=6, provider=provider("llava")).text == text


def test_system_prompt_is_a_system_turn(provider: Callable[[str], str],
                                       raw: Callable[[str], Any],
                                       images: list[Image.Image]) -> None:
    model, processor = raw("llava")
    text, prompt_tokens, _ = _raw_generate(model, processor, "Describe.", images[:1],
                                           system="Answer in French.", max_new_tokens=8,
                                           do_sample=False)

    result = mmsdk.understand("Describe.", images=images[:1], system="Answer in French.",
                              max_tokens=8, provider=provider("llava"))

    assert (result.text, result.usage.input_tokens) == (text, prompt_tokens)
    assert result.warnings == []


def test_system_prompt_opens_the_user_turn_when_the_template_has_no_system_role(
        provider: Callable[[str], str], raw: Callable[[str], Any],
        images: list[Image.Image]) -> None:
    model, processor = raw("llava_next")
    text, prompt_tokens, _ = _raw_generate(model, processor, "Answer in French.\n\nDescribe.",
                                           images[:1], max_new_tokens=8, do_sample=False)

    result = mmsdk.understand("Describe.", images=images[:1], system="Answer in French.",
                              max_tokens=8, provider=provider("llava_next"))

    assert (result.text, result.usage.input_tokens) == (text, prompt_tokens)
    assert any("system role" in warning for warning in result.warnings)


def test_temperature_samples_and_a_seed_makes_it_repeatable(provider: Callable[[str], str],
                                                           raw: Callable[[str], Any],
                                                           images: list[Image.Image]) -> None:
    model, processor = raw("llava")
    torch.manual_seed(7)
    text, _, _ = _raw_generate(model, processor, "Describe.", images[:1], max_new_tokens=16,
                               do_sample=True, temperature=1.5)
    greedy, _, _ = _raw_generate(model, processor, "Describe.", images[:1], max_new_tokens=16,
                                 do_sample=False)

    def sample(seed: int) -> str:
        return mmsdk.understand("Describe.", images=images[:1], temperature=1.5, max_tokens=16,
                                options={"seed": seed}, provider=provider("llava")).text

    assert sample(7) == sample(7) == text
    assert text != greedy
    assert mmsdk.understand("Describe.", images=images[:1], temperature=0, max_tokens=16,
                            provider=provider("llava")).text == greedy


def test_stream_chunks_join_to_the_answer(provider: Callable[[str], str],
                                          images: list[Image.Image]) -> None:
    whole = mmsdk.understand("Describe.", images=images[:1], max_tokens=48,
                             provider=provider("llava"))
    stream = mmsdk.understand("Describe.", images=images[:1], max_tokens=48, stream=True,
                              provider=provider("llava"))
    chunks = list(stream)

    assert "".join(chunks) == whole.text == stream.result.text
    assert stream.result.usage == whole.usage


def test_stream_yields_text_as_it_is_generated(provider: Callable[[str], str], tiny: ModuleType,
                                               images: list[Image.Image]) -> None:
    stream = mmsdk.understand("Describe.", images=images[:1], stream=True,
                              provider=provider("scripted_llava"))
    chunks = list(stream)

    assert len(chunks) >= 3  # one per word boundary of the scripted answer
    assert "".join(chunks) == tiny.ANSWER_JSON == stream.result.text
    assert stream.result.finish_reason == "stop"
    assert stream.result.usage.output_tokens == len(tiny.ANSWER_PIECES) + 1  # + </s>


async def test_async_stream_and_answer(provider: Callable[[str], str], tiny: ModuleType,
                                       images: list[Image.Image]) -> None:
    answer = await mmsdk.aunderstand("Describe.", images=images[:1],
                                     provider=provider("scripted_llava"))
    stream = await mmsdk.aunderstand("Describe.", images=images[:1], stream=True,
                                     provider=provider("scripted_llava"))
    chunks = [chunk async for chunk in stream]

    assert answer.text == "".join(chunks) == tiny.ANSWER_JSON


def test_closing_a_stream_early_stops_generation(provider: Callable[[str], str],
                                                 images: list[Image.Image]) -> None:
    """The worker thread ends at the next token, so the model is free again at once."""
    stream = mmsdk.understand("Describe.", images=images[:1], max_tokens=400, stream=True,
                              provider=provider("endless_llava"))
    assert next(stream) and next(stream)  # generation is under way (400 tokens, no end token)
    workers = [t for t in threading.enumerate() if t.name == "mmsdk-transformers-generate"]
    assert workers

    stream.close()

    for worker in workers:
        worker.join(timeout=10)
    assert not any(worker.is_alive() for worker in workers)
    answer = mmsdk.understand("Describe.", max_tokens=3, provider=provider("endless_llava"))
    assert answer.finish_reason == "length"


def test_schema_answer_is_validated_into_data(provider: Callable[[str], str], tiny: ModuleType,
                                              raw: Callable[[str], Any],
                                              images: list[Image.Image]) -> None:
    model, processor = raw("scripted_llava")
    _, prompt_tokens, _ = _raw_generate(model, processor,
                                        "What is it?" + schema_instruction(Answer), images[:1],
                                        max_new_tokens=4, do_sample=False)

    result = mmsdk.understand("What is it?", images=images[:1], schema=Answer,
                              provider=provider("scripted_llava"))

    assert result.data == Answer(label="cat", count=2)
    assert result.text == tiny.ANSWER_JSON
    assert result.usage.input_tokens == prompt_tokens  # the schema went into the prompt


def test_schema_instruction_carries_the_json_schema() -> None:
    instruction = schema_instruction(Answer)

    assert '"required":["label","count"]' in instruction
    assert "JSON" in instruction


def test_answer_that_does_not_validate_raises(provider: Callable[[str], str],
                                              images: list[Image.Image]) -> None:
    with pytest.raises(mmsdk.OutputValidationError) as caught:
        mmsdk.understand("What is it?", images=images[:1], schema=Answer, max_tokens=6,
                         provider=provider("llava"))

    assert caught.value.text  # the raw answer is kept for inspection


def test_options_are_validated(provider: Callable[[str], str]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="seed"):
        mmsdk.understand("Hi", options={"seed": "x"}, provider=provider("llava"))


@pytest.fixture
def video_path(tmp_path: Path) -> Path:
    pytest.importorskip("av")
    return write_clip(tmp_path / "clip.mp4", frames=12)


def test_video_arrives_as_sampled_frames(video_path: Path, provider: Callable[[str], str],
                                         raw: Callable[[str], Any]) -> None:
    model, processor = raw("llava")
    sent_prompt = ("The 2 images are frames of the video clip.mp4 (1.2 s long), in order: "
                   "Frame 1 at 0.3 s, Frame 2 at 0.9 s.\n\nWhat changed?")  # times included
    _, two_images, _ = _raw_generate(model, processor, sent_prompt,
                                     [Image.new("RGB", (32, 32))] * 2, max_new_tokens=1)

    result = mmsdk.understand("What changed?", video=video_path, frames=2, max_tokens=4,
                              provider=provider("llava"))

    assert result.usage.images == 2 and len(result.sent) == 2
    assert result.usage.input_tokens == two_images
