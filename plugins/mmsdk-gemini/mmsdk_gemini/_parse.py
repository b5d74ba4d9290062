"""google-genai responses to mmsdk results: text, usage, images, safety blocks, logprobs."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from google.genai import types
from PIL import Image, UnidentifiedImageError

from mmsdk.plugin import (
    ClassifyResult,
    ContentPolicyError,
    GenerateResult,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    UnderstandResult,
    Usage,
    scores_from_answer,
)

__all__ = [
    "StreamState",
    "check_blocked",
    "classify_result",
    "generate_result",
    "imagen_result",
    "understand_result",
]

# Finish reasons that mean the service withheld (part of) the answer on policy
# grounds; the answer's text is then empty or cut short.
POLICY_FINISH = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
})


def _name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _candidate(response: types.GenerateContentResponse) -> types.Candidate | None:
    return response.candidates[0] if response.candidates else None


def check_blocked(response: types.GenerateContentResponse, provider: str) -> None:
    """Raise :class:`ContentPolicyError` for a blocked prompt or a policy finish reason."""
    feedback = response.prompt_feedback
    reason = _name(feedback.block_reason) if feedback else None
    if feedback is not None and reason:
        detail = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
        raise ContentPolicyError(f"{provider} blocked the prompt (blockReason {reason}){detail}.",
                                 provider=provider)
    candidate = _candidate(response)
    finish = _name(candidate.finish_reason) if candidate else None
    if finish in POLICY_FINISH:
        assert candidate is not None
        detail = f": {candidate.finish_message}" if candidate.finish_message else ""
        raise ContentPolicyError(f"{provider} withheld the answer (finishReason {finish}){detail}.",
                                 provider=provider)


def _text(response: types.GenerateContentResponse) -> str:
    """The answer's text: every text part of the first candidate except thoughts."""
    candidate = _candidate(response)
    if candidate is None or candidate.content is None or not candidate.content.parts:
        return ""
    return "".join(part.text for part in candidate.content.parts
                   if part.text and not part.thought)


def _usage(response: types.GenerateContentResponse, images: int | None) -> Usage:
    meta = response.usage_metadata
    if meta is None:
        return Usage(images=images)
    output = meta.candidates_token_count
    if meta.thoughts_token_count:  # thinking tokens are billed as output
        output = (output or 0) + meta.thoughts_token_count
    return Usage(input_tokens=meta.prompt_token_count, output_tokens=output, images=images,
                 cached_input_tokens=meta.cached_content_token_count)  # part of the prompt count


def _finish(response: types.GenerateContentResponse) -> str | None:
    candidate = _candidate(response)
    name = _name(candidate.finish_reason) if candidate else None
    return name.lower() if name else None


def understand_result(response: types.GenerateContentResponse, *, provider: str, model: str,
                      images: int) -> UnderstandResult:
    """An :class:`UnderstandResult` from a whole response."""
    check_blocked(response, provider)
    if not response.candidates:
        raise ProviderServerError(f"{provider} returned no candidates.", provider=provider)
    return UnderstandResult(text=_text(response), finish_reason=_finish(response), model=model,
                            usage=_usage(response, images))


class StreamState:
    """Folds streamed chunks into text deltas and one final result."""

    def __init__(self, *, provider: str, model: str, images: int) -> None:
        self.provider = provider
        self.model = model
        self.images = images
        self.chunks: list[str] = []
        self.finish: str | None = None
        self.usage = Usage(images=images)

    def feed(self, chunk: types.GenerateContentResponse) -> str:
        """The new text in *chunk*; raises on a safety block."""
        check_blocked(chunk, self.provider)
        if chunk.usage_metadata is not None:
            self.usage = _usage(chunk, self.images)
        self.finish = _finish(chunk) or self.finish
        text = _text(chunk)
        if text:
            self.chunks.append(text)
        return text

    def result(self) -> UnderstandResult:
        """The whole answer; raises if the stream ended without a finish reason."""
        if self.finish is None:
            # Gemini's last chunk always carries finishReason. A body read to the
            # end of the connection ends cleanly even when the connection was cut.
            raise ProviderConnectionError(
                f"{self.provider}'s stream ended before the answer finished (no finishReason); "
                "the connection was probably cut.", provider=self.provider)
        return UnderstandResult(text="".join(self.chunks), finish_reason=self.finish,
                                model=self.model, usage=self.usage)


