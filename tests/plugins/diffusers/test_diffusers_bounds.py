"""Timeouts and cancellation: bounded from the start of the attempt, stopped at the next step.

Steps are counted with a forward hook on the tiny UNet (one forward per step:
classifier-free guidance runs both halves in one batch), so every assertion is
about counts and order, never about how fast this machine is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from forwards import Forwards as Steps
from forwards import counting
from forwards import loaded_model as _model
from mmsdk_diffusers import GenerationCancelledError
from mmsdk_diffusers import _pipelines as pipelines

import mmsdk
from mmsdk.plugin import GenerateRequest

SIZE = {"width": 64, "height": 64}
LONG = 400  # steps no test waits for: every long run here is stopped early
GUARD = 60.0  # seconds before a wait that should end at once is declared hung


@pytest.fixture
def steps(provider: Callable[[str], str]) -> Iterator[Steps]:
    """A step counter on the (loaded) tiny SD 1.5 UNet."""
    with counting(_model(provider("sd15")).pipeline().unet) as counter:
        yield counter


def _request(**values: Any) -> GenerateRequest:
    return GenerateRequest(prompt="a", seed=0, **SIZE, **values)


# -- cancelling --------------------------------------------------------------------------
def test_request_cancel_stops_at_the_next_step(provider: Callable[[str], str],
                                               steps: Steps) -> None:
    cancel = threading.Event()
    steps.at(3, cancel.set)

    with pytest.raises(mmsdk.CancelledError, match="step 3") as caught:
        _model(provider("sd15")).generate(_request(steps=LONG, cancel=cancel))

    assert isinstance(caught.value, GenerationCancelledError)
    assert steps.count == 3


def test_cancel_event_option_stops_at_the_next_step(provider: Callable[[str], str],
                                                    steps: Steps) -> None:
    event = threading.Event()
    steps.at(2, event.set)

    with pytest.raises(GenerationCancelledError, match="step 2"):
        mmsdk.generate("a", provider=provider("sd15"), steps=LONG, seed=0,
                       options={"cancel_event": event}, **SIZE)
    assert steps.count == 2


def test_either_cancel_stops_it(provider: Callable[[str], str], steps: Steps) -> None:
    """options['cancel_event'] and routing's request.cancel are both watched."""
    mine, routing = threading.Event(), threading.Event()
    steps.at(2, routing.set)

    with pytest.raises(GenerationCancelledError, match="step 2"):
        _model(provider("sd15")).generate(_request(steps=LONG, cancel=routing,
                                                   options={"cancel_event": mine}))
    assert steps.count == 2


async def test_cancelled_await_stops_the_work(provider: Callable[[str], str],
                                              steps: Steps) -> None:
    """Cancelling the task ends the denoising loop; the next call does not wait for it."""
    loop = asyncio.get_running_loop()
    under_way, cancelled = asyncio.Event(), threading.Event()
    steps.at(3, lambda: loop.call_soon_threadsafe(under_way.set))
    steps.at(4, lambda: cancelled.wait(GUARD))  # no step 5 before the await is cancelled
    task = asyncio.create_task(mmsdk.agenerate("a", provider=provider("sd15"), steps=LONG,
                                               seed=0, **SIZE))
    await asyncio.wait_for(under_way.wait(), GUARD)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancelled.set()
    result = await mmsdk.agenerate("b", provider=provider("sd15"), steps=2, seed=0, **SIZE)
    both = steps.count
    await mmsdk.agenerate("b", provider=provider("sd15"), steps=2, seed=0, **SIZE)
    per_call = steps.count - both  # PNDM runs one forward more than its steps

    assert len(result.images) == 1
    # the cancelled run stopped after the step under way (3 or 4) instead of running all 400
    assert both - per_call in (3, 4)


# -- timeouts ----------------------------------------------------------------------------
def test_timeout_passing_mid_loop_stops_at_the_next_step(provider: Callable[[str], str],
                                                         steps: Steps) -> None:
    timeout = 2.0  # far more than three tiny steps take; the third one outlasts it
    router = mmsdk.Router(provider("sd15"), policy=mmsdk.Policy(timeout=timeout, retries=0))
    started = time.monotonic()
    steps.at(3, lambda: time.sleep(max(0.0, started + timeout - time.monotonic()) + 0.1))

    with pytest.raises(mmsdk.ProviderTimeoutError, match="step 3"):
        router.generate("a", steps=LONG, seed=0, **SIZE)
    assert steps.count == 3


def test_timeout_counts_the_load(provider: Callable[[str], str], checkpoints: Any,
                                 monkeypatch: pytest.MonkeyPatch, fresh: None) -> None:
    """A load that outlasts the timeout ends the attempt before its first step."""
    timeout = 0.3
    real = pipelines.load_pipeline
    counted: list[Steps] = []

    def slow_load(source: Any, settings: Any) -> Any:
        entry = real(source, settings)
        counter = Steps()
        entry.pipe.unet.register_forward_hook(counter)
        counted.append(counter)
        time.sleep(timeout + 0.2)  # the load takes longer than the whole attempt may
        return entry

    monkeypatch.setattr(pipelines, "load_pipeline", slow_load)
    router = mmsdk.Router(provider("sd15"), policy=mmsdk.Policy(timeout=timeout, retries=0))

    with pytest.raises(mmsdk.ProviderTimeoutError, match="loading"):
        router.generate("a", steps=2, seed=0, **SIZE)
    assert [counter.count for counter in counted] == [0]  # loaded once, no step run


