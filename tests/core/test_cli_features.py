"""The CLI's reach into the newer calls: ``score``, ``--rerank-with``, ``--fps``,
``--max-cost``, ``--cache``, cost and ``cached`` in the output, progress off a terminal."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

import mmsdk
from mmsdk import Price
from mmsdk._cli import _PlainProgress, main
from mmsdk.testing import TestProvider


class _Terminal(io.StringIO):
    """stderr as a terminal (captured stderr is not one). Set it in the test itself:
    pytest puts its own capture back between fixture setup and the test."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    paths = []
    for name, colour in (("red.png", "red"), ("navy.png", "navy"), ("olive.png", "olive")):
        Image.new("RGB", (16, 12), colour).save(tmp_path / name)
        paths.append(tmp_path / name)
    return paths


@pytest.fixture
def pets(tmp_path: Path) -> Path:
    for label, colour in (("cat", "orange"), ("dog", "gray")):
        (tmp_path / "pets" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8 + i, 8), colour).save(tmp_path / "pets" / label / f"{i}.png")
    return tmp_path / "pets"


@pytest.fixture
def cloud() -> Iterator[TestProvider]:
    """A cloud-like provider priced at $1 per input token and $2 per output token."""
    with TestProvider("cloud", local=False) as provider:
        provider.info = provider.info.model_copy(
            update={"price": Price(input_per_mtok=1e6, output_per_mtok=2e6)})
        yield provider


