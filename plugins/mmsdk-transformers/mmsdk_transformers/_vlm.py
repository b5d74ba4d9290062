"""Vision-language models (LLaVA 1.5, LLaVA-Next, Qwen2-VL, SmolVLM, ...): Understand.

The model card's recipe, whatever the architecture: build chat messages
(images, then the text; a system turn when given), render them with the
processor's chat template (``add_generation_prompt=True``), run the processor
on that text and the images, and ``generate``. Temperature ``None`` or 0 is
greedy decoding; otherwise sampling at that temperature, seeded by
``options={"seed": N}``. Streaming runs ``generate`` in a worker thread that
feeds a ``TextIteratorStreamer``.

``request.timeout`` bounds generation (not loading): a stopping criterion
ends it at the deadline and the call raises :class:`ProviderTimeoutError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from jinja2 import TemplateError
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from mmsdk.plugin import (
    ProviderError,
    ProviderTimeoutError,
    StreamEvent,
    Understand,
    UnderstandRequest,
    UnderstandResult,
    Usage,
)

from ._base import TransformersModel
from ._errors import mapped
from ._loading import Loaded
from ._prompting import generation_kwargs, messages, seed_of, user_text

__all__ = ["VisionLanguageModel"]


class _Stop(StoppingCriteria):
    """Ends generation when the caller goes away (``cancel``) or the deadline passes."""

    def __init__(self, timeout: float | None) -> None:
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        self.cancel = threading.Event()
        self.timed_out = False

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        stop = self.cancel.is_set()
        if not stop and self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = stop = True
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


@dataclass
class _Turn:
    """One prepared generation: the processor's inputs and what to report."""

    inputs: Any
    kwargs: dict[str, Any]
    seed: int | None
    stop: _Stop
    warnings: list[str] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:
        return int(self.inputs["input_ids"].shape[1])


def _tokenizer(loaded: Loaded) -> Any:
    return getattr(loaded.processor, "tokenizer", loaded.processor)


def _has_template(processor: Any) -> bool:
    return bool(getattr(processor, "chat_template", None)
                or getattr(getattr(processor, "tokenizer", None), "chat_template", None))


def _eos_ids(loaded: Loaded) -> set[int]:
    eos = getattr(loaded.model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = getattr(_tokenizer(loaded), "eos_token_id", None)
    if eos is None:
        return set()
    return {int(eos)} if isinstance(eos, int) else {int(e) for e in eos}


class VisionLanguageModel(TransformersModel, Understand):
    """An image-text-to-text checkpoint: ``understand`` and ``understand_stream``."""

    task = "vlm"

    # -- preparing -------------------------------------------------------------
    def _render(self, loaded: Loaded, request: UnderstandRequest) -> tuple[str, list[str]]:
        """The prompt text, through the chat template (plus warnings about how)."""
        processor = loaded.processor
        if not _has_template(processor):
            token = getattr(processor, "image_token", None)
            if request.images and not token:
                raise ProviderError(f"{self.provider} has no chat template and no image token; "
                                    "cannot place the images in a prompt.", provider=self.provider)
            images = f"{token}\n" * len(request.images)
            text = user_text(request, system_inline=True)
            return (f"USER: {images}{text} ASSISTANT:",
                    [f"{self.provider} has no chat template; used LLaVA's 'USER: ... ASSISTANT:'"])
        try:
            return processor.apply_chat_template(messages(request), add_generation_prompt=True,
                                                 tokenize=False), []
        except TemplateError:
            if not request.system:
                raise
        # Templates such as Mistral's reject a system turn: put its text first in the user turn.
        text = processor.apply_chat_template(messages(request, system_inline=True),
                                             add_generation_prompt=True, tokenize=False)
        return text, [f"{self.provider}'s chat template has no system role; the system text "
                      "opens the user turn instead"]

    def _prepare(self, loaded: Loaded, request: UnderstandRequest) -> _Turn:
        text, warnings = self._render(loaded, request)
        images = [prepared.image for prepared in request.images]
        # One conversation: a batch of one text, and its images as one nested list.
        inputs = loaded.processor(text=[text], images=[images] if images else None,
                                  return_tensors="pt")
        inputs = inputs.to(loaded.device, loaded.dtype)
        return _Turn(inputs, generation_kwargs(request), seed_of(request.options),
                     _Stop(request.timeout), warnings)

    # -- running ---------------------------------------------------------------
    @staticmethod
    def _generate(loaded: Loaded, turn: _Turn, streamer: Any = None) -> torch.Tensor:
        with torch.inference_mode():
            if turn.seed is not None:
                torch.manual_seed(turn.seed)
            # The criterion costs a little per token: only when there is a deadline or a
            # stream whose reader may leave early.
            stop = turn.stop.deadline is not None or streamer is not None
            criteria = StoppingCriteriaList([turn.stop] if stop else [])
            return loaded.model.generate(**turn.inputs, **turn.kwargs, streamer=streamer,  # type: ignore[no-any-return]
                                         stopping_criteria=criteria)

    def _result(self, loaded: Loaded, turn: _Turn, output: torch.Tensor,
                request: UnderstandRequest) -> UnderstandResult:
        if turn.stop.timed_out:
            raise ProviderTimeoutError(
                f"{self.provider} did not finish generating within {turn.stop.timeout}s; raise "
                "Policy(timeout=...) or ask for fewer max_tokens.", provider=self.provider)
        encoder_decoder = bool(getattr(loaded.model.config, "is_encoder_decoder", False))
        new = output[0] if encoder_decoder else output[0, turn.prompt_tokens:]
        text = _tokenizer(loaded).decode(new, skip_special_tokens=True)
        ended = len(new) > 0 and int(new[-1]) in _eos_ids(loaded)
        finish = "stop" if ended or len(new) < turn.kwargs["max_new_tokens"] else "length"
        return UnderstandResult(
            text=text, finish_reason=finish, model=self.checkpoint.name, warnings=turn.warnings,
            usage=Usage(input_tokens=turn.prompt_tokens, output_tokens=len(new),
                        images=len(request.images)))

    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        """Answer in one piece."""
        with mapped(self.provider):
            loaded = self.loaded(request.options)
            with loaded.lock:
                turn = self._prepare(loaded, request)
                output = self._generate(loaded, turn)
            return self._result(loaded, turn, output, request)

    def understand_stream(self, request: UnderstandRequest) -> Iterator[StreamEvent]:
        """Yield text as it is generated, then the whole :class:`UnderstandResult`."""
        with mapped(self.provider):
            loaded = self.loaded(request.options)
            streamer = TextIteratorStreamer(_tokenizer(loaded), skip_prompt=True,
                                            skip_special_tokens=True)
            state: dict[str, Any] = {}
            cancel = threading.Event()

            def work() -> None:
                try:
                    with loaded.lock:
                        if cancel.is_set():
                            raise RuntimeError("the stream was closed before generation began")
                        turn = state["turn"] = self._prepare(loaded, request)
                        turn.stop.cancel = cancel
                        state["output"] = self._generate(loaded, turn, streamer)
                except BaseException as exc:  # handed to the consumer, which maps it
                    state["error"] = exc
                    streamer.end()  # type: ignore[no-untyped-call]  # unblock the consumer

            worker = threading.Thread(target=work, name="mmsdk-transformers-generate", daemon=True)
            worker.start()
            try:
                for chunk in streamer:
                    if chunk:
                        yield chunk
            finally:
                cancel.set()  # a consumer that stops early ends generation at the next token
            worker.join()
            if "error" in state:
                raise state["error"]
            yield self._result(loaded, state["turn"], state["output"], request)
