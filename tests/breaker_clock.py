"""A clock the tests set by hand, for breaker cooldowns (no sleeping, no wall clock)."""

from __future__ import annotations


class Clock:
    """``time.monotonic`` stand-in: advance it with ``clock.now += seconds``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
