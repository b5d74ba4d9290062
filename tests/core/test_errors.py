"""One error tree; no key ever shows in a message, a repr or a log line."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import pytest

import mmsdk
from mmsdk._redact import redact
from mmsdk.plugin import error_for_status, error_for_transport, parse_retry_after, raise_mapped
from mmsdk.testing import TestProvider

PLANTED = "sk-proj-PLANTEDsecretKEY0123456789abcdef"


@pytest.mark.parametrize(
    "cls",
    [mmsdk.InvalidInputError, mmsdk.UnknownProviderError, mmsdk.CapabilityError,
     mmsdk.ProviderUnavailableError, mmsdk.ProviderError, mmsdk.RateLimitError,
     mmsdk.ProviderTimeoutError, mmsdk.ProviderConnectionError, mmsdk.ProviderServerError,
     mmsdk.AuthenticationError, mmsdk.ContentPolicyError, mmsdk.OutputValidationError,
     mmsdk.CancelledError, mmsdk.CircuitOpenError, mmsdk.AllProvidersFailedError],
)
def test_every_error_is_an_mmsdk_error_and_is_documented(cls: type[Exception]) -> None:
    assert issubclass(cls, mmsdk.MMSDKError)
    import mmsdk._errors as errors

    assert cls.__name__ in (errors.__doc__ or "")


def test_transient_flags() -> None:
    transient = {c for c in (mmsdk.RateLimitError, mmsdk.ProviderTimeoutError,
                             mmsdk.ProviderConnectionError, mmsdk.ProviderServerError)}
    for cls in (*transient, mmsdk.AuthenticationError, mmsdk.ContentPolicyError,
                mmsdk.ProviderError, mmsdk.CircuitOpenError, mmsdk.OutputValidationError):
        assert cls.transient is (cls in transient)


def test_planted_key_never_appears(monkeypatch: pytest.MonkeyPatch,
                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("ACME_API_KEY", "acme-secret-value-42")
    error = mmsdk.AuthenticationError(f"key {PLANTED} rejected; acme-secret-value-42 too",
                                      provider="x")
    for text in (str(error), repr(error), error.message):
        assert PLANTED not in text and "acme-secret-value-42" not in text
        assert "[REDACTED]" in text
    with TestProvider("leaky", failures=[mmsdk.ProviderError(f"echoing {PLANTED}")]), \
            caplog.at_level(logging.DEBUG), pytest.raises(mmsdk.ProviderError) as info:
        mmsdk.understand("hi", provider="leaky:m")
    assert PLANTED not in str(info.value.attempts) and PLANTED not in caplog.text


def test_unexpected_plugin_exceptions_are_redacted_too() -> None:
    with TestProvider("leaky", failures=[RuntimeError(f"Authorization: Bearer {PLANTED}")]), \
            pytest.raises(mmsdk.ProviderError) as info:
        mmsdk.understand("hi", provider="leaky:m")
    assert PLANTED not in str(info.value)
    assert "failed unexpectedly: RuntimeError" in str(info.value)
    assert info.value.__cause__ is None  # the plugin's exception held a secret: not chained
    assert PLANTED not in "".join(traceback.format_exception(info.value))


def test_unexpected_plugin_exceptions_without_a_secret_keep_their_traceback() -> None:
    bug = KeyError("missing field")
    with TestProvider("buggy", failures=[bug]), pytest.raises(mmsdk.ProviderError) as info:
        mmsdk.understand("hi", provider="buggy:m")
    assert info.value.__cause__ is bug  # the plugin author's bug report


@pytest.mark.parametrize(
    "secret",
    ["sk-ant-api03-abcdefghijklmnop", "AIzaSyA1234567890abcdefghijklmno", "hf_abcdefghijklmnopqrstuv"],
    ids=["anthropic", "google", "huggingface"],
)
def test_key_shapes_are_redacted_even_when_unknown(secret: str) -> None:
    assert secret not in redact(f"request failed with {secret}")


def test_unavailable_error_carries_the_fix() -> None:
    error = mmsdk.ProviderUnavailableError("openai is unavailable.", fix="export OPENAI_API_KEY=...")
    assert error.fix == "export OPENAI_API_KEY=..." and "Fix: export" in str(error)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, mmsdk.RateLimitError), (401, mmsdk.AuthenticationError),
     (403, mmsdk.AuthenticationError), (408, mmsdk.ProviderTimeoutError),
     (500, mmsdk.ProviderServerError), (529, mmsdk.ProviderServerError),
     (400, mmsdk.ProviderError)],
)
def test_status_mapping(status: int, expected: type[mmsdk.ProviderError]) -> None:
    error = error_for_status(status, "boom", provider="p:m", retry_after=2.0)
    assert type(error) is expected and error.status == status
    assert error_for_status(400, "nope", provider="p:m", policy=True).__class__ is \
        mmsdk.ContentPolicyError


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


def test_transport_mapping() -> None:
    import json

    import httpx

    assert isinstance(error_for_transport(httpx.ReadTimeout("slow"), provider="p"),
                      mmsdk.ProviderTimeoutError)
    assert isinstance(error_for_transport(httpx.RemoteProtocolError("gone"), provider="p"),
                      mmsdk.ProviderConnectionError)
    assert isinstance(error_for_transport(json.JSONDecodeError("x", "{", 0), provider="p"),
                      mmsdk.ProviderServerError)
    assert error_for_transport(KeyError("x"), provider="p") is None


def test_a_url_password_is_redacted() -> None:
    error = mmsdk.InvalidInputError("fetching https://bob:hunter2@cdn.example.com/a.png failed")
    assert "hunter2" not in str(error) and "https://***@cdn.example.com/a.png" in str(error)


class _Boundary:
    """A plugin boundary written the way the cloud plugins write theirs."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, KeyError):
            raise_mapped(mmsdk.AuthenticationError("mapped", provider="p"))


