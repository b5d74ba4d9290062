"""Quick start: what works here, and one routed call that falls back to what does.

Run: python examples/quickstart.py

With no API keys and no model weights this still runs: the cloud providers are
skipped (each with the variable to set) and the call falls back to the
`palette` example plugin (installed by the development install), which
describes and classifies colours with no model at all. Set OPENAI_API_KEY,
ANTHROPIC_API_KEY or GEMINI_API_KEY and the same call goes to the cloud.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

import mmsdk


def sample_image() -> Image.Image:
    image = Image.new("RGB", (256, 160), (30, 60, 200))
    ImageDraw.Draw(image).ellipse((80, 30, 180, 130), fill=(240, 200, 20))
    return image


def show_providers() -> None:
    """What `mmsdk providers` prints: every provider, whether it works here, and the fix."""
    for status in mmsdk.providers():
        capabilities = ",".join(c.value for c in status.capabilities) or "-"
        state = "ready" if status.usable else f"unavailable: {status.reason}"
        print(f"  {status.name:<18} {capabilities:<28} {state}"[:160])
        if not status.usable and status.fix:
            print(f"  {'':<18} fix: {status.fix}"[:160])


def main() -> None:
    print("== mmsdk.providers() ==")
    show_providers()

    # Warm the local fallback now (imports, clients, weights), not on the first request.
    print(f"\npreloaded: {mmsdk.preload('palette')}")

    image = sample_image()
    route = ["openai:gpt-5.5", "anthropic", "gemini", "palette"]
    print(f"\n== understand, routed over {route} ==")
    answer = mmsdk.understand("Describe this image in one sentence.", images=[image],
                              provider=route)
    for attempt in answer.attempts:
        print(f"  {attempt.provider:<28} {attempt.outcome:<8} {attempt.error or ''}"[:160])
    print(f"answer from {answer.provider}: {answer.text}")
    print(f"sent: {[(s.format, s.width, s.height) for s in answer.sent]}")

    print("\n== classify ==")
    result = mmsdk.classify(image, labels=["blue", "yellow", "red"],
                            provider=["openai:gpt-5.5", "palette"])
    print(f"{result.provider}: top={result.top[0]} scores="
          + ", ".join(f"{label}={score:.2f}" for label, score in result.ranked))


if __name__ == "__main__":
    main()
