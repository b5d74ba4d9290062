"""Registration, presets, describe() and the availability check (fast, no network)."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mmsdk_transformers
import pytest
from mmsdk_transformers import _checkpoint
from mmsdk_transformers._presets import ALIASES, default_models
from PIL import Image

import mmsdk
from mmsdk._registry import get_registry
from mmsdk.plugin import Capability, capabilities_of

LABELS = ["cat", "dog"]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Any attempt to open a connection is recorded and refused."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts


def test_importing_mmsdk_and_registering_imports_no_torch() -> None:
    code = ("import sys, mmsdk\n"
            "from mmsdk._registry import get_registry\n"
            "registry = get_registry()\n"
            "assert 'transformers' in registry.specs, registry.failures\n"
            "heavy = lambda: [m for m in ('torch', 'transformers', 'huggingface_hub')\n"
            "                 if m in sys.modules]\n"
            "print(heavy())\n"
            "registry.resolve('local:clip').info, registry.resolve('local:clip').availability()\n"
            "print(heavy())\n")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60).stdout
    # Registering imports nothing; describing and checking read the hub cache, no more.
    assert output.split() == ["[]", "['huggingface_hub']"]


def test_presets_are_registered_as_aliases() -> None:
    registry = get_registry()

    for alias, repo_id in ALIASES.items():
        assert registry.aliases[alias] == f"transformers:{repo_id}"
    assert {"local:clip", "local:siglip", "local:llava"} <= set(ALIASES)


@pytest.mark.parametrize(("gpu", "classify", "understand"), [
    (True, "openai/clip-vit-large-patch14", "llava-hf/llava-v1.6-mistral-7b-hf"),
    (False, "openai/clip-vit-base-patch32", "llava-hf/llava-interleave-qwen-0.5b-hf"),
], ids=["gpu", "cpu"])
def test_default_models_follow_the_hardware(gpu: bool, classify: str, understand: str) -> None:
    defaults = default_models(gpu)

    assert defaults[Capability.CLASSIFY] == defaults[Capability.EMBED] == classify
    assert defaults[Capability.UNDERSTAND] == understand


def test_default_route_runs_the_default_checkpoints_from_the_hub_cache(
        hub_cache: Path, images: list[Image.Image]) -> None:
    defaults = get_registry().specs["transformers"].default_models

    # No keys in tests: the cloud providers are skipped and the local default answers.
    classified = mmsdk.classify(images[0], LABELS)
    embedded = mmsdk.embed(texts=["a cat"])
    answer = mmsdk.understand("Describe.", images=images[:1], max_tokens=4)

    assert classified.provider == f"transformers:{defaults[Capability.CLASSIFY]}"
    assert embedded.provider == f"transformers:{defaults[Capability.EMBED]}"
    assert answer.provider == f"transformers:{defaults[Capability.UNDERSTAND]}"
    assert sum(classified.scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert answer.usage.output_tokens


@pytest.mark.parametrize(("name", "capabilities"), [
    ("clip", {"classify", "embed"}), ("siglip", {"classify", "embed"}),
    ("llava", {"understand"}), ("llava_next", {"understand"}),
])
def test_describe_reads_the_task_from_config(name: str, capabilities: set[str],
                                             checkpoints: dict[str, Path]) -> None:
    info = mmsdk_transformers.describe(str(checkpoints[name]))
    served_by = mmsdk_transformers.model_class(str(checkpoints[name]))
    assert {c.value for c in capabilities_of(served_by)} == capabilities
    assert info.local and not info.limits.formats  # PIL images in, nothing re-encoded


def test_describe_knows_the_presets_before_download() -> None:
    assert mmsdk_transformers.describe("llava-hf/llava-v1.6-mistral-7b-hf").supports >= {
        "stream", "schema", "system", "max_tokens", "temperature"}
    assert Capability.CLASSIFY in capabilities_of(mmsdk_transformers.model_class(
        "google/siglip-so400m-patch14-384"))


@pytest.fixture
def loader_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every call of the plugin's weight loader (where the hub client would retry for ~20 s)."""
    from mmsdk_transformers import _loading

    calls: list[Any] = []
    real = _loading.load_checkpoint
    monkeypatch.setattr(_loading, "load_checkpoint",
                        lambda *args: calls.append(args) or real(*args))
    return calls