def _decode(data: bytes, provider: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ProviderServerError(f"{provider} returned image data that cannot be decoded.",
                                  provider=provider) from None
    return image


def generate_result(response: types.GenerateContentResponse, *, provider: str, model: str,
                    seed: int | None) -> GenerateResult:
    """A :class:`GenerateResult` from native image output (``inline_data`` parts)."""
    check_blocked(response, provider)
    candidate = _candidate(response)
    parts = candidate.content.parts if candidate and candidate.content else None
    images = [_decode(part.inline_data.data, provider) for part in parts or []
              if part.inline_data is not None and part.inline_data.data
              and (part.inline_data.mime_type or "image/").startswith("image/")
              and not part.thought]
    if not images:
        said = _text(response).strip()
        raise ProviderError(f"{provider} returned no image (finishReason "
                            f"{_finish(response) or 'none'})" + (f": {said[:300]}" if said else "")
                            + ".", provider=provider)
    usage = _usage(response, len(images))
    return GenerateResult(images=images, seed=seed, model=model, usage=usage)


def imagen_result(response: types.GenerateImagesResponse, *, provider: str,
                  model: str) -> GenerateResult:
    """A :class:`GenerateResult` from Imagen's ``generate_images``."""
    generated = response.generated_images or []
    images = [_decode(item.image.image_bytes, provider) for item in generated
              if item.image is not None and item.image.image_bytes]
    if not images:
        reasons = [item.rai_filtered_reason for item in generated if item.rai_filtered_reason]
        if reasons:
            raise ContentPolicyError(f"{provider} filtered every image: {reasons[0]}",
                                     provider=provider)
        raise ProviderError(f"{provider} returned no image.", provider=provider)
    revised = next((item.enhanced_prompt for item in generated if item.enhanced_prompt), None)
    return GenerateResult(images=images, model=model, revised_prompt=revised,
                          usage=Usage(images=len(images)))


def classify_result(response: types.GenerateContentResponse, *, provider: str, model: str,
                    labels: list[str], multi_label: bool) -> ClassifyResult:
    """Scores for one image: from logprobs when the response has them, else the answer."""
    check_blocked(response, provider)
    text = _text(response)
    logprobs = _label_logprobs(response, text, labels, multi_label)
    scores = scores_from_answer(text, labels, multi_label, logprobs)
    return ClassifyResult(scores=scores, model=model, usage=_usage(response, 1))


# -- logprobs -----------------------------------------------------------------------------
def _label_logprobs(response: types.GenerateContentResponse, text: str, labels: list[str],
                    multi_label: bool) -> dict[str, float] | None:
    """Label -> log-probability of the token that starts it in the answer, or ``None``.

    Single label: every label's first token is looked up among the top
    candidates at the position where the answer's label starts. Multi-label:
    each chosen label's own token log-probability. ``None`` (the documented
    1.0 / 0.0 rule applies) when the response has no logprobs, the tokens do
    not spell the answer, or a first token does not tell two labels apart.
    """
    candidate = _candidate(response)
    result = candidate.logprobs_result if candidate else None
    if result is None or not result.chosen_candidates:
        return None
    chosen: list[tuple[str, float | None]] = [
        (c.token or "", c.log_probability) for c in result.chosen_candidates]
    if "".join(token for token, _ in chosen) != text:
        return None
    starts = _value_offsets(text, multi_label)
    if not starts:
        return None
    found: dict[str, float] = {}
    for offset, label in starts:
        step, prefix = _token_at(chosen, offset)
        if step is None or label not in labels:
            return None
        if multi_label:
            lp = chosen[step][1]
            if lp is None:
                return None
            found[label] = lp
            continue
        steps = result.top_candidates or []
        tops = (steps[step].candidates or []) if step < len(steps) else []
        options = [(c.token or "", c.log_probability) for c in tops]
        options.append(chosen[step])
        mapped = _map_first_tokens(options, prefix, labels)
        if mapped is None or label not in mapped:
            return None
        found.update(mapped)
    return found


def _value_offsets(text: str, multi_label: bool) -> list[tuple[int, str]]:
    """(offset, label) of each label string in the JSON answer."""
    try:
        answer = json.loads(text)
    except ValueError:
        return []
    key = "present" if multi_label else "label"
    match = re.search(rf'"{key}"\s*:\s*', text)
    if match is None or not isinstance(answer, dict):
        return []
    values = answer.get(key)
    wanted = values if multi_label and isinstance(values, list) else [values]
    offsets, position = [], match.end()
    for value in wanted:
        if not isinstance(value, str):
            return []
        quoted = json.dumps(value)
        at = text.find(quoted, position)
        if at < 0:
            return []
        offsets.append((at + 1, value))
        position = at + len(quoted)
    return offsets


def _token_at(chosen: list[tuple[str, float | None]], offset: int) -> tuple[int | None, str]:
    """The step whose token covers *offset*, and the part of it before *offset*."""
    position = 0
    for step, (token, _) in enumerate(chosen):
        if position <= offset < position + len(token):
            return step, token[: offset - position]
        position += len(token)
    return None, ""


def _map_first_tokens(options: list[tuple[str, float | None]], prefix: str,
                      labels: list[str]) -> dict[str, float] | None:
    mapped: dict[str, float] = {}
    for token, lp in options:
        if lp is None or not token.startswith(prefix):
            continue
        rest = token[len(prefix):]
        if not rest:
            continue
        owners = [label for label in labels if label.startswith(rest) or rest.startswith(label)]
        if len(owners) > 1:
            return None  # this token starts several labels: it cannot score them apart
        if owners and owners[0] not in mapped:
            mapped[owners[0]] = lp
    return mapped
