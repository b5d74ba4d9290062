"""Run mypy the way a user or plugin author does: on their own files, with none of our settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def mypy_errors(folder: Path, files: dict[str, str], *flags: str) -> dict[str, list[str]]:
    """Write *files* (name -> source) into *folder*, run ``mypy --strict *flags`` over them
    in one run, and return the error lines (``"LINE: error: ..."``) per file stem."""
    (folder / "mypy.ini").write_text("[mypy]\n")  # none of the repository's settings
    for name, source in files.items():
        (folder / name).write_text(source)
    completed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *flags, "--config-file", "mypy.ini",
         "--cache-dir", str(folder / ".mypy_cache"), "--no-error-summary",
         "--hide-error-context", *files],
        cwd=folder, capture_output=True, text=True, timeout=300)
    assert completed.returncode in (0, 1), completed.stdout + completed.stderr
    errors: dict[str, list[str]] = {}
    for line in completed.stdout.splitlines():
        path, _, rest = line.partition(":")
        if ": error: " in rest:
            errors.setdefault(Path(path).stem, []).append(rest)
    return errors
