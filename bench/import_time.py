"""Median wall time of `import mmsdk` against bare Python and the cloud SDKs, measured in one run.

Run: python bench/import_time.py [--runs 15]
Each import runs in a fresh interpreter; the numbers are whole-process times
(`python -c "import X"`), so bare Python's start-up is the floor.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c pass": "pass",
    "import mmsdk": "import mmsdk",
    "import mmsdk + first call setup": "import mmsdk; mmsdk.Router",
    # What a first call pays before any SDK import: every plugin's registration.
    "import mmsdk + plugins registered":
        "import mmsdk; from mmsdk._registry import get_registry; get_registry()",
    "import openai": "import openai",
    "import anthropic": "import anthropic",
}


def measure(code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    cases = {label: code for label, code in CASES.items()
             if ("openai" not in label and "anthropic" not in label)
             or importlib.util.find_spec(label.split()[-1]) is not None}
    # Interleave the cases so background load affects them alike.
    results: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(args.runs):
        for label, code in cases.items():
            results[label].append(measure(code, 1))
    bare = statistics.median(results["python -c pass"])
    print(f"{'case':<34} {'median s':>9} {'minus bare':>11} {'x bare':>7}")
    for label, times in results.items():
        median = statistics.median(times)
        print(f"{label:<34} {median:9.3f} {median - bare:11.3f} {median / bare:7.2f}")
    mmsdk_cost = statistics.median(results["import mmsdk"])
    verdict = "meets" if mmsdk_cost <= 0.10 else "misses"
    print(f"\nimport mmsdk: {mmsdk_cost:.3f} s ({verdict} the 0.10 s goal)")


if __name__ == "__main__":
    main()
