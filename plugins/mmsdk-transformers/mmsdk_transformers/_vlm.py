"""Vision-language models (LLaVA 1.5, LLaVA-Next, Qwen2-VL, SmolVLM, ...): Understand.

The model card's recipe, whatever the architecture: build chat messages
(images, then the text; a system turn when given), render them with the
processor's chat template (``add_generation_prompt=True``), run the processor
on that text and the images, and ``generate``. Temperature ``None`` or 0 is
greedy decoding; otherwise sampling at that temperature, seeded by
``options={"seed": N}``. Streaming runs ``generate`` in a worker thread that
feeds a ``TextIteratorStreamer``.

Bounds: the attempt's deadline (``request.deadline``, from ``Policy(timeout=...)``)
covers waiting for the model, loading it and generating; a stopping criterion
ends generation at the next token when the deadline passes
(:class:`ProviderTimeoutError`), when the attempt is cancelled (``request.cancel``:
a cancelled ``await``, a lost hedge; :class:`CancelledError`) or when a stream's
reader leaves. ``max_tokens`` beyond the model's context (``max_position_embeddings``
less the prompt) is an :class:`InvalidInputError`; left unset it is capped there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from jinja2 import TemplateError
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from mmsdk.plugin import (
    CancelledError,
    InvalidInputError,
    ProviderError,
    ProviderTimeoutError,
    StreamEvent,
    UnderstandRequest,
    UnderstandResult,
    Usage,
)

from ._base import TransformersModel, bounded
from ._errors import mapped
from ._kinds import VisionLanguage
from ._loading import Loaded
from ._prompting import generation_kwargs, messages, seed_of, user_text

__all__ = ["VisionLanguageModel"]


class _Stop(StoppingCriteria):  # type: ignore[misc]  # transformers is not analysed (pyproject)
    """Ends generation at the next token: attempt cancelled or past its deadline, or reader gone.

    Attributes:
        reason: ``"cancelled"``, ``"timeout"``, ``"left"`` (a stream's reader stopped
            reading) once it has stopped generation, else ``None``.
    """

    def __init__(self, request: UnderstandRequest, left: threading.Event | None = None) -> None:
        self.request = request
        self.left = left
        self.reason: str | None = None

    @property
    def needed(self) -> bool:
        """Whether anything can stop this generation early (the check costs a little per token)."""
        return self.left is not None or self.request.deadline is not None \
            or self.request.cancel is not None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        if self.reason is None:
            self.reason = "left" if self.left is not None and self.left.is_set() else \
                self.request.stop_reason()
        return torch.full((input_ids.shape[0],), self.reason is not None, dtype=torch.bool,
                          device=input_ids.device)


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


def _context(loaded: Loaded) -> int | None:
    """How many positions the language model takes (prompt plus answer), where it says."""
    config = loaded.model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    limit = getattr(text, "max_position_embeddings", None)
    return limit if isinstance(limit, int) and limit > 0 else None


def _eos_ids(loaded: Loaded) -> set[int]:
    eos = getattr(loaded.model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = getattr(_tokenizer(loaded), "eos_token_id", None)
    if eos is None:
        return set()
    return {int(eos)} if isinstance(eos, int) else {int(e) for e in eos}


class VisionLanguageModel(TransformersModel, VisionLanguage):
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

    def _prepare(self, loaded: Loaded, request: UnderstandRequest,
                 left: threading.Event | None = None) -> _Turn:
        text, warnings = self._render(loaded, request)
        images = [prepared.image for prepared in request.images]
        # One conversation: a batch of one text, and its images as one nested list.
        inputs = loaded.processor(text=[text], images=[images] if images else None,
                                  return_tensors="pt")
        inputs = inputs.to(loaded.device, loaded.dtype)
        turn = _Turn(inputs, generation_kwargs(request), seed_of(request.options),
                     _Stop(request, left), warnings)
        self._fit_context(loaded, request, turn)
        return turn

    def _fit_context(self, loaded: Loaded, request: UnderstandRequest, turn: _Turn) -> None:
        """The prompt plus ``max_tokens`` must fit the model's context; an unset one is capped."""
        context = _context(loaded)
        if context is None:
            return
        room = context - turn.prompt_tokens
        if room < 1:
            raise InvalidInputError(
                f"The prompt is {turn.prompt_tokens} tokens (images included), more than "
                f"{self.checkpoint.name}'s {context}-token context; send fewer images or frames, "
                "or less text.", provider=self.provider)
        if request.max_tokens is None:
            turn.kwargs["max_new_tokens"] = min(turn.kwargs["max_new_tokens"], room)
        elif request.max_tokens > room:
            raise InvalidInputError(
                f"max_tokens={request.max_tokens} does not fit {self.checkpoint.name}'s "
                f"{context}-token context after the {turn.prompt_tokens}-token prompt; ask for "
                f"max_tokens={room} or fewer.", provider=self.provider)

    # -- running ---------------------------------------------------------------
    @staticmethod
    def _generate(loaded: Loaded, turn: _Turn, streamer: Any = None) -> torch.Tensor:
        with torch.inference_mode():
            if turn.seed is not None:
                torch.manual_seed(turn.seed)
            criteria = StoppingCriteriaList([turn.stop] if turn.stop.needed else [])
            return loaded.model.generate(**turn.inputs, **turn.kwargs, streamer=streamer,
                                         stopping_criteria=criteria)

    def _result(self, loaded: Loaded, turn: _Turn, output: torch.Tensor,
                request: UnderstandRequest) -> UnderstandResult:
        if turn.stop.reason == "timeout":
            raise ProviderTimeoutError(
                f"{self.provider} did not finish generating within {request.timeout}s; raise "
                "Policy(timeout=...) or ask for fewer max_tokens.", provider=self.provider)
        if turn.stop.reason == "cancelled":
            raise CancelledError(f"{self.provider}: cancelled while generating.",
                                 provider=self.provider)
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
        request = bounded(request)
        with mapped(self.provider):
            loaded = self.loaded(request.options, request)
            with request.holding(loaded.lock, self.provider):
                turn = self._prepare(loaded, request)
                output = self._generate(loaded, turn)
            return self._result(loaded, turn, output, request)

    def understand_stream(self, request: UnderstandRequest) -> Iterator[StreamEvent]:
        """Yield text as it is generated, then the whole :class:`UnderstandResult`."""
        request = bounded(request)
        with mapped(self.provider):
            loaded = self.loaded(request.options, request)
            streamer = TextIteratorStreamer(_tokenizer(loaded), skip_prompt=True,
                                            skip_special_tokens=True)
            state: dict[str, Any] = {}
            left = threading.Event()  # the reader stopped reading

            def work() -> None:
                try:
                    with request.holding(loaded.lock, self.provider):
                        if left.is_set():
                            raise RuntimeError("the stream was closed before generation began")
                        turn = state["turn"] = self._prepare(loaded, request, left)
                        state["output"] = self._generate(loaded, turn, streamer)
                except BaseException as exc:  # handed to the consumer, which maps it
                    state["error"] = exc
                    streamer.end()  # unblock the consumer

            worker = threading.Thread(target=work, name="mmsdk-transformers-generate", daemon=True)
            worker.start()
            try:
                for chunk in streamer:
                    if chunk:
                        yield chunk
            finally:
                left.set()  # a reader that stops early ends generation at the next token
            worker.join()
            if "error" in state:
                raise state["error"]
            yield self._result(loaded, state["turn"], state["output"], request)
