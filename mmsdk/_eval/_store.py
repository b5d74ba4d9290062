"""The resume file: each finished (provider, example) appended as one JSON line.

The first line describes the evaluation (task, labels, prompt, schema); a run
pointed at a file written for a different evaluation is refused rather than
mixed. A line cut short by a crash is ignored. Answers and failures the
caller caused (a corrupt image, an unsupported option) are final; other
failures (rate limits, timeouts, a missing key) are tried again on resume.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._errors import InvalidInputError
from ._report import ExampleResult

__all__ = ["ResultStore"]

FORMAT = 1
# Error codes of caller mistakes: asking again gives the same answer.
FINAL_CODES = frozenset({"invalid_value", "input_corrupt", "input_too_large", "unsafe_url",
                         "unsupported", "unsupported_option"})


class ResultStore:
    """Finished results by (provider, example id), on disk when given a path."""

    def __init__(self, path: str | Path | None, about: dict[str, Any]) -> None:
        self.path = Path(path) if path is not None else None
        self._about = {"mmsdk_eval": FORMAT, **about}
        self._done: dict[tuple[str, str], ExampleResult] = {}
        self._lock = threading.Lock()
        if self.path is not None:
            self._open(self.path)

    def _open(self, path: Path) -> None:
        if path.is_dir():
            raise InvalidInputError(f"resume path {path} is a folder; name a file inside it, "
                                    f"e.g. {path / 'eval.jsonl'}.")
        if not path.parent.is_dir():
            raise InvalidInputError(f"resume path {path}: folder {path.parent} does not exist; "
                                    "create it or choose another path.")
        if not path.exists() or path.stat().st_size == 0:
            path.write_text(json.dumps(self._about) + "\n", encoding="utf-8")
            return
        with path.open(encoding="utf-8") as file:
            text = file.read()
        lines = text.splitlines()
        try:
            about = json.loads(lines[0])
        except (json.JSONDecodeError, IndexError):
            about = None
        if not isinstance(about, dict) or "mmsdk_eval" not in about:
            raise InvalidInputError(f"resume path {path} is not an mmsdk eval results file; "
                                    "choose another path (it would be overwritten).")
        if about != self._about:
            changed = sorted(k for k in set(about) | set(self._about)
                             if about.get(k) != self._about.get(k))
            raise InvalidInputError(
                f"resume path {path} holds results of a different evaluation ({', '.join(changed)} "
                "differ); delete it to start over, or choose another path.")
        for line in lines[1:]:
            try:
                result = ExampleResult.model_validate_json(line)
            except ValidationError:  # a line cut short when the run was killed
                continue
            if final(result):
                self._done[(result.provider, result.example)] = result
        if not text.endswith("\n"):  # start the next record on a line of its own
            with path.open("a", encoding="utf-8") as file:
                file.write("\n")

    def get(self, provider: str, example: str) -> ExampleResult | None:
        """The finished result, if this (provider, example) needs no new call."""
        return self._done.get((provider, example))

    def add(self, result: ExampleResult) -> None:
        """Record *result*; on disk at once, so an interrupted run keeps it."""
        with self._lock:
            if final(result):
                self._done[(result.provider, result.example)] = result
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as file:
                    file.write(result.model_dump_json() + "\n")


def final(result: ExampleResult) -> bool:
    """Whether asking again could not change *result*."""
    return result.error_code is None or result.error_code in FINAL_CODES
