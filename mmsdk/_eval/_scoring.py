"""How one answer is judged, and the percentile the latency columns use.

- classify: right when the top label is the expected one (top-1).
- understand: right when the answer equals the expected one after
  normalising (case, surrounding whitespace and punctuation, inner runs of
  whitespace); with a schema, each field is compared after normalising
  (strings as above, floats rounded to 3 significant digits, as the
  cross-check does) and the answer is right when every field agrees.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

__all__ = ["field_agreement", "normalise", "normalise_text", "percentile"]

_SPACES = re.compile(r"\s+")
_EDGES = " \t\r\n.,;:!?\"'`()[]{}"


def normalise_text(text: str) -> str:
    """``"  The Cat. "`` → ``"the cat"``."""
    return _SPACES.sub(" ", text.casefold()).strip(_EDGES)


def normalise(value: Any) -> Any:
    """A value in the form two agreeing answers share."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, str):
        return normalise_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or value == 0:
            return value
        return round(value, 2 - math.floor(math.log10(abs(value))))
    if isinstance(value, int):
        return float(normalise(float(value)))
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


def field_agreement(answer: Any, expected: BaseModel) -> float:
    """The fraction of *expected*'s fields that *answer* gives the same value for."""
    wanted = expected.model_dump()
    if not wanted:
        return 1.0
    given = answer.model_dump() if isinstance(answer, BaseModel) else answer
    if not isinstance(given, dict):
        return 0.0
    same = sum(1 for name, value in wanted.items()
               if name in given and normalise(given[name]) == normalise(value))
    return same / len(wanted)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The *q*-th percentile (0-100) with linear interpolation between closest
    ranks (numpy's default); ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
