"""mmsdk against raw diffusers and transformers on the same tiny checkpoints, warm, interleaved.

Run: python bench/local_overhead.py [--runs 30]
Each case first checks that both paths give the same output (pixels / token
ids / probabilities), then times them alternately and prints median ratios.
Goal: <= 1.02x. The per-library scripts run on their own too.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    rows = []
    for name in ("local_overhead_diffusers", "local_overhead_transformers"):
        rows += _load(name).main(argv)
        print()
    worst = max(rows, key=lambda row: row["ratio"])
    print(f"overall worst ratio: {worst['ratio']:.3f}x ({worst['case']})")


if __name__ == "__main__":
    main(sys.argv[1:])
