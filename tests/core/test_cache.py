"""The result cache: hits make no call, only repeatable calls are kept, bounded, shared."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import BaseModel

import mmsdk
from mmsdk import _settings
from mmsdk._types import GenerateResult, Price
from mmsdk.testing import TestProvider


@pytest.fixture(autouse=True)
def _settings_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_settings, "_settings", _settings._settings)  # restored afterwards


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def cloud() -> Iterator[TestProvider]:
    with TestProvider("cloud", local=False) as provider:
        provider.info = provider.info.model_copy(update={"price": Price(
            input_per_mtok=1e6, output_per_mtok=1e6)})
        yield provider


def test_a_hit_returns_the_stored_result_without_a_call(cloud: TestProvider,
                                                        folder: Path) -> None:
    router = mmsdk.Router("cloud:m", cache=folder)
    first = router.understand("one two", temperature=0)
    again = router.understand("one two", temperature=0)
    assert len(cloud.calls) == 1
    assert (first.cached, again.cached) == (False, True)
    assert again.text == first.text and again.provider == "cloud:m"
    assert [(a.provider, a.outcome) for a in again.attempts] == [("cloud:m", "ok")]
    assert first.usage.cost_usd == 2 + 5 and again.usage.cost_usd == 0.0  # nothing billed
    assert again.usage.output_tokens == first.usage.output_tokens


async def test_async_calls_hit_and_fill_the_same_cache(cloud: TestProvider, folder: Path) -> None:
    router = mmsdk.Router("cloud:m", cache=folder)
    stored = await router.aembed(texts=["a cat"])
    assert not stored.cached
    assert router.embed(texts=["a cat"]).cached  # stored by the async call, read by sync
    again = await router.aembed(texts=["a cat"])
    assert again.cached and len(cloud.calls) == 1
    assert again.text_vectors is not None and stored.text_vectors is not None
    assert again.text_vectors.dtype == stored.text_vectors.dtype
    assert np.array_equal(again.text_vectors, stored.text_vectors)


def test_configure_cache_applies_to_module_level_calls(fake: TestProvider, folder: Path) -> None:
    mmsdk.configure(cache=str(folder))
    results = [mmsdk.generate("a red fox", provider="fake:m", seed=7, n=2) for _ in range(2)]
    assert [r.cached for r in results] == [False, True] and len(fake.calls) == 1
    for made, kept in zip(results[0].images, results[1].images, strict=True):
        assert (kept.mode, kept.size, kept.tobytes()) == (made.mode, made.size, made.tobytes())
    mmsdk.configure(cache=None)
    assert not mmsdk.generate("a red fox", provider="fake:m", seed=7, n=2).cached


def test_images_round_trip_exactly(folder: Path) -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 53, 4), np.uint8),
                            "RGBA")
    cache = mmsdk.Cache(folder)
    cache.set("k", GenerateResult(images=[noise, noise.convert("L")], seed=3))
    back = cache.get("k")
    assert [(i.mode, i.size, i.tobytes()) for i in back.images] == \
        [(i.mode, i.size, i.tobytes()) for i in (noise, noise.convert("L"))]


@pytest.mark.parametrize(("call", "cached"), [
    (lambda: mmsdk.understand("hi", provider="cloud:m", temperature=0), True),
    (lambda: mmsdk.understand("hi", provider="cloud:m"), False),
    (lambda: mmsdk.understand("hi", provider="cloud:m", temperature=0.7), False),
    (lambda: mmsdk.understand("hi", provider="fake:m"), True),  # local, greedy
    (lambda: mmsdk.understand("hi", provider="fake:m", temperature=0.7), False),
    (lambda: mmsdk.generate("hi", provider="cloud:m", seed=1), True),
    (lambda: mmsdk.generate("hi", provider="fake:m"), False),
    (lambda: mmsdk.classify(Image.new("RGB", (8, 8)), ["a", "b"], provider="fake:m"), True),
    (lambda: mmsdk.classify(Image.new("RGB", (8, 8)), ["a", "b"], provider="cloud:m"), False),
    (lambda: mmsdk.embed(texts=["hi"], provider="cloud:m"), True),
], ids=["cloud-temperature-0", "cloud-default-temperature", "cloud-sampling", "local-greedy",
        "local-sampling", "generate-seed", "generate-no-seed", "classify-local",
        "classify-cloud", "embed"])
def test_only_repeatable_calls_are_cached(call: object, cached: bool, cloud: TestProvider,
                                          fake: TestProvider, folder: Path) -> None:
    mmsdk.configure(cache=folder)
    assert callable(call)
    call()
    second = call()
    assert second.cached is cached
    assert len(cloud.calls) + len(fake.calls) == (1 if cached else 2)


def test_streams_are_never_cached(cloud: TestProvider, folder: Path) -> None:
    router = mmsdk.Router("cloud:m", cache=folder)
    for _ in range(2):
        stream = router.understand("hi", temperature=0, stream=True)
        assert "".join(stream) and not stream.result.cached
    assert not router.understand("hi", temperature=0).cached  # a stream stored nothing
    assert len(cloud.calls) == 3


class Pet(BaseModel):
    kind: str
    legs: int


@pytest.mark.parametrize("change", [
    {"prompt": "other"}, {"system": "be brief"}, {"max_tokens": 5}, {"options": {"echo": 1}},
    {"images": [Image.new("RGB", (8, 8), (1, 2, 4))]}, {"schema": Pet},
], ids=["prompt", "system", "max_tokens", "options", "image-pixels", "schema"])
def test_the_key_covers_inputs_and_options(change: dict[str, object], cloud: TestProvider,
                                           folder: Path) -> None:
    cloud.answer = '{"kind": "cat", "legs": 4}'
    router = mmsdk.Router("cloud:m", cache=folder)
    base: dict[str, object] = {"prompt": "hi", "images": [Image.new("RGB", (8, 8), (1, 2, 3))],
                               "temperature": 0}
    router.understand(**base)  # type: ignore[arg-type]
    assert router.understand(**base).cached  # type: ignore[arg-type]
    assert not router.understand(**{**base, **change}).cached  # type: ignore[arg-type]
    assert len(cloud.calls) == 2


def test_the_key_covers_the_provider_and_labels(fake: TestProvider, folder: Path) -> None:
    router = mmsdk.Router(["fake:m"], cache=folder)
    picture = Image.new("RGB", (8, 8))
    router.classify(picture, ["cat", "dog"])
    assert router.classify(picture, ["cat", "dog"]).cached
    assert not router.classify(picture, ["cat", "cow"]).cached
    assert not mmsdk.Router("fake:other", cache=folder).classify(picture, ["cat", "dog"]).cached


def test_schema_answers_come_back_as_schema_objects(cloud: TestProvider, folder: Path) -> None:
    class Local(BaseModel):  # defined in a function: pickle cannot store it by reference
        kind: str

    cloud.answer = '{"kind": "cat"}'
    router = mmsdk.Router("cloud:m", cache=folder)
    router.understand("what?", schema=Local, temperature=0)
    again = router.understand("what?", schema=Local, temperature=0)
    assert again.cached and isinstance(again.data, Local) and again.data.kind == "cat"


def test_a_cached_first_candidate_ends_the_route_without_any_request(folder: Path) -> None:
    with TestProvider("first", local=False) as first, \
            TestProvider("second", local=False) as second:
        first.failures = [mmsdk.AuthenticationError]
        route = mmsdk.Router(["first:m", "second:m"], cache=folder)
        assert route.understand("hi", temperature=0).provider == "second:m"  # stored for second
        mmsdk.Router("first:m", cache=folder).understand("hi", temperature=0)  # stored for first
        calls = len(first.calls) + len(second.calls)
        again = route.understand("hi", temperature=0)
        assert (again.provider, again.cached) == ("first:m", True)
        assert len(first.calls) + len(second.calls) == calls


def test_the_size_bound_evicts_the_least_recently_used(fake: TestProvider, folder: Path) -> None:
    cache = mmsdk.Cache(folder, size_limit=300_000)
    router = mmsdk.Router("fake:m", cache=cache)
    for seed in range(30):  # each a 200 x 200 RGB image: 120 kB pickled
        router.generate("noise", seed=seed, width=200, height=200)
    assert cache.volume() <= 300_000
    assert router.generate("noise", seed=29, width=200, height=200).cached
    assert not router.generate("noise", seed=0, width=200, height=200).cached
    assert len(fake.calls) == 31


def test_two_processes_share_one_cache(folder: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        import mmsdk
        from mmsdk.testing import TestProvider
        with TestProvider("fake") as fake:
            router = mmsdk.Router("fake:m", cache={str(folder)!r})
            hits = sum(router.embed(texts=[f"text {{i}}"]).cached for i in range(60))
            print(hits, len(fake.calls))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    workers = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        hits, calls = map(int, out.split())
        assert hits + calls == 60
    cache = mmsdk.Cache(folder)
    assert len(cache) == 60  # both wrote to one store, nothing lost or torn
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env, timeout=120, check=True)
    assert finished.stdout.split() == ["60", "0"]  # a third process: every call a hit


def test_an_unusable_cache_is_a_miss_never_a_failure(cloud: TestProvider, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    router = mmsdk.Router("cloud:m", cache=blocker / "cache")  # cannot be created
    with caplog.at_level(logging.WARNING, logger="mmsdk.cache"):
        results = [router.understand("hi", temperature=0) for _ in range(2)]
    assert [r.cached for r in results] == [False, False] and len(cloud.calls) == 2
    assert "could not be" in caplog.text


@pytest.mark.parametrize(("make", "match"), [
    (lambda: mmsdk.Router("fake:m", cache=5), "Router cache must be a folder path"),
    (lambda: mmsdk.configure(cache=["/tmp"]), "Setting cache must be a folder path"),
    (lambda: mmsdk.Cache("/tmp/x", size_limit=0), "size_limit"),
    (lambda: mmsdk.Cache(""), "folder path"),
    (lambda: mmsdk.Cache(__file__), "is a file, not a folder"),
], ids=["router", "configure", "size", "empty-path", "a-file"])
def test_bad_cache_settings_are_invalid_input(make: object, match: str) -> None:
    assert callable(make)
    with pytest.raises(mmsdk.InvalidInputError, match=match):
        make()


def test_diskcache_is_imported_only_when_a_cache_is_used(folder: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        import mmsdk
        mmsdk.configure(cache={str(folder)!r})
        from mmsdk.testing import TestProvider
        with TestProvider("fake"):
            mmsdk.understand("hi", provider="fake:m", temperature=0.5)  # not repeatable
            before = "diskcache" in sys.modules
            mmsdk.understand("hi", provider="fake:m")
            print(before, "diskcache" in sys.modules)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    assert done.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("run", ["sync", "async"])
async def test_hedged_routes_hit_the_cache_too(run: str, folder: Path) -> None:
    with TestProvider("first", local=False) as first, \
            TestProvider("second", local=False) as second:
        router = mmsdk.Router(["first:m", "second:m"], cache=folder,
                              policy=mmsdk.Policy(hedge_after=5.0))
        results = [await router.aembed(texts=["hi"]) if run == "async"
                   else router.embed(texts=["hi"]) for _ in range(2)]
        assert [(r.provider, r.cached) for r in results] == [("first:m", False),
                                                             ("first:m", True)]
        assert (len(first.calls), len(second.calls)) == (1, 0)


def test_a_hit_reports_no_tokens_to_tracing(cloud: TestProvider, folder: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from mmsdk import _observe

    exporter, tracing = InMemorySpanExporter(), TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(_observe, "_tracer", tracing.get_tracer("mmsdk"))
    router = mmsdk.Router("cloud:m", cache=folder)
    for _ in range(2):
        router.understand("one two", temperature=0)
    made, served = [span for span in exporter.get_finished_spans() if span.name == "chat m"]
    assert made.attributes is not None and served.attributes is not None
    assert made.attributes["gen_ai.usage.input_tokens"] == 2
    assert "gen_ai.usage.input_tokens" not in served.attributes  # nothing was consumed
    tracing.shutdown()


def test_a_native_video_is_keyed_on_its_content_read_once_per_version(tmp_path: Path) -> None:
    from types import SimpleNamespace
    from typing import Any

    from mmsdk._cache import _file_digest, cache_key
    from mmsdk._types import Capability
    from mmsdk._video import VideoInput

    class Request(BaseModel):
        prompt: str = "What happens?"
        temperature: float = 0.0
        video: Any = None

    resolved = SimpleNamespace(provider="cloud:m", credential=None,
                               info=SimpleNamespace(local=False))

    def key(path: Path) -> str | None:
        video = VideoInput(path=path, mime_type="video/mp4", size=path.stat().st_size)
        return cache_key(Capability.UNDERSTAND,
                         SimpleNamespace(resolved=resolved, request=Request(video=video)))

    clip, copy = tmp_path / "clip.mp4", tmp_path / "copy.mp4"
    clip.write_bytes(b"frames one")
    copy.write_bytes(b"frames one")
    _file_digest.cache_clear()
    first = key(clip)
    assert key(clip) == first and _file_digest.cache_info().misses == 1  # read once
    assert key(copy) == first  # the content is keyed, not the name
    clip.write_bytes(b"frames two")  # a new version of the same length
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 1_000_000))
    assert key(clip) != first
