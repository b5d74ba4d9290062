"""Classification through a chat model: a JSON answer whose labels are an enum.

The answer is constrained by ``classification_schema`` (strict ``json_schema``)
and scored by ``scores_from_answer``. Where the API returns logprobs, the
scores come from the label token: at the position where the label string
starts, each alternative in ``top_logprobs`` that begins a label gives that
label's log-probability (multi-label: the best over every array item's
position). When logprobs are missing, cannot be aligned with the text, or a
token is shared by two labels (so it says nothing about which), the documented
rule applies instead: chosen labels 1.0, the others 0.0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["label_logprobs", "value_offsets"]

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_LABEL_KEY = re.compile(r'"label"\s*:\s*"')
_PRESENT_KEY = re.compile(r'"present"\s*:\s*\[')


def value_offsets(text: str, multi_label: bool) -> list[int]:
    """Character offsets where each label value starts (just after its opening quote)."""
    if not multi_label:
        match = _LABEL_KEY.search(text)
        return [match.end()] if match else []
    match = _PRESENT_KEY.search(text)
    if not match:
        return []
    offsets: list[int] = []
    position = match.end()
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] != '"':
            return offsets
        item = _STRING.match(text, position)
        if item is None:
            return offsets
        offsets.append(position + 1)
        position = item.end()


def _matches(piece: str, encoded: dict[str, str]) -> list[str]:
    """Labels whose JSON-encoded text (plus closing quote) is consistent with *piece*."""
    found = []
    for label, enc in encoded.items():
        full = enc + '"'
        if full.startswith(piece) or piece.startswith(full):
            found.append(label)
    return found


def label_logprobs(tokens: Sequence[Any] | None, text: str, labels: list[str],
                   multi_label: bool) -> dict[str, float] | None:
    """Label -> log-probability of the token that starts it, or ``None`` (use the rule).

    Args:
        tokens: the choice's ``logprobs.content`` (each has ``token``, ``logprob``,
            ``top_logprobs``).
        text: the answer text.
        labels: the candidate labels.
        multi_label: the answer is ``{"present": [...]}`` rather than ``{"label": ...}``.
    """
    if not tokens or "".join(t.token for t in tokens) != text:
        return None
    offsets = value_offsets(text, multi_label)
    if not offsets:
        return None
    encoded = {label: json.dumps(label)[1:-1] for label in labels}
    starts, position = [], 0
    for token in tokens:
        starts.append(position)
        position += len(token.token)
    best: dict[str, float] = {}
    for offset in offsets:
        index = max(i for i, start in enumerate(starts) if start <= offset)
        if offset == starts[index] + len(tokens[index].token):
            return None  # label starts past the last token: nothing to read
        token = tokens[index]
        cut = offset - starts[index]
        before = token.token[:cut]
        alternatives = [(token.token, token.logprob)] + \
            [(alt.token, alt.logprob) for alt in (token.top_logprobs or [])]
        for rank, (alt_text, logprob) in enumerate(alternatives):
            if not alt_text.startswith(before) or len(alt_text) <= cut:
                continue
            matched = _matches(alt_text[cut:], encoded)
            if len(matched) > 1:
                if rank == 0:
                    return None  # the chosen token is shared by labels: it cannot tell them apart
                continue
            if matched and logprob > best.get(matched[0], float("-inf")):
                best[matched[0]] = logprob
    return best or None
