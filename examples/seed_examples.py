"""The project's seed examples, each written as one mmsdk call.

Run: python examples/seed_examples.py [--only cloud|local] [--out DIR]

Each example runs when its provider is usable here (a key for the cloud ones,
downloaded weights for the local presets; see `mmsdk providers`); otherwise it
prints why and the exact fix, and the script goes on. Input images are drawn
here (a chart, a receipt, a building, a style reference, two photos) so the
script needs no files.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

import mmsdk


def chart() -> Image.Image:
    image = Image.new("RGB", (640, 400), "white")
    draw = ImageDraw.Draw(image)
    for index, height in enumerate([80, 120, 150, 210, 260, 330]):
        draw.rectangle((60 + index * 95, 370 - height, 120 + index * 95, 370), fill=(40, 90, 200))
    return image


def receipt() -> Image.Image:
    image = Image.new("RGB", (360, 480), "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(["CAFE LUMEN", "2026-11-21", "Espresso    3.20",
                                "Croissant   2.80", "TOTAL       6.00 EUR"]):
        draw.text((30, 30 + row * 40), line, fill="black")
    return image


def building() -> Image.Image:
    image = Image.new("RGB", (512, 512), (200, 210, 220))
    draw = ImageDraw.Draw(image)
    draw.rectangle((180, 80, 330, 500), fill=(90, 90, 100))
    for row in range(10):
        for col in range(3):
            draw.rectangle((195 + col * 45, 100 + row * 38, 225 + col * 45, 125 + row * 38),
                           fill=(230, 230, 180))
    return image


def examples(out: Path) -> dict[str, tuple[str, Callable[[], str]]]:
    """Name → (kind, function returning a one-line summary)."""

    def save(result: mmsdk.GenerateResult, name: str) -> str:
        path = out / f"{name}.png"
        result.images[0].save(path)
        return f"wrote {path} via {result.provider} in {result.elapsed:.1f}s"

    before, after = Image.new("RGB", (256, 256), "green"), Image.new("RGB", (256, 256), "green")
    ImageDraw.Draw(after).ellipse((90, 90, 170, 170), fill="red")
    return {
        # OpenAI image generation (the seed used DALL-E 3, retired: its successor).
        "openai-image": ("cloud", lambda: save(mmsdk.generate(
            "An isometric illustration of a cozy bookshop with warm lighting",
            provider="openai:gpt-image-2", size="1024x1024", options={"quality": "high"}),
            "bookshop")),
        # GPT-4o visual reasoning on a chart.
        "gpt-4o-chart": ("cloud", lambda: mmsdk.understand(
            "Analyze this chart. What trends do you see?", images=[chart()],
            provider="openai:gpt-5.5", detail="high", max_tokens=1000).text),
        # Gemini multi-image reasoning (through google-genai, not google-generativeai).
        "gemini-compare": ("cloud", lambda: mmsdk.understand(
            "Compare these two images and describe what changed:", images=[before, after],
            provider="gemini").text),
        # Claude document analysis.
        "claude-receipt": ("cloud", lambda: mmsdk.understand(
            "What trends or totals do you see?", images=[receipt()],
            provider="anthropic").text),
        # SDXL with the DPM-Solver multistep scheduler and classifier-free guidance.
        "sdxl-dpm": ("local", lambda: save(mmsdk.generate(
            "A serene Japanese garden with cherry blossoms, watercolor style",
            negative_prompt="blurry, low quality, distorted", provider="local:sdxl",
            scheduler="dpm++", steps=30, guidance=7.5, size="1024x1024", progress=True),
            "japanese_garden")),
        # Flux-schnell: flow matching in 4 steps, guidance 0 (the preset's defaults).
        "flux-schnell": ("local", lambda: save(mmsdk.generate(
            "A cyberpunk cityscape at sunset, neon reflections on wet streets",
            provider="local:flux-schnell", size="1024x1024", progress=True), "cyberpunk")),
        # ControlNet canny: mmsdk computes the edge map from the ordinary photo.
        "controlnet-canny": ("local", lambda: save(mmsdk.generate(
            "A futuristic glass skyscraper, photorealistic", provider="local:sd15",
            control_image=building(), control_type="canny", control_scale=0.8, steps=30,
            progress=True), "skyscraper")),
        # IP-Adapter: an image as a style prompt.
        "ip-adapter": ("local", lambda: save(mmsdk.generate(
            "A cat in a garden", provider="local:sd15", reference_image=chart(),
            reference_scale=0.6, steps=30, progress=True), "styled_cat")),
        # CLIP zero-shot classification.
        "clip-zero-shot": ("local", lambda: str(mmsdk.classify(
            before, labels=["cat", "dog", "car"], provider="local:clip").ranked)),
        # LLaVA-Next extraction.
        "llava-next-receipt": ("local", lambda: mmsdk.understand(
            "Extract the total amount and date from this receipt.", images=[receipt()],
            provider="local:llava", max_tokens=200).text),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["cloud", "local"])
    parser.add_argument("--out", type=Path, default=Path("seed-outputs"))
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)
    for name, (kind, run) in examples(args.out).items():
        if args.only and kind != args.only:
            continue
        try:
            print(f"[{name}] {run()}")
        except (mmsdk.ProviderUnavailableError, mmsdk.UnknownProviderError) as exc:
            print(f"[{name}] skipped: {exc}")
        except mmsdk.MMSDKError as exc:
            print(f"[{name}] failed: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
