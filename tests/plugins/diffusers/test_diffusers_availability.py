"""Registration, availability checks and error mapping: cheap, fast, and saying what to do."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mmsdk_diffusers
import pytest
from hub_cache import seed_hub_cache
from mmsdk_diffusers._errors import _translate
from mmsdk_diffusers._source import availability, parse_source

import mmsdk
from mmsdk._registry import get_registry
from mmsdk.plugin import Capability

SIZE = {"width": 64, "height": 64}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record (and refuse) every outgoing connection attempt."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", lambda self, address: refuse(address))
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def test_import_is_light() -> None:
    code = ("import sys, mmsdk, mmsdk_diffusers; from mmsdk._registry import get_registry; "
            "r = get_registry(); r.resolve('local:sdxl').info; "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'cv2') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("alias, target", [
    ("local:sdxl", "diffusers:stabilityai/stable-diffusion-xl-base-1.0"),
    ("local:flux-schnell", "diffusers:black-forest-labs/FLUX.1-schnell"),
    ("local:sd15", "diffusers:stable-diffusion-v1-5/stable-diffusion-v1-5"),
    ("local:sd-turbo", "diffusers:stabilityai/sd-turbo"),
], ids=["sdxl", "flux-schnell", "sd15", "sd-turbo"])
def test_aliases(alias: str, target: str) -> None:
    assert get_registry().resolve(alias).provider == target


def test_describe_and_defaults() -> None:
    resolved = get_registry().resolve("diffusers", Capability.GENERATE)
    assert resolved.model == mmsdk_diffusers.DEFAULT_MODEL == "stabilityai/sd-turbo"
    info = resolved.info
    assert info.local and info.capabilities == {Capability.GENERATE}
    assert info.options == {"controlnet", "ip_adapter", "device", "dtype", "variant",
                            "cpu_offload", "allow_pickle", "cancel_event", "lora",
                            "lora_scale"}
    assert {"control_image", "reference_image", "scheduler", "mask", "n"} <= info.supports
    assert not info.limits.formats  # PIL images in process


def test_folder_checks(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    assert availability(str(checkpoints["sd15"])).ok
    missing = availability(str(tmp_path / "nope"))
    assert not missing.ok and "does not exist" in missing.reason
    (tmp_path / "empty").mkdir()
    empty = availability(str(tmp_path / "empty"))
    assert not empty.ok and "model_index.json" in empty.reason


def test_cached_repo_is_available_without_network(no_network: list[Any]) -> None:
    assert availability("stabilityai/stable-diffusion-xl-base-1.0").ok
    assert no_network == []


def test_uncached_repo_offline_is_unavailable_without_network(no_network: list[Any]) -> None:
    result = availability("acme/never-downloaded")
    assert not result.ok
    assert "huggingface-cli download acme/never-downloaded" in result.fix
    assert "HF_HUB_OFFLINE" in result.reason
    assert no_network == []


def test_generate_with_missing_weights_fails_before_any_connection(no_network: list[Any],
                                                                    loads: list[Any]) -> None:
    with pytest.raises(mmsdk.ProviderUnavailableError) as caught:
        mmsdk.generate("a", provider="diffusers:acme/never-downloaded", **SIZE)
    assert "huggingface-cli download acme/never-downloaded" in str(caught.value)
    assert no_network == [] and loads == []


def test_unreachable_hub_is_unavailable_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online mode but nothing listening: one refused connect, not a retry loop."""
    from huggingface_hub import constants

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    result = availability("acme/never-downloaded")
    assert not result.ok and "cannot be reached" in result.reason
    assert "HF_HUB_OFFLINE" not in result.fix


def test_partially_downloaded_repo_fails_with_the_download_fix(hub_cache: Path,
                                                               tmp_path: Path,
                                                               checkpoints: dict[str, Path],
                                                               ) -> None:
    """model_index.json is cached but the weights are not: the load says how to get them."""
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "model_index.json").write_text(
        (checkpoints["sd15"] / "model_index.json").read_text())
    seed_hub_cache(hub_cache, "acme/partial", partial)
    with pytest.raises(mmsdk.ProviderUnavailableError,
                       match="huggingface-cli download acme/partial"):
        mmsdk.generate("a", provider="diffusers:acme/partial", **SIZE)


