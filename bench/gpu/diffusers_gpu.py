"""mmsdk against raw diffusers at real architecture sizes, on a CUDA GPU.

Run: python bench/gpu/diffusers_gpu.py [--case sdxl|flux|all] [--runs 5] [--workdir DIR]

Cases (the seed examples):
* SDXL base 1.0, 1024x1024, 30 steps, DPM-Solver++ (``scheduler="dpm++"``),
  CFG 7.5 and a negative prompt, float16;
* FLUX.1-schnell, 1024x1024, 4 steps, guidance 0, bfloat16.

Weights are random, built on the GPU from the real configs written out below
(the speed of a denoising step does not depend on the weight values), saved
with ``save_pretrained`` into a work folder (~7 GB for SDXL, ~34 GB for Flux;
``--workdir`` reuses one) and loaded by mmsdk through its real path
(``diffusers:/that/folder``). The raw side calls the very pipeline object mmsdk
loaded, directly, with the diffusers recipe: one copy of the weights on the GPU
(two copies of Flux would not fit an 80 GB card) and identical memory placement,
so the difference is exactly what mmsdk adds per call. Calls are interleaved
(raw, mmsdk, mmsdk, raw, ...) after a warm-up; medians are printed as it/s and
images/s with the ratio (goal: mmsdk within 2% of raw).

Tokenizers are the byte-level ones from the test suite's tiny.py: their ids
fit the real vocabularies, CLIP prompts pad to 77 tokens and T5 to Flux's 512,
so the text encoders do real-size work.

Without CUDA the script says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

GOAL = 1.02
SIZE = {"width": 1024, "height": 1024}
TESTS = Path(__file__).resolve().parents[2] / "tests"

# stabilityai/stable-diffusion-xl-base-1.0 (unet/, vae/, text_encoder/, text_encoder_2/, scheduler/)
SDXL_UNET = {
    "sample_size": 128, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
    "block_out_channels": [320, 640, 1280],
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "attention_head_dim": [5, 10, 20], "transformer_layers_per_block": [1, 2, 10],
    "cross_attention_dim": 2048, "use_linear_projection": True,
    "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816, "norm_num_groups": 32,
}
SDXL_VAE = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
    "block_out_channels": [128, 256, 512, 512], "sample_size": 1024,
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "scaling_factor": 0.13025, "force_upcast": True,
}
CLIP_L = {  # openai/clip-vit-large-patch14 text tower (SDXL text_encoder, Flux text_encoder)
    "vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072,
    "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 77,
    "hidden_act": "quick_gelu", "projection_dim": 768,
}
CLIP_BIGG = {  # laion OpenCLIP ViT-bigG/14 text tower (SDXL text_encoder_2)
    "vocab_size": 49408, "hidden_size": 1280, "intermediate_size": 5120,
    "num_hidden_layers": 32, "num_attention_heads": 20, "max_position_embeddings": 77,
    "hidden_act": "gelu", "projection_dim": 1280,
}
# The byte-level test tokenizer's special ids (the real ones are 49406/49407).
CLIP_TOKEN_IDS = {"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}
SDXL_SCHEDULER = {
    "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "steps_offset": 1,
    "timestep_spacing": "leading", "interpolation_type": "linear",
}

# black-forest-labs/FLUX.1-schnell
FLUX_TRANSFORMER = {
    "patch_size": 1, "in_channels": 64, "num_layers": 19, "num_single_layers": 38,
    "attention_head_dim": 128, "num_attention_heads": 24, "joint_attention_dim": 4096,
    "pooled_projection_dim": 768, "guidance_embeds": False, "axes_dims_rope": [16, 56, 56],
}
FLUX_VAE = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 16, "layers_per_block": 2,
    "block_out_channels": [128, 256, 512, 512], "sample_size": 1024,
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "scaling_factor": 0.3611, "shift_factor": 0.1159, "use_quant_conv": False,
    "use_post_quant_conv": False, "force_upcast": True,
}
T5_XXL = {  # google/t5-v1_1-xxl encoder (Flux text_encoder_2)
    "vocab_size": 32128, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24,
    "num_heads": 64, "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128, "feed_forward_proj": "gated-gelu",
    "dense_act_fn": "gelu_new", "is_gated_act": True, "decoder_start_token_id": 0,
}
FLUX_SCHEDULER = {
    "num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": False,
    "base_shift": 0.5, "max_shift": 1.15, "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}


def _tiny() -> ModuleType:
    """The test suite's tiny-checkpoint builders (one place for tests and benchmarks)."""
    sys.path.insert(0, str(TESTS))
    from tiny_modules import load_tiny

    return load_tiny("diffusers")