def test_missing_weights_offline_fail_fast_without_a_request(no_network: list[Any],
                                                             loader_calls: list[Any],
                                                             images: list[Image.Image]) -> None:
    with pytest.raises(mmsdk.ProviderUnavailableError) as caught:
        mmsdk.classify(images[0], LABELS, provider="transformers:nobody/absent-clip")

    assert loader_calls == []  # refused by the availability check, before any hub client
    assert no_network == []
    assert "hf download nobody/absent-clip" in caught.value.fix
    assert "HF_HUB_OFFLINE" in caught.value.message


def test_missing_weights_online_with_the_hub_unreachable_fail_fast(
        monkeypatch: pytest.MonkeyPatch, loader_calls: list[Any],
        images: list[Image.Image]) -> None:
    from huggingface_hub import constants

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now: connections are refused at once
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)

    connects: list[Any] = []
    real_connect = socket.create_connection
    monkeypatch.setattr(socket, "create_connection",
                        lambda address, *args, **kwargs: connects.append(address)
                        or real_connect(address, *args, **kwargs))

    with pytest.raises(mmsdk.ProviderUnavailableError, match="cannot be reached") as caught:
        mmsdk.classify(images[0], LABELS, provider="transformers:nobody/absent-clip")

    # one probe of the hub, no client retry loop: the loader never ran
    assert connects == [("127.0.0.1", port)]
    assert loader_calls == []
    assert "hf download" in caught.value.fix


def test_cached_repo_is_available_offline(hub_cache: Path) -> None:
    assert _checkpoint.check("openai/clip-vit-large-patch14").ok
    assert not _checkpoint.check("openai/clip-vit-huge-patch14").ok


@pytest.mark.parametrize("layout", ["missing", "no-config"])
def test_local_folder_must_hold_a_config(layout: str, tmp_path: Path,
                                         images: list[Image.Image]) -> None:
    folder = tmp_path / "model"
    if layout == "no-config":
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"")

    with pytest.raises(mmsdk.ProviderUnavailableError) as caught:
        mmsdk.classify(images[0], LABELS, provider=f"transformers:{folder}")

    assert ("config.json" if layout == "no-config" else "does not exist") in caught.value.message


def test_torch_missing_makes_it_unavailable_with_the_install_command(
        monkeypatch: pytest.MonkeyPatch, checkpoints: dict[str, Path]) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))

    availability = _checkpoint.check(str(checkpoints["clip"]))

    assert not availability.ok
    assert availability.fix == "pip install 'mmsdk[local]'"


def test_an_import_error_names_the_package_to_install() -> None:
    from mmsdk_transformers._errors import translate

    error = translate(ImportError("Package `num2words` is required. Install it with `pip install "
                                  "num2words`."), "transformers:x", loading=True)

    assert isinstance(error, mmsdk.ProviderUnavailableError)
    assert error.fix == "pip install num2words"


def test_a_checkpoint_of_another_kind_is_refused_before_its_weights_load(
        tmp_path: Path, images: list[Image.Image]) -> None:
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))

    with pytest.raises(mmsdk.CapabilityError, match="image-text-to-text"):
        mmsdk.understand("Hi", provider=f"transformers:{folder}")


def test_local_paths_and_repo_ids_are_told_apart(checkpoints: dict[str, Path]) -> None:
    assert _checkpoint.locate("openai/clip-vit-base-patch32").path is None
    assert _checkpoint.locate(str(checkpoints["clip"])).path == checkpoints["clip"]
    assert _checkpoint.locate("./models/clip").local
    assert _checkpoint.locate("~/models/clip").local
