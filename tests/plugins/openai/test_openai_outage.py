"""An outage seen from the wire: retries stay within the budget, breakers stop the requests."""

from __future__ import annotations

from typing import Any

from loopback import LoopbackServer

import mmsdk
from mmsdk.testing import TestProvider


def test_retries_add_at_most_the_budget_to_requests_during_an_outage(api: LoopbackServer,
                                                                    wire: Any) -> None:
    api.default = wire.error(503, "overloaded", kind="server_error")
    calls = 50
    policy = mmsdk.Policy(retries=3, backoff=0, breaker_threshold=None, retry_budget=0.2)
    with TestProvider("backup"):
        router = mmsdk.Router([wire.PROVIDER, "backup:m"], policy)
        for _ in range(calls):
            assert router.understand("hi").provider == "backup:m"
    # Without the budget: 4 requests a call (200). With it: 0.2 retries a call, plus 5 in reserve.
    assert calls < len(api.received) <= (1 + 0.2) * calls + 5


def test_an_open_breaker_sends_no_request(api: LoopbackServer, wire: Any) -> None:
    api.default = wire.error(500, "internal", kind="server_error")
    policy = mmsdk.Policy(retries=0, breaker_threshold=3, breaker_cooldown=300)
    with TestProvider("backup"):
        router = mmsdk.Router([wire.PROVIDER, "backup:m"], policy)
        for _ in range(20):
            router.understand("hi")
    assert len(api.received) == 3
    assert router.health()[wire.PROVIDER].state == "open"
    assert mmsdk.health()[wire.PROVIDER].consecutive_failures == 3  # closed under the default 5