@contextmanager
def _on_gpu(dtype: Any) -> Iterator[None]:
    """Build modules straight on the GPU in *dtype* (no float32 CPU copy first)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("cuda"):
            yield
    finally:
        torch.set_default_dtype(previous)


def build_sdxl(folder: Path, tiny: ModuleType) -> Path:
    """Save a random-weight SDXL base pipeline (float16) into *folder*."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with _on_gpu(torch.float16):
        pipe = StableDiffusionXLPipeline(
            unet=UNet2DConditionModel(**SDXL_UNET), vae=AutoencoderKL(**SDXL_VAE),
            text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_L, **CLIP_TOKEN_IDS)),
            text_encoder_2=CLIPTextModelWithProjection(
                CLIPTextConfig(**CLIP_BIGG, **CLIP_TOKEN_IDS)),
            tokenizer=tiny.clip_tokenizer(), tokenizer_2=tiny.clip_tokenizer(),
            scheduler=EulerDiscreteScheduler(**SDXL_SCHEDULER))
    pipe.save_pretrained(folder)
    return folder


def build_flux(folder: Path, tiny: ModuleType) -> Path:
    """Save a random-weight FLUX.1-schnell pipeline (bfloat16) into *folder*."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    with _on_gpu(torch.bfloat16):
        pipe = FluxPipeline(
            transformer=FluxTransformer2DModel(**FLUX_TRANSFORMER),
            vae=AutoencoderKL(**FLUX_VAE),
            text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_L, **CLIP_TOKEN_IDS)),
            text_encoder_2=T5EncoderModel(T5Config(**T5_XXL)),
            tokenizer=tiny.clip_tokenizer(), tokenizer_2=tiny.t5_tokenizer(max_length=512),
            scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER))
    pipe.save_pretrained(folder)
    return folder


Case = tuple[int, Callable[[], Any], Callable[[], Any]]  # (steps per call, raw, mmsdk)


def _loaded_pipeline(provider: str, options: dict[str, Any]) -> Any:
    """The pipeline object mmsdk loaded for *provider* (loads it: mmsdk's real path)."""
    from mmsdk._registry import get_registry

    registry = get_registry()
    return registry.model(registry.resolve(provider)).pipeline(options)  # type: ignore[attr-defined]


def sdxl_case(folder: Path) -> Case:
    """The SDXL example: DPM-Solver++, CFG 7.5, a negative prompt, 30 steps at 1024."""
    from diffusers import DPMSolverMultistepScheduler

    import mmsdk

    provider, options = f"diffusers:{folder}", {"device": "cuda", "dtype": "float16"}
    pipe = _loaded_pipeline(provider, options)
    own = pipe.scheduler
    dpm = DPMSolverMultistepScheduler.from_config(own.config)
    prompt = "A serene Japanese garden with cherry blossoms, watercolor style"
    negative = "blurry, low quality, distorted"

    def raw() -> Any:
        pipe.scheduler = dpm  # the recipe's scheduler swap (mmsdk puts the checkpoint's back)
        try:
            return pipe(prompt=prompt, negative_prompt=negative, num_inference_steps=30,
                        guidance_scale=7.5, **SIZE).images[0]
        finally:
            pipe.scheduler = own

    def wrapped() -> Any:
        return mmsdk.generate(prompt, provider=provider, negative_prompt=negative, steps=30,
                              guidance=7.5, scheduler="dpm++", options=options,
                              **SIZE).images[0]

    return 30, raw, wrapped


def flux_case(folder: Path) -> Case:
    """The Flux example: schnell, 4 steps, guidance 0 (mmsdk's defaults for it) at 1024."""
    import mmsdk

    provider, options = f"diffusers:{folder}", {"device": "cuda", "dtype": "bfloat16"}
    pipe = _loaded_pipeline(provider, options)
    prompt = "A cyberpunk cityscape at sunset, neon reflections on wet streets"

    def raw() -> Any:
        return pipe(prompt=prompt, num_inference_steps=4, guidance_scale=0.0, **SIZE).images[0]

    def wrapped() -> Any:
        return mmsdk.generate(prompt, provider=provider, options=options, **SIZE).images[0]

    return 4, raw, wrapped


CASES = {"sdxl": ("SDXL 1024 dpm++ CFG 7.5, 30 steps", sdxl_case),
         "flux": ("Flux-schnell 1024, 4 steps", flux_case)}


def _time(call: Callable[[], Any]) -> float:
    import torch

    torch.cuda.synchronize()
    started = time.perf_counter()
    call()
    torch.cuda.synchronize()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Build, load, time, print the table; return one row per case."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=["sdxl", "flux", "all"], default="all")
    parser.add_argument("--runs", type=int, default=5, help="timed calls per side")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep/reuse the saved checkpoints here (default: a temp folder)")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("diffusers_gpu.py needs torch with CUDA: pip install 'mmsdk[local]'")
    if not torch.cuda.is_available():
        print("diffusers_gpu.py needs a CUDA GPU and none is visible here "
              f"(torch {torch.__version__}); run it on a GPU machine.", file=sys.stderr)
        sys.exit(2)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tiny = _tiny()
    wanted = ["sdxl", "flux"] if args.case == "all" else [args.case]
    builders = {"sdxl": build_sdxl, "flux": build_flux}
    with tempfile.TemporaryDirectory(prefix="mmsdk-gpu-bench-") as tmp:
        root = args.workdir or Path(tmp)
        folders: dict[str, Path] = {}
        for name in wanted:
            folder = root / name
            if not (folder / "model_index.json").is_file():
                print(f"building random-weight {name} in {folder} ...", file=sys.stderr)
                builders[name](folder, tiny)
                torch.cuda.empty_cache()
            folders[name] = folder
        cases = {CASES[name][0]: CASES[name][1](folder) for name, folder in folders.items()}
        rows = _run(cases, args.runs, args.warmup)
    _print(rows, args.runs)
    return rows


def _run(cases: dict[str, Case], runs: int, warmup: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for label, (steps, raw, wrapped) in cases.items():
        for _ in range(warmup):
            raw(), wrapped()
        raw_times: list[float] = []
        sdk_times: list[float] = []
        for run in range(runs):
            pair = [(raw, raw_times), (wrapped, sdk_times)]
            for call, times in pair if run % 2 == 0 else pair[::-1]:
                times.append(_time(call))
        raw_s, sdk_s = statistics.median(raw_times), statistics.median(sdk_times)
        rows.append({"case": label, "steps": steps, "raw_s": raw_s, "mmsdk_s": sdk_s,
                     "raw_it_s": steps / raw_s, "mmsdk_it_s": steps / sdk_s,
                     "raw_img_s": 1 / raw_s, "mmsdk_img_s": 1 / sdk_s, "ratio": sdk_s / raw_s})
    return rows


def _print(rows: list[dict[str, Any]], runs: int) -> None:
    import torch

    print(f"{torch.cuda.get_device_name()}  ({runs} interleaved runs per side, medians)")
    print(f"{'case':<36} {'raw it/s':>9} {'mmsdk it/s':>11} {'raw img/s':>10} "
          f"{'mmsdk img/s':>12} {'ratio':>6}")
    for row in rows:
        print(f"{row['case']:<36} {row['raw_it_s']:9.2f} {row['mmsdk_it_s']:11.2f} "
              f"{row['raw_img_s']:10.3f} {row['mmsdk_img_s']:12.3f} {row['ratio']:6.3f}")
    if rows:
        worst = max(row["ratio"] for row in rows)
        print(f"\nworst ratio {worst:.3f}x ({'meets' if worst <= GOAL else 'misses'} "
              f"the {GOAL}x goal)")


if __name__ == "__main__":
    main()
