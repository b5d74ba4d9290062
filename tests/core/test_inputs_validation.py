"""Caller mistakes are InvalidInputError before any call: never a raw TypeError or ValueError."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from samples import encode

import mmsdk
from mmsdk._requests import (
    ClassifyRequest,
    EmbedRequest,
    GenerateRequest,
    UnderstandRequest,
    validate_request,
)
from mmsdk._settings import get_settings
from mmsdk.testing import TestProvider

NAN, INF = math.nan, math.inf


@pytest.fixture
def image() -> bytes:
    return encode(Image.new("RGB", (8, 8), (10, 20, 30)))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        pytest.param({"guidance": NAN}, "guidance: Input should be a finite number", id="guidance-nan"),
        pytest.param({"guidance": INF}, "guidance: Input should be a finite number", id="guidance-inf"),
        pytest.param({"control_scale": INF}, "control_scale", id="control-scale-inf"),
        pytest.param({"reference_scale": INF}, "reference_scale", id="reference-scale-inf"),
        pytest.param({"negative_prompt": b"blurry"}, "negative_prompt", id="negative-prompt-bytes"),
    ],
)
def test_generate_rejects_non_finite_and_wrong_types(fake: TestProvider, kwargs: dict[str, Any],
                                                     fragment: str) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=fragment):
        mmsdk.generate("a cat", provider="fake:m", **kwargs)
    assert fake.calls == []


@pytest.mark.parametrize(("call", "kwargs", "fragment"), [
    ("generate", {"n": "2"}, "n: expected a number, got str '2'"),
    ("generate", {"n": True}, "n: expected a number, got bool True"),
    ("generate", {"steps": "30"}, "steps: expected a number"),
    ("generate", {"seed": b"7"}, "seed: expected a number"),
    ("generate", {"guidance": "7.5"}, "guidance: expected a number"),
    ("understand", {"max_tokens": True}, "max_tokens: expected a number, got bool"),
    ("understand", {"temperature": "0"}, "temperature: expected a number"),
], ids=["n-text", "n-bool", "steps-text", "seed-bytes", "guidance-text", "max-tokens-bool",
        "temperature-text"])
def test_numbers_given_as_text_or_booleans_are_refused(fake: TestProvider, call: str,
                                                       kwargs: dict[str, Any],
                                                       fragment: str) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=re.escape(fragment)):
        getattr(mmsdk, call)("a cat", provider="fake:m", **kwargs)
    assert fake.calls == []


def test_numpy_numbers_and_whole_floats_still_count(fake: TestProvider) -> None:
    import numpy as np

    mmsdk.generate("a cat", provider="fake:m", seed=np.int64(3), width=64.0, height=64)
    assert fake.calls[0].seed == 3 and fake.calls[0].width == 64


def test_strength_must_be_finite(fake: TestProvider, image: bytes) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="strength"):
        mmsdk.generate("a cat", provider="fake:m", image=image, strength=NAN)
    assert fake.calls == []


def test_a_bytes_prompt_is_not_turned_into_text(fake: TestProvider, image: bytes) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="prompt: Input should be a valid string, got bytes"):
        mmsdk.generate(b"a cat", provider="fake:m")  # type: ignore[arg-type]
    with pytest.raises(mmsdk.InvalidInputError, match="prompt"):
        mmsdk.understand(b"what?", images=[image], provider="fake:m")  # type: ignore[arg-type]
    assert fake.calls == []


@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
def test_temperature_must_be_finite(fake: TestProvider, image: bytes, value: float) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="temperature"):
        mmsdk.understand("what?", images=[image], provider="fake:m", temperature=value)
    assert fake.calls == []


def test_labels_must_be_strings(fake: TestProvider, image: bytes) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=r"labels\.0: .*valid string, got int"):
        mmsdk.classify(image, [1, 2], provider="fake:m")  # type: ignore[list-item]
    with pytest.raises(mmsdk.InvalidInputError, match="labels"):
        mmsdk.classify(image, [b"cat", b"dog"], provider="fake:m")  # type: ignore[list-item]
    assert fake.calls == []


def test_texts_must_be_strings(fake: TestProvider) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=r"texts\.1"):
        mmsdk.embed(texts=["a", 2], provider="fake:m")  # type: ignore[list-item]
    with pytest.raises(mmsdk.InvalidInputError, match="texts"):
        mmsdk.embed(texts=[b"raw"], provider="fake:m")  # type: ignore[list-item]
    assert fake.calls == []


@pytest.mark.parametrize(
    ("cls", "values", "fragment"),
    [
        pytest.param(ClassifyRequest, {"labels": {"cat": 1}}, "list of strings, got dict",
                     id="labels-dict"),
        pytest.param(ClassifyRequest, {"labels": "cat"}, "list of strings, got str",
                     id="labels-str"),
        pytest.param(ClassifyRequest, {"labels": 5}, "list of strings, got int", id="labels-int"),
        pytest.param(EmbedRequest, {"texts": 5}, "string or a list of strings, got int",
                     id="texts-int"),
        pytest.param(EmbedRequest, {"texts": {"a"}}, "got set", id="texts-set"),
        pytest.param(GenerateRequest, {"prompt": "x", "guidance": NAN}, "finite", id="guidance"),
        pytest.param(UnderstandRequest, {"prompt": "x", "system": b"be brief"}, "system",
                     id="system-bytes"),
    ],
)
def test_requests_validate_shapes_themselves(cls: Any, values: dict[str, Any],
                                             fragment: str) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=fragment) as info:
        validate_request(cls, **values)
    assert info.value.__cause__ is None


def test_valid_shapes_still_pass() -> None:
    assert validate_request(EmbedRequest, texts="one").texts == ["one"]
    assert validate_request(EmbedRequest, texts=("a", "b")).texts == ["a", "b"]
    assert validate_request(ClassifyRequest, labels=("cat", "dog")).labels == ["cat", "dog"]
    assert validate_request(GenerateRequest, prompt="x", guidance=7).guidance == 7.0


# -- configure() ---------------------------------------------------------------------
@pytest.fixture
def restore_settings() -> Iterator[None]:
    from mmsdk import _settings

    before = _settings._settings
    yield
    _settings._settings = before


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        pytest.param({"max_input_bytes": "big"}, "max_input_bytes must be an integer", id="str-int"),
        pytest.param({"max_input_pixels": 1.5}, "max_input_pixels must be an integer",
                     id="float-int"),
        pytest.param({"max_video_bytes": True}, "max_video_bytes must be an integer",
                     id="bool-int"),
        pytest.param({"max_input_bytes": -1}, "above zero", id="negative-cap"),
        pytest.param({"url_allow_hosts": "cdn.example.com"}, "list of strings", id="hosts-str"),
        pytest.param({"url_allow_hosts": [1]}, "list of strings", id="hosts-ints"),
        pytest.param({"url_total_timeout": NAN}, "finite number", id="timeout-nan"),
        pytest.param({"url_read_timeout": "20"}, "must be a number", id="timeout-str"),
        pytest.param({"url_connect_timeout": 0}, "above zero", id="timeout-zero"),
        pytest.param({"url_max_redirects": -1}, "at least 0", id="redirects-negative"),
        pytest.param({"allow_private_urls": "yes"}, "True or False", id="flag-str"),
        pytest.param({"keep_image_metadata": 1}, "True or False", id="flag-int"),
        pytest.param({"default_providers": ["openai"]}, "dict", id="providers-list"),
        pytest.param({"default_providers": {"generate": 3}}, "list of strings",
                     id="providers-value"),
        pytest.param({"plugins": ["opneai"]}, "'opneai', which is no installed plugin. Did "
                     "you mean 'openai'", id="plugins-misspelt"),
    ],
)
def test_configure_rejects_values_of_the_wrong_type(restore_settings: None,
                                                    changes: dict[str, Any],
                                                    fragment: str) -> None:
    before = get_settings()
    with pytest.raises(mmsdk.InvalidInputError, match=fragment):
        mmsdk.configure(**changes)
    assert get_settings() is before  # nothing changed


def test_configure_normalises_lists_and_still_rejects_unknown_names(
        restore_settings: None) -> None:
    settings = mmsdk.configure(url_allow_hosts=["cdn.example.com"],
                               default_providers={"generate": "openai:gpt-image-1.5"},
                               url_total_timeout=2, keep_image_metadata=True)
    assert settings.url_allow_hosts == ("cdn.example.com",)
    assert settings.default_providers == {"generate": ("openai:gpt-image-1.5",)}
    assert settings.url_total_timeout == 2 and settings.keep_image_metadata is True
    with pytest.raises(mmsdk.InvalidInputError, match="Unknown setting"):
        mmsdk.configure(url_total_timout=2)


def test_settings_defaults() -> None:
    settings = mmsdk.Settings()
    assert settings.url_total_timeout == 30.0
    assert settings.keep_image_metadata is False
