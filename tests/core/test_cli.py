"""The mmsdk command: same verbs as the library, one-line errors, JSON on request."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mmsdk._cli import main
from mmsdk.testing import TestProvider


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.new("RGB", (16, 16), "red").save(path)
    return path


def test_generate_writes_numbered_files(fake: TestProvider, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.png"
    assert main(["generate", "a cat", "-p", "fake:m", "-o", str(out), "-n", "2", "--seed", "3",
                 "--size", "24x16", "-O", "echo=true"]) == 0
    with Image.open(out) as written:
        assert written.size == (24, 16)
    assert (tmp_path / "out-1.png").exists()
    assert fake.calls[0].options == {"echo": True} and fake.calls[0].progress is True
    assert "wrote" in capsys.readouterr().out


def test_understand_json_and_stream(fake: TestProvider, photo: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["understand", str(photo), "-q", "what?", "-p", "fake:m", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["text"] == "echo: what? (1 image(s))" and payload["provider"] == "fake:m"
    assert payload["sent"][0]["width"] == 16
    assert main(["understand", str(photo), "-q", "what?", "-p", "fake:m", "--stream"]) == 0
    assert capsys.readouterr().out == "echo: what? (1 image(s))\n"


def test_classify_and_embed(fake: TestProvider, photo: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", str(photo), "-l", "cat", "-l", "dog", "-p", "fake:m", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert set(row["scores"]) == {"cat", "dog"} and row["top"] in {"cat", "dog"}
    assert main(["embed", "--image", str(photo), "--text", "a cat", "-p", "fake:m"]) == 0
    assert "dim 8" in capsys.readouterr().out


def test_fallback_list_from_repeated_provider_flags(photo: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with TestProvider("down", available=False), TestProvider("up"):
        assert main(["understand", str(photo), "-q", "x", "-p", "down:m", "-p", "up:m",
                     "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["provider"] == "up:m"
    assert payload["attempts"][0]["outcome"] == "skipped"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["understand", "missing.png", "-q", "x", "-p", "fake:m"], "InvalidInputError"),
        (["understand", "-q", "x", "-p", "fak:m"], "Did you mean 'fake'"),
        (["generate", "x", "-p", "fake:m", "--size", "huge"], "size must look like"),
    ],
    ids=["missing-file", "unknown-provider", "bad-size"],
)
def test_errors_are_one_clear_line(fake: TestProvider, argv: list[str], fragment: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and "Traceback" not in err


def test_providers_lists_test_provider_status(capsys: pytest.CaptureFixture[str]) -> None:
    with TestProvider("down", available=False):
        assert main(["providers", "--json"]) == 0
    rows = {row["provider"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["down"]["usable"] is False
    assert rows["down"]["fix"] == "create the TestProvider with available=True"


def test_console_script_runs() -> None:
    completed = subprocess.run([sys.executable, "-m", "mmsdk", "providers"], capture_output=True,
                               text=True, check=True)
    assert completed.stdout.startswith("PROVIDER")
