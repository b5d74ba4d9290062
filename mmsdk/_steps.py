"""The steps a routed call yields to its driver, and what the candidates are.

A call's decisions (:class:`mmsdk._run.Run`) are generators that *yield* these
steps and receive their outcomes; the sync and async drivers
(:mod:`mmsdk._drivers`) execute them, so both paths follow the same rules.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from ._errors import MMSDKError
from ._jobs import Bound
from ._registry import Resolved

__all__ = ["SKIPPED", "Bind", "Call", "Candidates", "Lookup", "Sleep", "Steps"]

SKIPPED = object()  # what a candidate's steps return when it was skipped without a call

Steps = Generator[Any, Any, Any]
Candidates = list[Resolved | MMSDKError]  # an error: skipped (plugin missing, no per-router key)


@dataclass
class Bind:
    """Bind *resolved*: check it can run, prepare the inputs for its limits."""

    resolved: Resolved


@dataclass
class Call:
    """Send *request* to *bound*'s model (the first event only, when *streaming*)."""

    bound: Bound
    request: Any
    streaming: bool


@dataclass
class Sleep:
    """Wait before a retry."""

    seconds: float


@dataclass
class Lookup:
    """Look *bound* up in the cache (the drivers run it: disk I/O stays off the loop)."""

    bound: Bound