def test_missing_packages_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "diffusers" else real(name, *a))
    result = availability("stabilityai/sd-turbo")
    assert not result.ok and result.fix == "pip install 'mmsdk[local]'"


def test_not_a_repo_id() -> None:
    result = availability("not a repo id!")
    assert not result.ok and "neither" in result.reason


def test_providers_listing_shows_presets(checkpoints: dict[str, Path]) -> None:
    from mmsdk._registry import describe_all

    rows = {row["provider"]: row for row in describe_all(get_registry())}
    assert rows["local:sdxl"]["usable"] is True  # seeded cache
    assert rows["diffusers"]["usable"] is True
    assert "slowly" in rows["diffusers"]["description"]


def test_folder_and_repo_parsing(checkpoints: dict[str, Path]) -> None:
    assert parse_source("/models/x").local
    assert parse_source("./x").local
    assert parse_source(str(checkpoints["sd15"])).local
    assert parse_source("ORG/NAME").repo_id == "ORG/NAME"


class _Response:
    status_code = 503


def _hub_error(name: str, **attrs: Any) -> Exception:
    cls = type(name, (Exception,), {})
    error = cls(f"{name} happened")
    for key, value in attrs.items():
        setattr(error, key, value)
    return error


@pytest.mark.parametrize("exc, loading, expected", [
    (_hub_error("GatedRepoError"), True, mmsdk.ProviderUnavailableError),
    (_hub_error("LocalEntryNotFoundError"), True, mmsdk.ProviderUnavailableError),
    (_hub_error("RepositoryNotFoundError"), True, mmsdk.ProviderUnavailableError),
    (_hub_error("HfHubHTTPError", response=_Response()), True, mmsdk.ProviderServerError),
    (_hub_error("OutOfMemoryError"), False, mmsdk.ProviderUnavailableError),
    (OSError("no file named diffusion_pytorch_model.safetensors"), True,
     mmsdk.ProviderUnavailableError),
    (ValueError("height must be divisible by 8"), False, mmsdk.InvalidInputError),
    (RuntimeError("kernel failed"), False, mmsdk.ProviderError),
    (ModuleNotFoundError("no accelerate", name="accelerate"), False,
     mmsdk.ProviderUnavailableError),
], ids=["gated", "not-cached", "no-repo", "http-503", "oom", "no-safetensors", "bad-value",
        "runtime", "import"])
def test_error_mapping(exc: Exception, loading: bool, expected: type[Exception]) -> None:
    mapped = _translate(exc, "diffusers:acme/x", parse_source("acme/x"), loading)
    assert type(mapped) is expected
    if isinstance(mapped, mmsdk.ProviderUnavailableError):
        assert mapped.fix


def test_safetensors_refusal_names_the_option_when_pickle_is_there(tmp_path: Path) -> None:
    error = OSError("Could not find the necessary `safetensors` weights")
    (tmp_path / "unet").mkdir()
    mapped = _translate(error, "diffusers:x", parse_source(str(tmp_path)), True)
    assert isinstance(mapped, mmsdk.ProviderUnavailableError)
    assert "allow_pickle" not in mapped.fix  # nothing pickled in the folder
    (tmp_path / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"")
    mapped = _translate(error, "diffusers:x", parse_source(str(tmp_path)), True)
    assert isinstance(mapped, mmsdk.ProviderUnavailableError)
    assert "allow_pickle" in mapped.fix


def test_model_index_family_drives_the_dtype(tmp_path: Path,
                                             provider: Callable[[str], str]) -> None:
    """The family is read from model_index.json before loading (Flux -> bf16 on CUDA)."""
    from mmsdk_diffusers._pipelines import detect_family

    folder = tmp_path / "flux-like"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    assert detect_family(parse_source(str(folder))) == "flux"
    assert detect_family(parse_source("stabilityai/stable-diffusion-xl-base-1.0")) == "sdxl"
