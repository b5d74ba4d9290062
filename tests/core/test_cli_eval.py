"""``mmsdk eval FOLDER -p A -p B``: the markdown table, JSON, resume, a plot."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from mmsdk._cli import main
from mmsdk.testing import TestProvider


@pytest.fixture
def pets(tmp_path: Path) -> Path:
    for label, colour in (("cat", "orange"), ("dog", "gray")):
        (tmp_path / "pets" / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (12 + i, 12), colour).save(tmp_path / "pets" / label / f"{i}.png")
    return tmp_path / "pets"


@pytest.fixture
def two() -> Iterator[tuple[TestProvider, TestProvider]]:
    with TestProvider("alpha") as alpha, TestProvider("beta") as beta:
        yield alpha, beta


def test_eval_prints_the_table_with_a_progress_bar(pets: Path, two: tuple[TestProvider, ...],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (pets / "dog" / "broken.png").write_bytes(b"not an image")
    assert main(["eval", str(pets), "-p", "alpha:m", "-p", "beta:m", "--concurrency", "2"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("| provider | accuracy |")
    assert "| `alpha:m` |" in out and "| `beta:m` |" in out
    assert "5 examples, task classify, labels: cat, dog." in out
    assert "1 (input_corrupt x1)" in out
    assert "eval [" not in err  # no bar redrawn into a capture: see test_cli_features
    assert [len(p.calls) for p in two] == [4, 4]  # the broken image fails before any call


def test_eval_json_and_resume(pets: Path, two: tuple[TestProvider, ...], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "results.jsonl"
    args = ["eval", str(pets), "-p", "alpha:m", "-p", "beta:m", "--out", str(out_file), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["examples"] == 4 and list(first["providers"]) == ["alpha:m", "beta:m"]
    assert first["providers"]["alpha:m"]["answered"] == 4
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["providers"] == first["providers"]
    assert [len(p.calls) for p in two] == [4, 4]     # the second run asked nobody
    assert err == ""


def test_an_interrupted_eval_says_how_to_resume(pets: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "results.jsonl"
    args = ["eval", str(pets), "-p", "stop:m", "--out", str(out_file), "--concurrency", "1"]
    with TestProvider("stop", failures=[None, KeyboardInterrupt]) as stop:
        assert main(args) == 130
        assert "run the same command again to resume" in capsys.readouterr().err
        assert main(args) == 0
    assert len(stop.calls) == 2 + 3      # the first answer was kept
    assert "| `stop:m` |" in capsys.readouterr().out


def test_eval_understand_with_a_question(pets: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with TestProvider("vlm", answer="Cat.") as vlm:
        assert main(["eval", str(pets), "-p", "vlm:m", "--task", "understand",
                     "-q", "Cat or dog?"]) == 0
    assert "50.0% (2/4)" in capsys.readouterr().out
    assert {call.prompt for call in vlm.calls} == {"Cat or dog?"}


def test_eval_plot(pets: Path, two: tuple[TestProvider, ...], tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "chart.png"
    assert main(["eval", str(pets), "-p", "alpha:m", "--plot", str(chart)]) == 0
    assert f"wrote {chart}" in capsys.readouterr().out
    with Image.open(chart) as drawn:
        assert drawn.format == "PNG"


@pytest.mark.parametrize(("extra", "code", "message"), [
    (["--plot", "nowhere/chart.png"], 2, "does not exist"),
    (["--concurrency", "0"], 2, "--concurrency 0"),
    (["--plot", "chart.png", "--no-matplotlib"], 1, "pip install 'mmsdk[plot]'"),
], ids=["plot-folder-missing", "concurrency", "matplotlib-missing"])
def test_eval_usage_errors_call_nobody(pets: Path, two: tuple[TestProvider, ...], extra: list[str],
                                       code: int, message: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    if "--no-matplotlib" in extra:
        extra.remove("--no-matplotlib")
        monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["eval", str(pets), "-p", "alpha:m", *extra]) == code
    assert message in capsys.readouterr().err
    assert [len(p.calls) for p in two] == [0, 0]


@pytest.mark.parametrize(("layout", "message"), [
    ({}, "does not exist"),
    ({"cat": 0}, "holds no images"),
    ({"cat": 2}, "at least two labels"),
], ids=["missing", "empty", "one-label"])
def test_eval_bad_folders_exit_1_with_one_line(tmp_path: Path, two: tuple[TestProvider, ...],
                                               layout: dict[str, int], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "data"
    for label, count in layout.items():
        (folder / label).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (8, 8)).save(folder / label / f"{i}.png")
    assert main(["eval", str(folder), "-p", "alpha:m"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: InvalidInputError: ") and message in err
    assert "Traceback" not in err
