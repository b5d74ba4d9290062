"""Errors for machines: ``code``, ``status``, ``retryable``, ``retry_after``, ``errors`` and
``partial_text``, exactly as DESIGN.md's table says, and set where the errors are raised."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loopback import LoopbackServer, Reply
from PIL import Image

import mmsdk
from mmsdk._media import load_image
from mmsdk._prepare import prepare
from mmsdk._registry import Registry
from mmsdk._settings import Settings
from mmsdk._video import load_video, sample_frames
from mmsdk.plugin import (
    Capability,
    MediaLimits,
    ModelInfo,
    ModelLifecycle,
    ProviderSpec,
    StreamEvent,
    Understand,
    UnderstandRequest,
    UnderstandResult,
    error_for_status,
    hookimpl,
)
from mmsdk.testing import ALL_FEATURES, TestProvider, pinned_today

# DESIGN.md, "Errors say what happened": each class's code, then its sub-codes.
TABLE: dict[type[mmsdk.MMSDKError], tuple[str, set[str]]] = {
    mmsdk.InvalidInputError: ("invalid_value", {"input_corrupt", "input_too_large", "unsafe_url"}),
    mmsdk.UnknownProviderError: ("unknown_provider", {"retired_model"}),
    mmsdk.CapabilityError: ("unsupported", {"unsupported_option"}),
    mmsdk.ProviderUnavailableError: ("unavailable", {"plugin_conflict", "plugin_broken"}),
    mmsdk.CancelledError: ("cancelled", set()),
    mmsdk.RateLimitError: ("rate_limited", set()),
    mmsdk.ProviderTimeoutError: ("timeout", set()),
    mmsdk.ProviderServerError: ("server_error", set()),
    mmsdk.ProviderConnectionError: ("connection", set()),
    mmsdk.AuthenticationError: ("auth", set()),
    mmsdk.ContentPolicyError: ("content_policy", set()),
    mmsdk.OutputValidationError: ("invalid_output", set()),
    mmsdk.CircuitOpenError: ("circuit_open", set()),
}
TRANSIENT = {mmsdk.RateLimitError, mmsdk.ProviderTimeoutError, mmsdk.ProviderConnectionError,
             mmsdk.ProviderServerError}


def _attempt(provider: str, outcome: str = "error") -> mmsdk.Attempt:
    return mmsdk.Attempt(provider=provider, outcome=outcome, error="x")  # type: ignore[arg-type]


# -- the table ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", list(TABLE), ids=lambda c: c.__name__)
def test_every_error_has_its_code_status_and_retryable(cls: type[mmsdk.MMSDKError]) -> None:
    code, sub_codes = TABLE[cls]
    error = cls("boom")
    assert error.code == code
    assert error.retryable is (cls in TRANSIENT)
    assert error.status == (429 if cls is mmsdk.RateLimitError else None)
    assert error.partial_text is None
    for sub in sorted(sub_codes):
        assert cls("boom", code=sub).code == sub  # type: ignore[call-arg]
    if sub_codes:
        assert cls("boom").code == code  # a sub-code never sticks to the class
        with pytest.raises(ValueError, match="has no code 'made_up'"):
            cls("boom", code="made_up")  # type: ignore[call-arg]


def test_all_failed_code_errors_and_the_soonest_retry_after() -> None:
    errors: list[mmsdk.MMSDKError] = [
        mmsdk.RateLimitError("slow down", provider="a:m", retry_after=7.0),
        mmsdk.ProviderServerError("overloaded", provider="b:m", status=503, retry_after=2.5),
        mmsdk.CircuitOpenError("open", provider="c:m", retry_after=4.0),
        mmsdk.ProviderTimeoutError("late", provider="d:m"),
    ]
    attempts = [_attempt(e.provider or "") for e in errors]
    failed = mmsdk.AllProvidersFailedError(attempts, "understand", errors=errors)
    assert failed.code == "all_failed" and failed.status is None and not failed.retryable
    assert failed.errors == errors and failed.errors is not errors
    assert failed.retry_after == 2.5
    bare = mmsdk.AllProvidersFailedError(attempts[-1:], errors=errors[-1:])
    assert bare.retry_after is None
    assert mmsdk.AllProvidersFailedError(attempts).errors == []  # errors= stays optional


def test_circuit_open_is_a_provider_error_with_retry_after_and_not_transient() -> None:
    error = mmsdk.CircuitOpenError("skipped", provider="p:m", retry_after=12.0)
    assert isinstance(error, mmsdk.ProviderError) and not error.transient
    assert error.retry_after == 12.0 and not error.retryable
    assert mmsdk.CircuitOpenError is mmsdk.plugin.CircuitOpenError
    assert "CircuitOpenError" in mmsdk.__all__ and "CircuitOpenError" in mmsdk.plugin.__all__


def test_provider_errors_carry_retry_after_and_endpoint() -> None:
    error = mmsdk.ProviderServerError("x", status=503, retry_after=3.0,
                                      endpoint="https://user:hunter2@api.example.com/v1")
    assert error.retry_after == 3.0
    assert error.endpoint == "https://***@api.example.com/v1"  # no URL password
    assert mmsdk.ProviderError("x").retry_after is None
    assert mmsdk.ProviderError("x").endpoint is None


@pytest.mark.parametrize(("status", "headers", "retry_after"), [
    (503, {"Retry-After": "3"}, 3.0),
    (529, {"retry-after-ms": "1500"}, 1.5),
    (429, {"Retry-After": "7"}, 7.0),
    (500, {"Retry-After": "3"}, None),  # honoured on 429, 503 and 529 only
    (503, {}, None),
], ids=["503", "529-ms", "429", "500", "503-none"])
def test_error_for_status_keeps_retry_after_from_headers(status: int, headers: dict[str, str],
                                                         retry_after: float | None) -> None:
    error = error_for_status(status, "busy", provider="p:m", headers=headers,
                             endpoint="http://h/v1")
    assert error.retry_after == retry_after and error.status == status
    assert error.endpoint == "http://h/v1" and error.retryable
    passed = error_for_status(status, "busy", provider="p:m", retry_after=9.0)
    assert passed.retry_after == (None if status == 500 else 9.0)


# -- sub-codes where the errors are raised -------------------------------------------------
def _png(size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def _noise_png(side: int) -> bytes:
    import numpy as np

    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _code(call: Any) -> str:
    with pytest.raises(mmsdk.MMSDKError) as caught:
        call()
    return caught.value.code


@pytest.mark.parametrize(("source", "settings", "code"), [
    pytest.param(lambda: b"not an image at all", None, "input_corrupt", id="not-an-image"),
    pytest.param(lambda: _png()[:60], None, "input_corrupt", id="truncated"),
    pytest.param(lambda: b"", None, "input_corrupt", id="empty"),
    pytest.param(lambda: "data:image/png;base64,@@@@", None, "input_corrupt", id="bad-base64"),
    pytest.param(lambda: _png(), Settings(max_input_bytes=50), "input_too_large", id="byte-cap"),
    pytest.param(lambda: _png(), Settings(max_input_pixels=100), "input_too_large",
                 id="pixel-cap"),
    pytest.param(lambda: "ftp://example.com/a.png", None, "unsafe_url", id="scheme"),
    pytest.param(lambda: "http://127.0.0.1:9/a.png", None, "unsafe_url", id="loopback"),
    pytest.param(lambda: "http://metadata.google.internal/a.png", None, "unsafe_url",
                 id="metadata-host"),
    pytest.param(lambda: "http://0x7f.1/a.png", None, "unsafe_url", id="odd-ipv4"),
    pytest.param(lambda: 42, None, "invalid_value", id="wrong-type"),
    pytest.param(lambda: "/no/such/file.png", None, "invalid_value", id="no-such-file"),
])
def test_input_errors_say_which_kind(source: Any, settings: Settings | None, code: str) -> None:
    assert _code(lambda: load_image(source(), settings=settings or Settings())) == code


def test_an_oversized_url_body_is_too_large(loopback: LoopbackServer) -> None:
    loopback.default = Reply(body=b"\x89PNG" + b"\0" * 5000, content_type="image/png")
    settings = Settings(allow_private_urls=True, max_input_bytes=1000)
    assert _code(lambda: load_image(f"{loopback.url}/big.png", settings=settings)) == \
        "input_too_large"


def test_a_corrupt_image_found_at_decode_time_is_corrupt() -> None:
    data = bytearray(_png((64, 64)))
    start = data.index(b"IDAT") + 8
    data[start:start + 6] = b"\xff" * 6  # the container is whole; its pixel stream is not
    loaded = load_image(bytes(data))
    assert _code(lambda: loaded.image) == "input_corrupt"


def test_an_image_that_cannot_fit_the_provider_is_too_large() -> None:
    loaded = load_image(_noise_png(64))
    limits = MediaLimits(formats=("png",), max_bytes=10)
    assert _code(lambda: prepare(loaded, limits)) == "input_too_large"


def test_video_codes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert _code(lambda: load_video(empty, Settings())) == "input_corrupt"
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * 2000)
    assert _code(lambda: load_video(big, Settings(max_video_bytes=1000))) == "input_too_large"
    assert _code(lambda: load_video(tmp_path / "clip.txt", Settings())) == "invalid_value"
    pytest.importorskip("av")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is no video" * 10)
    video = load_video(garbage, Settings())
    assert _code(lambda: sample_frames(video, 2)) == "input_corrupt"


_INFO = ModelInfo(supports=ALL_FEATURES)


class _Aging:
    """A plugin whose model ``v1`` is retired (the registry's table)."""

    @hookimpl
    def register_providers(self, register: Any) -> None:
        register(ProviderSpec(name="aging", model_class=_Breaks,  # never built
                              describe=lambda model: _INFO,
                              default_models={Capability.UNDERSTAND: "v2"},
                              retired={"v1": "Use aging:v2."}))


def test_a_retired_name_is_retired_model() -> None:
    registry = Registry()
    registry.add_plugin(_Aging(), "aging")
    with pytest.raises(mmsdk.UnknownProviderError) as caught:
        mmsdk.Router("aging:v1", registry=registry).understand("hi")
    assert caught.value.code == "retired_model"
    with pytest.raises(mmsdk.UnknownProviderError) as unknown:
        mmsdk.Router("nosuchplugin:v1", registry=registry).understand("hi")
    assert unknown.value.code == "unknown_provider"


def test_a_model_retired_by_the_calendar_is_retired_model() -> None:
    life = ModelLifecycle("acme", {"v1": (dt.date(2026, 1, 1), "v2")})
    with pinned_today(dt.date(2026, 2, 1)), pytest.raises(mmsdk.UnknownProviderError) as caught:
        life.on_call("v1")
    assert caught.value.code == "retired_model"


def test_capability_codes() -> None:
    with TestProvider("notemp", supports=ALL_FEATURES - {"temperature"}), \
            TestProvider("embedonly", capabilities=[Capability.EMBED]):
        option = _code(lambda: mmsdk.understand("hi", provider="notemp:m", temperature=0.5))
        capability = _code(lambda: mmsdk.understand("hi", provider="embedonly:m"))
    assert (option, capability) == ("unsupported_option", "unsupported")


# -- partial_text -------------------------------------------------------------------------
class _Breaks(Understand):
    """Streams two chunks, then fails with whatever the test put in ``failure``."""

    failure: BaseException = RuntimeError("the line went dead")

    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        raise AssertionError("streams only")

    def understand_stream(self, request: UnderstandRequest) -> Iterator[StreamEvent]:
        yield "A red "
        yield "square "
        raise self.failure

    async def aunderstand_stream(self, request: UnderstandRequest):  # type: ignore[override]
        for event in ("A red ", "square "):
            yield event
        raise self.failure


class _BreaksPlugin:
    @hookimpl
    def register_providers(self, register: Any) -> None:
        register(ProviderSpec(name="breaks", model_class=_Breaks, describe=lambda model: _INFO,
                              default_models={Capability.UNDERSTAND: "m"}))


@pytest.fixture
def breaks() -> Iterator[Registry]:
    registry = Registry()
    registry.add_plugin(_BreaksPlugin(), "breaks")
    yield registry
    _Breaks.failure = RuntimeError("the line went dead")


@pytest.mark.parametrize("failure", [
    RuntimeError("the line went dead"),
    mmsdk.ProviderConnectionError("dropped", provider="breaks:m"),
], ids=["raw", "mapped"])
def test_an_error_mid_stream_carries_the_text_received(breaks: Registry,
                                                       failure: BaseException) -> None:
    _Breaks.failure = failure
    stream = mmsdk.Router("breaks:m", registry=breaks).understand("Describe", stream=True)
    received = [next(stream), next(stream)]
    with pytest.raises(mmsdk.ProviderError) as caught:
        next(stream)
    assert caught.value.partial_text == "".join(received) == "A red square "


async def test_an_async_error_mid_stream_carries_the_text_received(breaks: Registry) -> None:
    stream = await mmsdk.Router("breaks:m", registry=breaks).aunderstand("Describe", stream=True)
    received = []
    with pytest.raises(mmsdk.ProviderError) as caught:
        async for chunk in stream:
            received.append(chunk)
    assert received == ["A red ", "square "]
    assert caught.value.partial_text == "A red square "
