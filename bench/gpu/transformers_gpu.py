"""GPU throughput of the transformers provider against raw transformers, full-size models.

Run on a CUDA machine: python bench/gpu/transformers_gpu.py [--only clip|llava]
    [--batch 64] [--tokens 128] [--runs 5]

Two cases, each on random weights built from the real model's config (inline
below, so no download is needed; random weights run exactly as fast as
trained ones), saved with ``save_pretrained`` and loaded by both sides in
float16 on ``cuda``:

- CLIP ViT-L/14 (openai/clip-vit-large-patch14): zero-shot classification of
  a batch of images against 10 labels, in images/s.
- LLaVA-Next 7B (llava-hf/llava-v1.6-mistral-7b-hf): one 672x672 image and a
  question, greedy decoding; time to first token (prefill, ~2.3k image tokens)
  and decode speed in tokens/s, from a 1-token and an N-token run.

Raw is the model card's recipe; mmsdk is ``mmsdk.classify`` / ``mmsdk.understand``
with ``provider="transformers:FOLDER"``. The two sides run one after the other
(raw loaded, measured and freed, then mmsdk), so one copy of the 15 GB model
is on the GPU at a time. Needs ~18 GB of GPU memory and ~17 GB of disk.
Without CUDA it prints why and exits with status 2.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

TESTS = Path(__file__).resolve().parents[2] / "tests"
DEVICE = "cuda"  # a module constant, so the code can be dry-run elsewhere with tiny configs

# openai/clip-vit-large-patch14, config.json (the parts that shape compute).
CLIP_L14: dict[str, Any] = {
    "projection_dim": 768,
    "logit_scale_init_value": 2.6592,
    "text_config": {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072,
                    "num_hidden_layers": 12, "num_attention_heads": 12,
                    "max_position_embeddings": 77, "hidden_act": "quick_gelu",
                    "projection_dim": 768},
    "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                      "num_attention_heads": 16, "image_size": 224, "patch_size": 14,
                      "hidden_act": "quick_gelu", "projection_dim": 768},
}

# llava-hf/llava-v1.6-mistral-7b-hf, config.json.
LLAVA_NEXT_7B: dict[str, Any] = {
    "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
    "projector_hidden_act": "gelu",
    "vision_feature_layer": -2,
    "vision_feature_select_strategy": "default",
    "image_seq_length": 576,
    "text_config": {"model_type": "mistral", "vocab_size": 32064, "hidden_size": 4096,
                    "intermediate_size": 14336, "num_hidden_layers": 32,
                    "num_attention_heads": 32, "num_key_value_heads": 8,
                    "max_position_embeddings": 32768, "rms_norm_eps": 1e-5,
                    "rope_theta": 1000000.0, "sliding_window": None},
    "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024,
                      "intermediate_size": 4096, "num_hidden_layers": 24,
                      "num_attention_heads": 16, "image_size": 336, "patch_size": 14,
                      "projection_dim": 768},
}


def _tiny() -> ModuleType:
    """The test suite's tiny-checkpoint builders (one place for tests and benchmarks)."""
    sys.path.insert(0, str(TESTS))
    from tiny_modules import load_tiny

    return load_tiny("transformers")


def _random_model(model_class: Any, config: Any) -> Any:
    """Random float16 weights, initialised on the GPU (seconds, not minutes, for 7B)."""
    import torch

    torch.manual_seed(0)
    with torch.device(DEVICE):
        return model_class._from_config(config, dtype=torch.float16).eval()


def build_clip_l14(folder: Path, tiny: ModuleType) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = tiny.clip_tokenizer()
    config = CLIPConfig(**CLIP_L14)
    # The stand-in tokenizer's own special ids: CLIP pools the text at its end-of-text token.
    config.text_config.bos_token_id = tokenizer.convert_tokens_to_ids("<|startoftext|>")
    config.text_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model = _random_model(CLIPModel, config)
    size = CLIP_L14["vision_config"]["image_size"]
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
        tokenizer=tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    return folder


def build_llava_next_7b(folder: Path, tiny: ModuleType) -> Path:
    from transformers import (
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    tokenizer = tiny.llama_tokenizer()
    config = LlavaNextConfig(**LLAVA_NEXT_7B,
                             image_token_index=tokenizer.convert_tokens_to_ids("<image>"))
    config.text_config.pad_token_id = tokenizer.pad_token_id
    model = _random_model(LlavaNextForConditionalGeneration, config)
    vision = LLAVA_NEXT_7B["vision_config"]
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": vision["image_size"]},
        crop_size={"height": vision["image_size"], "width": vision["image_size"]},
        image_grid_pinpoints=LLAVA_NEXT_7B["image_grid_pinpoints"])
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                   patch_size=vision["patch_size"],
                                   vision_feature_select_strategy="default",
                                   num_additional_image_tokens=1,
                                   chat_template=tiny.LLAVA_NEXT_TEMPLATE)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    return folder


def _images(count: int, size: tuple[int, int]) -> list[Any]:
    import numpy as np
    from PIL import Image

    rng = np.random.RandomState(0)
    return [Image.fromarray(rng.randint(0, 256, (size[1], size[0], 3), dtype=np.uint8))
            for _ in range(count)]


