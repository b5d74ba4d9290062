"""How one answer is judged, and the percentile the latency columns use.

- classify: right when the top label is the expected one (top-1).
- understand: right when the answer equals the expected one after
  normalising (case, surrounding whitespace and punctuation, inner runs of
  whitespace); with a schema, each field is compared as the cross-check
  (``verify_with=``) compares them (strings stripped, casefolded and with
  whitespace collapsed, floats rounded to 3 significant digits, nested
  models field by field) and the answer is right when every field agrees.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from .._verify import compare

__all__ = ["field_agreement", "normalise_text", "percentile"]

_SPACES = re.compile(r"\s+")
_EDGES = " \t\r\n.,;:!?\"'`()[]{}"


def normalise_text(text: str) -> str:
    """``"  The Cat. "`` → ``"the cat"``."""
    return _SPACES.sub(" ", text.casefold()).strip(_EDGES)


def field_agreement(answer: Any, expected: BaseModel) -> float:
    """The fraction of *expected*'s fields (nested ones by dotted name) that *answer*
    gives the same value for, compared as the cross-check compares them."""
    if not isinstance(answer, BaseModel):
        return 0.0
    agree, disagree = compare(expected, answer)
    return len(agree) / (len(agree) + len(disagree)) if agree or disagree else 1.0


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
