"""``mmsdk score`` and ``mmsdk generate --rerank-with`` on the tiny CLIP, through ``main(argv)``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

import mmsdk
from mmsdk._cli import main
from mmsdk.testing import TestProvider


@pytest.fixture
def files(images: list[Image.Image], tmp_path: Path) -> list[str]:
    paths = []
    for index, image in enumerate(images):
        image.save(tmp_path / f"{index}.png")
        paths.append(str(tmp_path / f"{index}.png"))
    return paths


def test_score_prints_the_tiny_clips_scores(provider: Callable[[str], str], files: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    clip = provider("clip")
    expected = mmsdk.score(files, "a photo of a dog", provider=clip)

    assert main(["score", *files, "--prompt", "a photo of a dog", "-p", clip]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == files
    assert [float(line.split()[0]) for line in lines] == pytest.approx(expected, abs=0.005)

    assert main(["score", *files, "--prompt", "a photo of a dog", "-p", clip, "--json"]) == 0
    assert [row["score"] for row in json.loads(capsys.readouterr().out)] == \
        pytest.approx(expected, abs=1e-6)


def test_rerank_with_the_tiny_clip_writes_the_best_image_first(
        provider: Callable[[str], str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    clip = provider("clip")
    out = tmp_path / "pick.png"
    with TestProvider("painter"):
        assert main(["generate", "a red fox", "-p", "painter:any", "-n", "4", "--seed", "7",
                     "-o", str(out), "--rerank-with", clip, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["scores"] == sorted(payload["scores"], reverse=True)
    rescored = mmsdk.score(payload["files"], "a red fox", provider=clip)
    assert rescored == pytest.approx(payload["scores"], abs=1e-4)
    assert payload["files"][0] == str(out)
    assert payload["cost"] == 0.0 and payload["cached"] is False  # local both ways