def _median_seconds(call: Callable[[], Any], runs: int, warmup: int = 2) -> float:
    import torch

    def sync() -> None:
        if DEVICE.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        sync()
        started = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _free() -> None:
    import torch

    import mmsdk

    mmsdk.unload()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def clip_case(folder: Path, batch: int, runs: int) -> dict[str, Any]:
    """images/s for raw CLIP and for mmsdk.classify on the same batch."""
    import torch
    from transformers import AutoModel, AutoProcessor

    import mmsdk

    labels = ["cat", "dog", "car", "tree", "house", "person", "boat", "bird", "chart", "receipt"]
    prompts = [f"a photo of a {label}." for label in labels]
    images = _images(batch, (640, 480))
    model = AutoModel.from_pretrained(folder, dtype=torch.float16).to(DEVICE).eval()
    processor = AutoProcessor.from_pretrained(folder)

    def raw() -> Any:
        with torch.inference_mode():
            inputs = processor(text=prompts, images=images, return_tensors="pt",
                               padding=True).to(DEVICE, torch.float16)
            return model(**inputs).logits_per_image.softmax(dim=1).tolist()

    raw_s = _median_seconds(raw, runs)
    model = None  # drop the raw copy before mmsdk loads its own
    _free()
    provider = f"transformers:{folder}"
    sdk_s = _median_seconds(lambda: mmsdk.classify(images, labels, provider=provider,
                                                   options={"dtype": "float16", "device": DEVICE,
                                                            "batch_size": batch}), runs)
    _free()
    return {"case": f"CLIP ViT-L/14 classify, batch {batch}", "unit": "images/s",
            "raw": batch / raw_s, "mmsdk": batch / sdk_s}


def llava_case(folder: Path, tokens: int, runs: int) -> list[dict[str, Any]]:
    """Prefill time and decode tokens/s for raw generate and for mmsdk.understand."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import mmsdk

    image = _images(1, (672, 672))
    question = "Extract the total amount and date from this receipt."
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float16).to(DEVICE)
    model.eval()
    processor = AutoProcessor.from_pretrained(folder)

    def raw(new_tokens: int) -> Callable[[], Any]:
        def call() -> Any:
            conversation = [{"role": "user", "content": [{"type": "image"},
                                                          {"type": "text", "text": question}]}]
            prompt = processor.apply_chat_template(conversation, add_generation_prompt=True)
            with torch.inference_mode():
                inputs = processor(images=image, text=prompt, return_tensors="pt")
                inputs = inputs.to(DEVICE, torch.float16)
                output = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False)
            return processor.decode(output[0, inputs["input_ids"].shape[1]:],
                                    skip_special_tokens=True)
        return call

    raw_first, raw_all = _median_seconds(raw(1), runs), _median_seconds(raw(tokens), runs)
    model = None  # drop the raw copy before mmsdk loads its own
    _free()
    provider = f"transformers:{folder}"

    def sdk(new_tokens: int) -> Callable[[], Any]:
        return lambda: mmsdk.understand(question, images=image, max_tokens=new_tokens,
                                        provider=provider,
                                        options={"dtype": "float16", "device": DEVICE})

    produced = sdk(tokens)().usage.output_tokens or tokens  # random weights rarely stop early
    sdk_first, sdk_all = _median_seconds(sdk(1), runs), _median_seconds(sdk(tokens), runs)
    _free()
    return [
        {"case": "LLaVA-Next 7B time to first token", "unit": "ms",
         "raw": raw_first * 1000, "mmsdk": sdk_first * 1000},
        {"case": f"LLaVA-Next 7B decode, {produced} tokens", "unit": "tokens/s",
         "raw": (produced - 1) / (raw_all - raw_first),
         "mmsdk": (produced - 1) / (sdk_all - sdk_first)},
    ]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the GPU cases and print a table; returns its rows ([] without CUDA)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["clip", "llava"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("transformers_gpu: torch is not installed (pip install 'mmsdk[local]').",
              file=sys.stderr)
        return []
    if not torch.cuda.is_available():
        print("transformers_gpu: no CUDA GPU here (torch.cuda.is_available() is False); this "
              "benchmark needs one with ~18 GB free. Nothing was run.", file=sys.stderr)
        return []
    tiny = _tiny()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mmsdk-gpu-bench-") as tmp:
        if args.only in (None, "clip"):
            rows.append(clip_case(build_clip_l14(Path(tmp) / "clip", tiny), args.batch, args.runs))
        if args.only in (None, "llava"):
            folder = build_llava_next_7b(Path(tmp) / "llava_next", tiny)
            _free()
            rows += llava_case(folder, args.tokens, args.runs)
    print(f"{'case (' + torch.cuda.get_device_name() + ', float16)':<44} {'raw':>10} "
          f"{'mmsdk':>10} {'unit':<9} {'mmsdk/raw':>9}")
    for row in rows:
        print(f"{row['case']:<44} {row['raw']:10.1f} {row['mmsdk']:10.1f} {row['unit']:<9} "
              f"{row['mmsdk'] / row['raw']:9.3f}")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 2)
