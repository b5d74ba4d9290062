"""Timeouts and cancellation: bounded from the start of the attempt, stopped at the next token.

Model forwards are counted with a hook (a VLM runs one per generated token, a
dual encoder one per batch), so every assertion is about counts and order,
never about how fast this machine is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from forwards import Forwards, counting
from forwards import loaded_model as _model
from mmsdk_transformers import _loading
from PIL import Image

import mmsdk
from mmsdk._types import SentImage
from mmsdk.plugin import ClassifyRequest, PreparedImage, UnderstandRequest

LONG = 400  # tokens no test waits for (the endless model never ends its answer)
GUARD = 60.0  # seconds before a wait that should end at once is declared hung


def _hooked(provider: str) -> Iterator[Forwards]:
    with counting(_model(provider).loaded({}).model) as counter:
        yield counter


@pytest.fixture
def tokens(provider: Callable[[str], str]) -> Iterator[Forwards]:
    """Forwards (= generated tokens) of the endless LLaVA, which never ends its answer."""
    yield from _hooked(provider("endless_llava"))


@pytest.fixture
def batches(provider: Callable[[str], str]) -> Iterator[Forwards]:
    """Forwards (= batches) of the tiny CLIP."""
    yield from _hooked(provider("clip"))


def _prepared(image: Image.Image) -> PreparedImage:
    return PreparedImage(image, None, None, SentImage(source="test", format=None,
                                                      width=image.width, height=image.height))


# -- cancelling --------------------------------------------------------------------------
def test_request_cancel_stops_generation_at_the_next_token(provider: Callable[[str], str],
                                                          tokens: Forwards) -> None:
    cancel = threading.Event()
    tokens.at(3, cancel.set)

    with pytest.raises(mmsdk.CancelledError):
        _model(provider("endless_llava")).understand(
            UnderstandRequest(prompt="Describe.", max_tokens=LONG, cancel=cancel))
    assert tokens.count == 3


async def test_cancelled_await_stops_generation(provider: Callable[[str], str],
                                                tokens: Forwards) -> None:
    """Cancelling the task ends generation; the next call does not wait for it."""
    loop = asyncio.get_running_loop()
    under_way, cancelled = asyncio.Event(), threading.Event()
    tokens.at(3, lambda: loop.call_soon_threadsafe(under_way.set))
    tokens.at(4, lambda: cancelled.wait(GUARD))  # no token 5 before the await is cancelled
    task = asyncio.create_task(mmsdk.aunderstand("Describe.", max_tokens=LONG,
                                                 provider=provider("endless_llava")))
    await asyncio.wait_for(under_way.wait(), GUARD)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancelled.set()
    answer = await mmsdk.aunderstand("Describe.", max_tokens=3,
                                     provider=provider("endless_llava"))

    assert answer.usage.output_tokens == 3
    # the cancelled run stopped after the token under way (3 or 4) instead of running all 400
    assert tokens.count - 3 in (3, 4)


def test_request_cancel_stops_classification_before_the_next_batch(
        provider: Callable[[str], str], batches: Forwards, images: list[Image.Image]) -> None:
    cancel = threading.Event()
    batches.at(1, cancel.set)
    request = ClassifyRequest(images=[_prepared(image) for image in images],
                              labels=["cat", "dog"], options={"batch_size": 1}, cancel=cancel)

    with pytest.raises(mmsdk.CancelledError, match="classifying"):
        _model(provider("clip")).classify(request)
    assert batches.count == 1  # of three


# -- timeouts ----------------------------------------------------------------------------
def test_timeout_passing_mid_generation_stops_at_the_next_token(provider: Callable[[str], str],
                                                                tokens: Forwards) -> None:
    timeout = 2.0  # far more than three tiny tokens take; the third one outlasts it
    router = mmsdk.Router(provider("endless_llava"),
                          policy=mmsdk.Policy(timeout=timeout, retries=0))
    started = time.monotonic()
    tokens.at(3, lambda: time.sleep(max(0.0, started + timeout - time.monotonic()) + 0.1))

    with pytest.raises(mmsdk.ProviderTimeoutError, match="generating"):
        router.understand("Describe.", max_tokens=LONG)
    assert tokens.count == 3


def test_timeout_counts_the_load(provider: Callable[[str], str], fresh: None,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A load that outlasts the timeout ends the attempt before anything runs."""
    timeout = 0.3
    real = _loading.load_checkpoint
    counted: list[Forwards] = []

    def slow_load(*args: Any) -> Any:
        loaded = real(*args)
        counter = Forwards()
        loaded.model.register_forward_hook(counter)
        counted.append(counter)
        time.sleep(timeout + 0.2)  # the load takes longer than the whole attempt may
        return loaded

    monkeypatch.setattr(_loading, "load_checkpoint", slow_load)
    router = mmsdk.Router(provider("llava"), policy=mmsdk.Policy(timeout=timeout, retries=0))

    with pytest.raises(mmsdk.ProviderTimeoutError, match="loading"):
        router.understand("Describe.", max_tokens=2)
    assert [counter.count for counter in counted] == [0]  # loaded once, nothing generated


def test_call_queued_behind_a_busy_vlm_fails_at_its_timeout(provider: Callable[[str], str],
                                                            tokens: Forwards) -> None:
    busy_cancel, under_way, proceed = threading.Event(), threading.Event(), threading.Event()
    tokens.at(2, under_way.set)
    tokens.at(3, lambda: proceed.wait(GUARD))  # busy until the queued call has given up
    outcome: list[str] = []

    def busy() -> None:
        try:
            _model(provider("endless_llava")).understand(
                UnderstandRequest(prompt="busy", max_tokens=LONG, cancel=busy_cancel))
            outcome.append("finished")
        except mmsdk.CancelledError:
            outcome.append("cancelled")

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        assert under_way.wait(GUARD)
        router = mmsdk.Router(provider("endless_llava"),
                              policy=mmsdk.Policy(timeout=0.3, retries=0))
        with pytest.raises(mmsdk.ProviderTimeoutError, match="busy"):
            router.understand("queued", max_tokens=2)
        assert outcome == []  # the busy call was still generating when the queued one gave up
    finally:
        busy_cancel.set()
        proceed.set()
        thread.join(GUARD)
    assert outcome == ["cancelled"] and tokens.count == 3


@pytest.mark.parametrize("verb", ["classify", "embed"])
def test_call_queued_behind_a_busy_encoder_fails_at_its_timeout(
        verb: str, provider: Callable[[str], str], images: list[Image.Image]) -> None:
    loaded = _model(provider("clip")).loaded({})
    holding, release, order = threading.Event(), threading.Event(), []

    def hold() -> None:  # stands for a long batch running on the model
        with loaded.lock:
            holding.set()
            release.wait(GUARD)
            order.append("released")

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(GUARD)
        router = mmsdk.Router(provider("clip"), policy=mmsdk.Policy(timeout=0.3, retries=0))
        with pytest.raises(mmsdk.ProviderTimeoutError, match="busy"):
            if verb == "classify":
                router.classify(images[0], ["cat", "dog"])
            else:
                router.embed(texts=["a cat"])
        order.append("gave up")
    finally:
        release.set()
        thread.join(GUARD)
    assert order == ["gave up", "released"]


def test_a_passed_deadline_runs_nothing(provider: Callable[[str], str],
                                        tokens: Forwards) -> None:
    request = UnderstandRequest(prompt="Describe.", max_tokens=2, timeout=5.0,
                                deadline=time.monotonic() - 1.0)

    with pytest.raises(mmsdk.ProviderTimeoutError):
        _model(provider("endless_llava")).understand(request)
    assert tokens.count == 0
