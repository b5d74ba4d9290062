"""The examples run as documented (the README's main job is examples/quickstart.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str, cwd: Path) -> str:
    # An empty hub cache: the session's cache holds tiny checkpoints under real repo
    # ids, which would make the local presets "available" to the examples.
    env = os.environ | {"HF_HUB_CACHE": str(cwd / "empty-hub-cache")}
    completed = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args],
                               cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_quickstart_falls_back_to_a_usable_provider(tmp_path: Path) -> None:
    pytest.importorskip("mmsdk_palette", reason="installed by the development install")
    output = run("quickstart.py", cwd=tmp_path)
    assert "answer from palette:basic: image 1: 256x160" in output
    assert "openai:gpt-5.5" in output and "skipped" in output
    assert "top=blue" in output


def test_seed_examples_say_how_to_enable_what_cannot_run_here(tmp_path: Path) -> None:
    output = run("seed_examples.py", "--out", str(tmp_path / "out"), cwd=tmp_path)
    lines = output.strip().splitlines()
    assert len(lines) == 10
    assert all("skipped:" in line and "Fix:" in line for line in lines), output


def test_evaluate_scores_test_providers_and_a_tiny_clip(tmp_path: Path) -> None:
    pytest.importorskip("mmsdk_transformers", reason="installed by the development install")
    from tiny_modules import load_tiny

    clip = load_tiny("transformers").build_clip(tmp_path / "clip")
    out = tmp_path / "results.jsonl"
    output = run("evaluate.py", "--clip", f"transformers:{clip}", "--data", str(tmp_path / "data"),
                 "--out", str(out), "--plot", str(tmp_path / "eval.png"), cwd=tmp_path)
    rows = {line.split("|")[1].strip(): line for line in output.splitlines()
            if line.startswith("| `")}
    clip_row = rows[f"`transformers:{clip}`"]
    assert clip_row.split("|")[-2].strip() == "0"          # the tiny CLIP answered every image
    assert "(rate_limited x3)" in rows["`flaky:any`"]
    assert "/12)" in rows["`guess:any`"] and "12 examples, task classify" in output
    if "`palette`" in rows:
        assert "100.0% (12/12)" in rows["`palette`"]
    assert (tmp_path / "eval.png").stat().st_size > 0
    # again with the same results file: the answers (and their latencies) come from it;
    # only flaky's rate-limited calls are made again (and fail again, in a new process)
    again = run("evaluate.py", "--clip", f"transformers:{clip}", "--data", str(tmp_path / "data"),
                "--out", str(out), cwd=tmp_path)
    for name, row in rows.items():
        if name != "`flaky:any`":
            assert row in again.splitlines()
