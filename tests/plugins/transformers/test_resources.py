"""Loading: reuse across calls, bounded cache, close(), device/dtype, safetensors, threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from mmsdk_transformers import _loading
from mmsdk_transformers._cache import LoadedCache, shared_cache
from mmsdk_transformers._loading import Loaded
from PIL import Image
from safetensors.torch import load_file

import mmsdk

LABELS = ["cat", "dog"]


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch, fresh: None) -> list[tuple[str, Any]]:
    """Every real checkpoint load made during the test: (source, load options)."""
    calls: list[tuple[str, Any]] = []
    real = _loading.load_checkpoint

    def spy(checkpoint: Any, task: Any, options: Any, provider: str) -> Loaded:
        calls.append((checkpoint.source, options))
        return real(checkpoint, task, options, provider)

    monkeypatch.setattr(_loading, "load_checkpoint", spy)
    return calls


def test_second_call_reuses_the_loaded_model(loads: list[tuple[str, Any]],
                                             provider: Callable[[str], str],
                                             images: list[Image.Image]) -> None:
    first = mmsdk.classify(images[0], LABELS, provider=provider("clip"))
    second = mmsdk.classify(images[1], LABELS, provider=provider("clip"))
    mmsdk.embed(texts=["a cat"], provider=provider("clip"))
    mmsdk.understand("Hi", max_tokens=2, provider=provider("llava"))
    mmsdk.understand("Hi", max_tokens=2, provider=provider("llava"), stream=True).text()

    assert len(loads) == 2  # clip once, llava once
    assert first.scores != second.scores


def test_load_options_get_their_own_copy(loads: list[tuple[str, Any]],
                                         provider: Callable[[str], str],
                                         images: list[Image.Image]) -> None:
    full = mmsdk.classify(images[0], LABELS, provider=provider("clip"))
    half = mmsdk.classify(images[0], LABELS, provider=provider("clip"),
                          options={"dtype": "bfloat16", "device": "cpu"})
    mmsdk.classify(images[0], LABELS, provider=provider("clip"), options={"dtype": "bf16"})

    assert [options.dtype for _, options in loads] == ["float32", "bfloat16"]
    assert {options.device for _, options in loads} == {"cpu"}
    assert half.scores == pytest.approx(full.scores, abs=0.05)
    assert half.scores != full.scores  # bfloat16 really ran


def test_unload_closes_and_frees(loads: list[tuple[str, Any]], provider: Callable[[str], str],
                                 images: list[Image.Image]) -> None:
    mmsdk.classify(images[0], LABELS, provider=provider("clip"))
    mmsdk.understand("Hi", max_tokens=2, provider=provider("llava"))
    assert len(shared_cache) == 2

    mmsdk.unload(provider("clip"))
    assert len(shared_cache) == 1
    mmsdk.unload()
    assert len(shared_cache) == 0

    mmsdk.classify(images[0], LABELS, provider=provider("clip"))
    assert len(loads) == 3


def _fake(name: str) -> Loaded:
    return Loaded(model=name, processor=None, device="cpu", dtype=None, model_type="clip")


def test_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = LoadedCache(capacity=2)
    made: list[str] = []

    def get(key: str) -> Any:
        return cache.get(key, lambda: made.append(key) or _fake(key)).model

    get("a"), get("b"), get("a"), get("c")  # b is least recently used when c arrives
    assert len(cache) == 2
    get("a"), get("c"), get("b")
    assert made == ["a", "b", "c", "b"]
    assert cache.drop(lambda key: key == "b") == 1 and len(cache) == 1


def test_cache_loads_a_key_once_under_concurrent_calls() -> None:
    cache = LoadedCache(capacity=2)
    started = threading.Event()
    count = 0

    def slow() -> Loaded:
        nonlocal count
        count += 1
        started.wait(timeout=5)
        return _fake("x")

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(cache.get, "x", slow) for _ in range(4)]
        started.set()
        results = [future.result() for future in futures]

    assert count == 1
    assert all(result is results[0] for result in results)


def test_concurrent_calls_give_the_sequential_answers(provider: Callable[[str], str],
                                                      images: list[Image.Image]) -> None:
    def work(index: int) -> tuple[Any, str]:
        image = images[index % len(images)]
        scores = mmsdk.classify(image, LABELS, provider=provider("clip")).scores
        text = mmsdk.understand("Describe.", images=[image], max_tokens=6,
                                provider=provider("llava")).text
        return scores, text

    expected = [work(index) for index in range(len(images))]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(work, range(12)))

    for index, (scores, text) in enumerate(results):
        want_scores, want_text = expected[index % len(images)]
        assert scores == pytest.approx(want_scores, abs=1e-6)
        assert text == want_text


@pytest.fixture(scope="module")
def pickled_clip(checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CLIP with its weights as a pickled ``pytorch_model.bin`` only."""
    folder = tmp_path_factory.mktemp("pickled") / "clip"
    folder.mkdir()
    for entry in checkpoints["clip"].iterdir():
        if entry.name != "model.safetensors":
            (folder / entry.name).write_bytes(entry.read_bytes())
    torch.save(load_file(checkpoints["clip"] / "model.safetensors"), folder / "pytorch_model.bin")
    return folder