def _usage_error(capsys: pytest.CaptureFixture[str], fragment: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("usage: mmsdk") or err.startswith("error: --"), err
    assert fragment in err and "Traceback" not in err


# -- score -------------------------------------------------------------------------------
def test_score_prints_one_line_per_image_in_input_order(fake: TestProvider, photos: list[Path],
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    assert main(["score", *map(str, photos), "--prompt", "a red square", "-p", "fake:m"]) == 0
    expected = mmsdk.score([str(p) for p in photos], "a red square", provider="fake:m")
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{score:6.2f}  {path}" for score, path in zip(expected, photos, strict=True)]
    assert len({round(s, 2) for s in expected}) == 3  # the order shown is the input's, not a sort

    assert main(["score", *map(str, photos), "--prompt", "a red square", "-p", "fake:m",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"image": str(p), "score": s} for p, s in zip(photos, expected, strict=True)]


def test_score_mistakes(fake: TestProvider, photos: list[Path], tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["score", str(photos[0]), "-p", "fake:m"])  # no --prompt
    assert exited.value.code == 2
    _usage_error(capsys, "--prompt")
    assert main(["score", str(tmp_path / "missing.png"), "--prompt", "x", "-p", "fake:m"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: InvalidInputError: ") and err.count("\n") == 1
    with TestProvider("blind", capabilities=[mmsdk.Capability.GENERATE]):
        assert main(["score", str(photos[0]), "--prompt", "x", "-p", "blind:m"]) == 1
    assert capsys.readouterr().err.startswith("error: CapabilityError: ")
    assert fake.calls == []


# -- generate --rerank-with ----------------------------------------------------------------
def test_rerank_with_writes_best_first_and_prints_the_scores(
        fake: TestProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fox.png"
    assert main(["generate", "a red fox", "-p", "fake:paint", "-n", "4", "--seed", "2",
                 "-o", str(out), "--rerank-with", "fake:clip"]) == 0
    lines = capsys.readouterr().out.splitlines()
    files = [out, *(tmp_path / f"fox-{i}.png" for i in (1, 2, 3))]
    shown = [float(line.split(" score ")[1].split()[0]) for line in lines]
    assert [line.split()[1] for line in lines] == [str(f) for f in files]
    assert shown == sorted(shown, reverse=True) and len(set(shown)) > 1
    scored = mmsdk.score([str(f) for f in files], "a red fox", provider="fake:clip")
    assert shown == [round(s, 2) for s in scored]  # each file next to its own score
    assert [type(c).__name__ for c in fake.calls] == ["GenerateRequest", "EmbedRequest",
                                                      "EmbedRequest"]

    assert main(["generate", "a red fox", "-p", "fake:paint", "-n", "4", "--seed", "2",
                 "-o", str(out), "--force", "--rerank-with", "fake:clip", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["scores"] == sorted(payload["scores"], reverse=True)
    assert [a["provider"] for a in payload["attempts"]] == ["fake:paint", "fake:clip"]


def test_rerank_with_is_checked_before_generating(fake: TestProvider, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "x.png")
    assert main(["generate", "x", "-p", "fake:m", "-o", out, "--rerank-with", "nobody:m"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: UnknownProviderError: ") and "Traceback" not in err
    with pytest.raises(SystemExit) as exited:
        main(["generate", "x", "-p", "fake:m", "-o", out, "--rerank-with", " "])
    assert exited.value.code == 2
    _usage_error(capsys, "--rerank-with")
    assert fake.calls == [] and not Path(out).exists()


# -- understand --fps -----------------------------------------------------------------------
def test_fps_samples_the_video_by_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    pytest.importorskip("av")
    from samples import write_clip

    clip = write_clip(tmp_path / "clip.mp4", frames=20)  # 2.0 s at 10 fps
    with TestProvider("frames", supports={"schema", "stream", "max_tokens"}) as frames:
        assert main(["understand", "--video", str(clip), "-q", "What changes?",
                     "-p", "frames:m", "--fps", "2"]) == 0
    [request] = frames.calls
    assert request.frame_times == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert capsys.readouterr().out.startswith("echo: ")


@pytest.mark.parametrize("argv", [
    ["--video", "clip.mp4", "--fps", "0"],
    ["--video", "clip.mp4", "--fps", "-2"],
    ["--video", "clip.mp4", "--fps", "nan"],
    ["--video", "clip.mp4", "--fps", "often"],
], ids=["zero", "negative", "nan", "word"])
def test_bad_fps_is_a_usage_error(fake: TestProvider, argv: list[str],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["understand", "-q", "x", "-p", "fake:m", *argv])
    assert exited.value.code == 2
    _usage_error(capsys, "--fps")
    assert fake.calls == []


def test_fps_without_a_video_is_a_usage_error(fake: TestProvider, photos: list[Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["understand", str(photos[0]), "-q", "x", "-p", "fake:m", "--fps", "2"]) == 2
    _usage_error(capsys, "give --video FILE too")
    assert fake.calls == []


# -- --max-cost --------------------------------------------------------------------------------
def test_max_cost_skips_a_provider_estimated_over_it(cloud: TestProvider, fake: TestProvider,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["understand", "-q", "one two three", "-p", "cloud:m", "-p", "fake:m", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["provider"] == "cloud:m"
    # 4 tokens in, 1,024 out when --max-tokens is unset: $2,052 estimated
    assert main([*argv, "--max-cost", "100"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["provider"] == "fake:m"
    assert "exceeds max_cost_usd=100.0" in payload["attempts"][0]["error"]
    assert len(cloud.calls) == 1


def test_max_cost_reaches_eval_and_score(cloud: TestProvider, photos: list[Path], pets: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(photos[0]), "--prompt", "x", "-p", "cloud:m",
                 "--max-cost", "$0"]) == 1
    assert "exceeds max_cost_usd=0.0" in capsys.readouterr().err
    assert main(["eval", str(pets), "-p", "cloud:m", "--task", "understand",
                 "-q", "cat?", "--max-cost", "0.5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["providers"]["cloud:m"]["answered"] == 0
    assert cloud.calls == []


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "lots"])
def test_bad_max_cost_is_a_usage_error(fake: TestProvider, value: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["understand", "-q", "x", "-p", "fake:m", "--max-cost", value])
    assert exited.value.code == 2
    _usage_error(capsys, "--max-cost")
    assert fake.calls == []


# -- --cache -----------------------------------------------------------------------------------
def test_cache_answers_a_repeated_call_without_asking(fake: TestProvider, photos: list[Path],
                                                     tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["understand", str(photos[0]), "-q", "what?", "-p", "fake:m", "--cache",
            str(tmp_path / "cache"), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["cached"] is False
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["cached"] is True and payload["cost"] == 0.0
    assert payload["text"] == "echo: what? (1 image(s))" and len(fake.calls) == 1
    assert main(argv[:-1]) == 0
    assert capsys.readouterr().err == "cost: $0 (cached)\n"
    assert main(argv[:-3]) == 0  # no --cache: asked again
    assert len(fake.calls) == 2


def test_eval_cache_skips_calls_already_answered(fake: TestProvider, pets: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["eval", str(pets), "-p", "fake:m", "--cache", str(tmp_path / "c")]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    second = capsys.readouterr().out
    accuracy = [text.splitlines()[2].split("|")[2] for text in (first, second)]
    assert accuracy[0] == accuracy[1] and "/6)" in accuracy[0]
    assert len(fake.calls) == 6  # the second run was answered from the cache


@pytest.mark.parametrize(("where", "fragment"), [
    ("file.txt", "is a file"),
    ("missing/deeper/cache", "does not exist"),
], ids=["a-file", "no-parent"])
def test_bad_cache_folder_is_a_usage_error(fake: TestProvider, tmp_path: Path, where: str,
                                           fragment: str, photos: list[Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file.txt").write_text("x")
    for verb in (["understand", "-q", "x", str(photos[0])],
                 ["generate", "x", "-o", str(tmp_path / "g.png")],
                 ["eval", str(tmp_path)]):
        assert main([*verb, "-p", "fake:m", "--cache", str(tmp_path / where)]) == 2
        _usage_error(capsys, fragment)
    assert fake.calls == []


# -- cost and cached in the output ---------------------------------------------------------
def test_a_known_cost_is_shown(cloud: TestProvider, photos: list[Path], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    # "one two three": 3 words in; the echo "echo: one two three (0 image(s))" is 6 out
    assert main(["understand", "-q", "one two three", "-p", "cloud:m", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["cost"] == pytest.approx(3 + 6 * 2) and payload["cached"] is False
    assert main(["understand", "-q", "one two three", "-p", "cloud:m"]) == 0
    out, err = capsys.readouterr()
    assert out == "echo: one two three (0 image(s))\n" and err == "cost: $15\n"
    assert main(["understand", "-q", "one two three", "-p", "cloud:m", "--stream"]) == 0
    assert capsys.readouterr().err == "cost: $15\n"  # a stream reports the same usage
    assert main(["generate", "x", "-p", "cloud:m", "-o", str(tmp_path / "g.png")]) == 0
    assert capsys.readouterr().err == ""  # images made, no price per image: unknown


def test_an_unknown_cost_is_not_shown(primary: TestProvider, fake: TestProvider,
                                      photos: list[Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", str(photos[0]), "-l", "a", "-l", "b", "-p", "primary:m",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["cost"] is None
    assert main(["classify", str(photos[0]), "-l", "a", "-l", "b", "-p", "primary:m"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["embed", "--text", "a cat", "-p", "fake:m"]) == 0  # local: known, nothing
    assert capsys.readouterr().err == "cost: $0\n"


# -- progress ---------------------------------------------------------------------------------
def test_pipeline_progress_bars_only_on_a_terminal(fake: TestProvider, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["generate", "x", "-p", "fake:m", "-o", str(tmp_path / "a.png")]) == 0
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert main(["generate", "x", "-p", "fake:m", "-o", str(tmp_path / "b.png")]) == 0
    assert main(["generate", "x", "-p", "fake:m", "-o", str(tmp_path / "c.png"), "--json"]) == 0
    assert [call.progress for call in fake.calls] == [False, True, False]


def test_eval_redraws_its_bar_only_on_a_terminal(fake: TestProvider, pets: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    argv = ["eval", str(pets), "-p", "fake:m", "--out", str(pets.parent / "runs.jsonl")]
    assert main(argv) == 0
    drawn = terminal.getvalue()
    assert drawn.count("\reval [") == 7 and "6/6" in drawn  # empty, then one per call
    terminal.truncate(0)
    assert main(argv) == 0  # resumed: nothing left, drawn once, already full
    assert terminal.getvalue().count("\reval [") == 1 and "6/6" in terminal.getvalue()


def test_eval_off_a_terminal_prints_plain_lines_now_and_then(
        fake: TestProvider, pets: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(pets), "-p", "fake:m"]) == 0
    assert capsys.readouterr().err == ""  # six quick calls: nothing to report
    monkeypatch.setattr(_PlainProgress, "every", 0.0)
    assert main(["eval", str(pets), "-p", "fake:m"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" calls")[0] for line in lines] == [f"eval: {i}" for i in range(1, 7)]
    assert "\r" not in "".join(lines)
