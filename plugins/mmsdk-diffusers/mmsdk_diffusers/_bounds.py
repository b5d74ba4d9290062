"""Per-attempt bounds: the deadline and cancel event every generation honours.

Routing gives each attempt ``request.deadline`` (set when the attempt starts,
so waiting for a busy pipeline and loading it count) and ``request.cancel``
(set when nobody wants the answer any more: a cancelled ``await``, a lost
hedge). A request without a deadline (a model called directly) counts its
``timeout`` from entry; ``options={"cancel_event": ...}`` joins the cancel event.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TypeVar

from mmsdk.plugin import Request

__all__ = ["AnyEvent", "bounded"]

R = TypeVar("R", bound=Request)


class AnyEvent(threading.Event):
    """An event that reads as set when it, or any event it watches, is set.

    Joins ``options={"cancel_event": ...}`` to routing's ``request.cancel`` so
    that every stop check (waiting for the model, each step) sees both.
    """

    def __init__(self, *watched: Any) -> None:
        super().__init__()
        self.watched = [event for event in watched if event is not None]

    def is_set(self) -> bool:
        return super().is_set() or any(event.is_set() for event in self.watched)


def bounded(request: R, extra_cancel: Any = None) -> R:
    """*request* with the deadline and cancel event this attempt honours.

    Args:
        request: as routing handed it over.
        extra_cancel: another event that cancels the call too (``options["cancel_event"]``).
    """
    update: dict[str, Any] = {}
    if request.deadline is None and request.timeout is not None:
        update["deadline"] = time.monotonic() + request.timeout
    if extra_cancel is not None:
        update["cancel"] = AnyEvent(request.cancel, extra_cancel)
    return request.model_copy(update=update) if update else request