def test_pickled_weights_need_an_explicit_opt_in(pickled_clip: Path,
                                                 provider: Callable[[str], str],
                                                 images: list[Image.Image]) -> None:
    with pytest.raises(mmsdk.ProviderUnavailableError, match="allow_pickle"):
        mmsdk.classify(images[0], LABELS, provider=f"transformers:{pickled_clip}")

    allowed = mmsdk.classify(images[0], LABELS, provider=f"transformers:{pickled_clip}",
                             options={"allow_pickle": True})
    safe = mmsdk.classify(images[0], LABELS, provider=provider("clip"))
    assert allowed.scores == pytest.approx(safe.scores, abs=1e-6)


@pytest.mark.parametrize(("options", "error"), [
    ({"dtype": "int3"}, mmsdk.InvalidInputError),
    ({"device": "banana"}, mmsdk.InvalidInputError),
    ({"allow_pickle": "yes"}, mmsdk.InvalidInputError),
    ({"batch_size": 0}, mmsdk.InvalidInputError),
    ({"nonsense": 1}, mmsdk.InvalidInputError),
], ids=["dtype", "device", "allow_pickle", "batch_size", "unknown-key"])
def test_bad_options_are_caller_mistakes(options: dict[str, Any], error: type[Exception],
                                         provider: Callable[[str], str],
                                         images: list[Image.Image]) -> None:
    with pytest.raises(error):
        mmsdk.classify(images[0], LABELS, provider=provider("clip"), options=options)


def test_device_map_loads_through_accelerate(loads: list[tuple[str, Any]],
                                             provider: Callable[[str], str],
                                             images: list[Image.Image]) -> None:
    plain = mmsdk.understand("Describe.", images=images[:1], max_tokens=6,
                             provider=provider("llava"))
    mapped = mmsdk.understand("Describe.", images=images[:1], max_tokens=6,
                              provider=provider("llava"), options={"device_map": "auto"})

    assert mapped.text == plain.text
    assert [options.device_map for _, options in loads] == [None, "auto"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only answer")
def test_asking_for_an_absent_gpu_says_how_to_fix_it(provider: Callable[[str], str],
                                                     images: list[Image.Image]) -> None:
    with pytest.raises(mmsdk.ProviderUnavailableError, match="cuda") as caught:
        mmsdk.classify(images[0], LABELS, provider=provider("clip"), options={"device": "cuda"})

    assert caught.value.fix


def test_a_checkpoint_is_served_only_for_its_task(provider: Callable[[str], str],
                                                  images: list[Image.Image]) -> None:
    with pytest.raises(mmsdk.CapabilityError):
        mmsdk.understand("Hi", images=images[:1], provider=provider("clip"))
    with pytest.raises(mmsdk.CapabilityError):
        mmsdk.classify(images[0], LABELS, provider=provider("llava"))


def test_defaults_on_this_machine_are_cpu_float32() -> None:
    assert _loading.resolve_device(None, "p") == ("cuda" if torch.cuda.is_available() else
                                                  "mps" if torch.backends.mps.is_available()
                                                  else "cpu")
    assert _loading.default_dtype("cpu", "vlm") == "float32"
    assert _loading.default_dtype("mps", "contrastive") == "float16"


def test_preload_loads_the_weights_before_the_first_call(
        loads: list[tuple[str, Any]], provider: Callable[[str], str],
        images: list[Image.Image]) -> None:
    assert mmsdk.preload(provider("clip")) == [provider("clip")]
    assert len(loads) == 1
    mmsdk.classify(images[0], LABELS, provider=provider("clip"))
    mmsdk.embed(texts=["a cat"], provider=provider("clip"))
    assert len(loads) == 1