def _sdk_error() -> Exception:
    """What an SDK raises: an error whose request holds the key in its headers."""
    error = KeyError(f"Authorization: Bearer {PLANTED}")
    error.request = {"headers": {"authorization": f"Bearer {PLANTED}"}}  # type: ignore[attr-defined]
    return error


def test_raise_mapped_leaves_no_chain_from_a_with_block() -> None:
    with pytest.raises(mmsdk.AuthenticationError) as caught, _Boundary():
        raise _sdk_error()
    error = caught.value
    # `raise mapped from None` in __exit__ would leave the KeyError as __context__.
    assert error.__cause__ is None and error.__context__ is None
    assert PLANTED not in "".join(traceback.format_exception(error))


def test_raise_mapped_leaves_no_chain_from_an_except_block() -> None:
    with pytest.raises(mmsdk.ProviderError) as caught:
        try:
            raise _sdk_error()
        except KeyError as exc:
            raise_mapped(mmsdk.ProviderError("mapped"), exc)  # a cause that holds a request
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_raise_mapped_keeps_a_local_cause() -> None:
    """A torch / PIL failure keeps its traceback; one with a network error under it does not."""
    with pytest.raises(mmsdk.ProviderError) as caught:
        try:
            raise RuntimeError("CUDA error: device-side assert triggered")
        except RuntimeError as exc:
            raise_mapped(mmsdk.ProviderError("mapped"), exc)
    assert isinstance(caught.value.__cause__, RuntimeError)
    import httpx

    with pytest.raises(mmsdk.ProviderUnavailableError) as hub:
        try:
            try:
                raise httpx.ConnectError("no route to the hub")
            except httpx.ConnectError as network:
                raise OSError("could not load the weights") from network
        except OSError as exc:
            raise_mapped(mmsdk.ProviderUnavailableError("mapped"), exc)
    assert hub.value.__cause__ is None and hub.value.__context__ is None


class _HubError(Exception):
    """Shaped like huggingface_hub's HTTP errors: the response keeps the request's headers."""

    __module__ = "huggingface_hub.errors"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.response = {"request_headers": {"authorization": "Bearer hf_PLANTEDtoken0123456789abc"}}


def _local_boundaries() -> list[Any]:
    diffusers_errors = pytest.importorskip("mmsdk_diffusers._errors")
    transformers_errors = pytest.importorskip("mmsdk_transformers._errors")
    from mmsdk_diffusers._source import Source

    source = Source(name="org/model", repo_id="org/model")
    return [lambda: diffusers_errors.mapped_errors("local:org/model", source, loading=True),
            lambda: transformers_errors.mapped("local:org/model", loading=True)]


@pytest.mark.parametrize("plugin", [0, 1], ids=["diffusers", "transformers"])
def test_local_plugins_chain_local_failures_but_not_hub_ones(plugin: int) -> None:
    boundary = _local_boundaries()[plugin]
    with pytest.raises(mmsdk.MMSDKError) as local, boundary():
        raise RuntimeError("CUDA error: device-side assert triggered")
    assert isinstance(local.value.__cause__, RuntimeError)  # the torch traceback stays
    with pytest.raises(mmsdk.MMSDKError) as hub, boundary():
        try:
            raise _HubError("401 Client Error")
        except _HubError as exc:
            raise OSError("org/model is not a local folder and not on the hub") from exc
    assert hub.value.__cause__ is None and hub.value.__context__ is None
    assert "hf_PLANTED" not in str(hub.value)
