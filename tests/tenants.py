"""One check, shared by the cloud plugins: two tenants' keys keep their breakers and secrets apart."""

from __future__ import annotations

import pytest

import mmsdk


def assert_tenants_kept_apart(plugin: str, provider: str, failing_key: str, healthy_key: str,
                              caplog: pytest.LogCaptureFixture,
                              error: type[mmsdk.ProviderError] = mmsdk.ProviderError
                              ) -> mmsdk.Router:
    """The server fails every call made with *failing_key* and answers "ok" to the others.

    One failure opens only that tenant's breaker (threshold 1); the other tenant and
    the environment's key keep working; neither key shows in errors, attempts, logs
    or the router's repr. *error* is what the failing tenant's first call raises.
    Returns the failing tenant's router.
    """
    policy = mmsdk.Policy(breaker_threshold=1, retries=0)
    failing = mmsdk.Router(provider, policy, credentials={plugin: failing_key})
    healthy = mmsdk.Router(provider, policy, credentials={plugin: healthy_key})
    with pytest.raises(error) as failed:
        failing.understand("x")
    with pytest.raises(mmsdk.CircuitOpenError):
        failing.understand("x")
    assert healthy.understand("x").text == "ok"
    assert mmsdk.understand("x", provider=provider, policy=policy).text == "ok"
    assert failing.health()[provider].state == "open"
    assert healthy.health()[provider].state == "closed"
    assert mmsdk.health()[provider].state == "closed"
    for text in (str(failed.value), repr(failed.value), caplog.text, repr(failing),
                 *(a.model_dump_json() for a in failed.value.attempts)):
        assert failing_key not in text and healthy_key not in text
    return failing
