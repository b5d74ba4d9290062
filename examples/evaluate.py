"""Evaluate providers on your own data: accuracy, latency, cost and failures side by side.

Run: python examples/evaluate.py [--clip PROVIDER] [--out results.jsonl] [--plot eval.png]

It writes a small generated data set (solid colours with some noise, in the
ImageFolder layout: one subfolder per label) and scores these providers on it:

- two `mmsdk.testing.TestProvider` classifiers: `guess` (deterministic scores
  from hashes of the pixels: chance level) and `flaky` (the same, but rate
  limited on its first calls, so the report shows failures with their code);
- the `palette` example plugin when it is installed (the development install
  does): it reads the mean colour, so it should be right every time;
- a CLIP, `local:clip-small` by default (`--clip transformers:/path/to/clip`
  for a checkpoint folder). Without its weights it is reported as failing with
  `unavailable` and the command that fixes it; nothing else is affected.

`--out FILE` makes the run resumable: stop it and run it again with the same
file, and only the unfinished calls are made. The same from the command line:
`mmsdk eval FOLDER -p guess:any -p local:clip-small --out results.jsonl`.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from PIL import Image

import mmsdk
from mmsdk.testing import TestProvider

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (30, 60, 220)}


def write_dataset(root: Path, per_label: int = 4, seed: int = 0) -> Path:
    """``root/<colour>/<n>.png``: noisy solid colours, the same on every run."""
    rng = random.Random(seed)
    for label, (r, g, b) in COLOURS.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for n in range(per_label):
            image = Image.new("RGB", (48, 48))
            image.putdata([tuple(max(0, min(255, c + rng.randint(-40, 40))) for c in (r, g, b))
                           for _ in range(48 * 48)])
            image.save(root / label / f"{n}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="local:clip-small", help="the CLIP provider to include")
    parser.add_argument("--data", type=Path, help="where to write the data set (default: a temp folder)")
    parser.add_argument("--out", help="results file, to resume an interrupted run")
    parser.add_argument("--plot", help="draw the report into this image (needs mmsdk[plot])")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = write_dataset(args.data or Path(scratch) / "colours")
        busy = mmsdk.RateLimitError("scripted: too many requests", retry_after=0)
        with TestProvider("guess"), TestProvider("flaky", failures=[busy] * 3):
            providers = ["guess:any", "flaky:any"]
            if any(status.name == "palette" for status in mmsdk.providers()):
                providers.append("palette")
            providers.append(args.clip)
            report = mmsdk.evaluate(folder, providers=providers, concurrency=2, resume=args.out,
                                    policy=mmsdk.Policy(retries=0), progress=True)

    print(report.to_markdown())
    best = max(report.providers.values(), key=lambda row: row.accuracy or 0.0)
    print(f"most accurate: {best.provider} ({100 * (best.accuracy or 0.0):.0f}%)")
    if args.plot:
        print(f"plot: {report.plot(args.plot)}")


if __name__ == "__main__":
    main()