def test_call_waiting_for_another_calls_load_fails_at_its_timeout(
        provider: Callable[[str], str], monkeypatch: pytest.MonkeyPatch, fresh: None) -> None:
    real = pipelines.load_pipeline
    loading, finish = threading.Event(), threading.Event()
    order: list[str] = []

    def held_load(source: Any, settings: Any) -> Any:
        loading.set()
        finish.wait(GUARD)  # the first call's load lasts until the test lets it end
        order.append("loaded")
        return real(source, settings)

    monkeypatch.setattr(pipelines, "load_pipeline", held_load)
    first = threading.Thread(target=lambda: mmsdk.generate("a", provider=provider("sd15"),
                                                           steps=1, seed=0, **SIZE))
    first.start()
    try:
        assert loading.wait(GUARD)
        router = mmsdk.Router(provider("sd15"), policy=mmsdk.Policy(timeout=0.3, retries=0))
        with pytest.raises(mmsdk.ProviderTimeoutError, match="busy"):
            router.generate("b", steps=1, seed=0, **SIZE)
        order.append("gave up")
    finally:
        finish.set()
        first.join(GUARD)
    assert order == ["gave up", "loaded"]


def test_call_queued_behind_a_busy_model_fails_at_its_timeout(provider: Callable[[str], str],
                                                              steps: Steps) -> None:
    busy_cancel, under_way, proceed = threading.Event(), threading.Event(), threading.Event()
    steps.at(2, under_way.set)
    steps.at(3, lambda: proceed.wait(GUARD))  # busy until the queued call has given up
    outcome: list[str] = []

    def busy() -> None:
        try:
            mmsdk.generate("busy", provider=provider("sd15"), steps=LONG, seed=0,
                           options={"cancel_event": busy_cancel}, **SIZE)
            outcome.append("finished")
        except GenerationCancelledError:
            outcome.append("cancelled")

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        assert under_way.wait(GUARD)
        router = mmsdk.Router(provider("sd15"), policy=mmsdk.Policy(timeout=0.3, retries=0))
        with pytest.raises(mmsdk.ProviderTimeoutError, match="busy"):
            router.generate("queued", steps=2, seed=0, **SIZE)
        assert outcome == []  # the busy call was still running when the queued one gave up
    finally:
        busy_cancel.set()
        proceed.set()
        thread.join(GUARD)
    assert outcome == ["cancelled"] and steps.count == 3


async def test_async_call_queued_behind_a_busy_model_fails_at_its_timeout(
        provider: Callable[[str], str], steps: Steps) -> None:
    """Async calls share the model's one worker thread: a queued one still gives up in time."""
    loop = asyncio.get_running_loop()
    busy_cancel, under_way, proceed = threading.Event(), asyncio.Event(), threading.Event()
    steps.at(2, lambda: loop.call_soon_threadsafe(under_way.set))
    steps.at(3, lambda: proceed.wait(GUARD))  # busy until the queued call has given up
    busy = asyncio.create_task(mmsdk.agenerate("busy", provider=provider("sd15"), steps=LONG,
                                               seed=0, options={"cancel_event": busy_cancel},
                                               **SIZE))
    try:
        await asyncio.wait_for(under_way.wait(), GUARD)
        router = mmsdk.Router(provider("sd15"), policy=mmsdk.Policy(timeout=0.3, retries=0))
        with pytest.raises(mmsdk.ProviderTimeoutError):
            await router.agenerate("queued", steps=2, seed=0, **SIZE)
        assert not busy.done()
    finally:
        busy_cancel.set()
        proceed.set()
    with pytest.raises(GenerationCancelledError):
        await asyncio.wait_for(busy, GUARD)
    assert steps.count == 3


def test_a_passed_deadline_runs_nothing(provider: Callable[[str], str], steps: Steps) -> None:
    request = _request(steps=2, timeout=5.0, deadline=time.monotonic() - 1.0)

    with pytest.raises(mmsdk.ProviderTimeoutError):
        _model(provider("sd15")).generate(request)
    assert steps.count == 0


# -- unloading ---------------------------------------------------------------------------
async def test_aunload_does_not_block_the_event_loop(provider: Callable[[str], str]) -> None:
    """Releasing a pipeline waits for the call using it; the loop keeps running meanwhile."""
    mmsdk.generate("warm", provider=provider("sd15"), steps=1, seed=0, **SIZE)
    entry = _model(provider("sd15"))._loaded({})
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:  # stands for a generation still running on the pipeline
        with entry.lock:
            holding.set()
            release.wait(GUARD)
            order.append("released")

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(GUARD)
    unloading = asyncio.create_task(mmsdk.aunload(provider("sd15")))
    await asyncio.sleep(0.05)
    order.append("loop ran")
    assert not unloading.done()
    release.set()
    await asyncio.wait_for(unloading, GUARD)
    thread.join(GUARD)

    assert order == ["loop ran", "released"]
    assert entry.pipe is None
