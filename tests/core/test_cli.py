"""The mmsdk command: same verbs as the library, one-line errors, JSON on request."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from abc import ABC
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import mmsdk.plugin
from mmsdk._cli import main
from mmsdk.plugin import (
    Capability,
    Classify,
    ModelInfo,
    ModelLifecycle,
    ProviderSpec,
    Understand,
    hookimpl,
    register_plugin,
    unregister_plugin,
)
from mmsdk.testing import TestProvider, pinned_today


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
    # progress bars need a terminal (stderr is captured here): test_cli_features
    assert fake.calls[0].options == {"echo": True} and fake.calls[0].progress is False
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


# -- generate: -o is checked before anything is generated --------------------------------

@pytest.mark.parametrize("name", ["out.txt", "out", "out.pdf"], ids=["txt", "none", "pdf"])
def test_generate_refuses_a_non_image_extension_before_generating(
        fake: TestProvider, tmp_path: Path, name: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "a cat", "-p", "fake:m", "-o", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not an image format" in err and ".png" in err
    assert fake.calls == [] and list(tmp_path.iterdir()) == []


def test_generate_refuses_a_missing_directory_before_generating(
        fake: TestProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing" / "out.png"
    assert main(["generate", "a cat", "-p", "fake:m", "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "mkdir -p" in err
    assert fake.calls == [] and not target.parent.exists()


def test_generate_keeps_an_existing_file_unless_forced(
        fake: TestProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    assert main(["generate", "a cat", "-p", "fake:m", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out} already exists" in err and "--force" in err
    assert out.read_bytes() == b"precious" and fake.calls == []
    assert main(["generate", "a cat", "-p", "fake:m", "-o", str(out), "--force"]) == 0
    assert len(fake.calls) == 1
    with Image.open(out) as written:
        assert written.format == "PNG"


def test_generate_checks_every_numbered_output_first(
        fake: TestProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out-2.png").write_bytes(b"precious")
    assert main(["generate", "a cat", "-p", "fake:m", "-o", str(tmp_path / "out.png"),
                 "-n", "3"]) == 2
    err = capsys.readouterr().err
    assert "out-2.png already exists" in err and "--force" in err
    assert fake.calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out-2.png"]  # nothing written
    assert main(["generate", "a cat", "-p", "fake:m", "-o", str(tmp_path / "out.png"),
                 "-n", "3", "--force"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out-1.png", "out-2.png", "out.png"]
    assert (tmp_path / "out-2.png").read_bytes() != b"precious"


@pytest.mark.parametrize(("name", "image_format"),
                         [("out.jpg", "JPEG"), ("out.JPEG", "JPEG"), ("out.webp", "WEBP")],
                         ids=["jpg", "upper-jpeg", "webp"])
def test_generate_writes_the_format_the_extension_names(
        fake: TestProvider, tmp_path: Path, name: str, image_format: str) -> None:
    assert main(["generate", "a cat", "-p", "fake:m", "-o", str(tmp_path / name)]) == 0
    with Image.open(tmp_path / name) as written:
        assert written.format == image_format


# -- providers: lifecycle warnings --------------------------------------------------------

LIFE = ModelLifecycle("aging", {"v1": (dt.date(2026, 12, 20), "v3"),
                                "v2": (dt.date(2027, 6, 1), "v3"),
                                "v0": (dt.date(2026, 1, 1), "v3")})


class _Vision(Understand, Classify, ABC):
    """What the aging provider's models do (never built)."""


class _AgingPlugin:
    """A provider whose defaults have end-of-life dates (one per capability)."""

    def __init__(self, understand: str, classify: str) -> None:
        self.defaults = {Capability.UNDERSTAND: understand, Capability.CLASSIFY: classify}

    @hookimpl
    def register_providers(self, register: Any) -> None:
        def factory(model: str, provider: str, info: ModelInfo) -> Any:
            raise AssertionError("mmsdk providers must not build models")

        register(ProviderSpec(name="aging", model_class=_Vision, factory=factory,
                              default_models=self.defaults, retired=LIFE.retired))


@pytest.fixture
def aging() -> Iterator[_AgingPlugin]:
    plugin = _AgingPlugin("v1", "v2")
    register_plugin(plugin, "aging")
    yield plugin
    unregister_plugin("aging")


def test_providers_warn_about_defaults_with_an_end_of_life(
        aging: _AgingPlugin, capsys: pytest.CaptureFixture[str]) -> None:
    # pinned to 2026-12-01 by the root conftest
    assert main(["providers", "--json"]) == 0
    rows = {row["provider"]: row for row in json.loads(capsys.readouterr().out)}
    assert sorted(rows["aging"]["warnings"]) == [
        "aging:v1 is deprecated and reaches end-of-life on 2026-12-20; move to 'aging:v3'.",
        "aging:v2 is deprecated and reaches end-of-life on 2027-06-01; move to 'aging:v3'."]
    assert main(["providers"]) == 0
    text = capsys.readouterr().out
    assert "    warning: aging:v1 is deprecated and reaches end-of-life on 2026-12-20" in text
    with pinned_today(dt.date(2026, 12, 20)):
        assert main(["providers", "--json"]) == 0
    rows = {row["provider"]: row for row in json.loads(capsys.readouterr().out)}
    assert "aging:v1 is retired. It reached end-of-life on 2026-12-20; use 'aging:v3' " \
           "instead." in rows["aging"]["warnings"]
    assert all(row["warnings"] == [] for name, row in rows.items() if name != "aging")


def test_providers_date_comes_from_mmsdk_today_in_a_fresh_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mmsdk_openai")
    monkeypatch.setenv("MMSDK_OPENAI_UNDERSTAND_MODEL", "gpt-4.1")

    def openai_warnings(day: str) -> list[str]:
        monkeypatch.setenv("MMSDK_TODAY", day)
        completed = subprocess.run([sys.executable, "-m", "mmsdk", "providers", "--json"],
                                   capture_output=True, text=True, check=True)
        [row] = [r for r in json.loads(completed.stdout) if r["provider"] == "openai"]
        return list(row["warnings"])

    assert openai_warnings("2026-12-20") == [
        "openai:gpt-4.1 is deprecated and reaches end-of-life on 2027-01-14; "
        "move to 'openai:gpt-5.5'."]
    [retired] = openai_warnings("2027-01-14")
    assert retired.startswith("openai:gpt-4.1 is retired.")


def test_a_pinned_date_wins_over_mmsdk_today(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MMSDK_TODAY", "2030-01-01")
    assert mmsdk.plugin.today() == dt.date(2026, 12, 1)  # the root conftest's pin
    with pinned_today(None):  # unpinned: the variable applies
        assert mmsdk.plugin.today() == dt.date(2030, 1, 1)
        monkeypatch.setenv("MMSDK_TODAY", "next tuesday")
        assert main(["providers"]) == 1
    assert "MMSDK_TODAY='next tuesday' is not a date" in capsys.readouterr().err
