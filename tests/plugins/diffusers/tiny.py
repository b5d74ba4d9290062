"""Tiny random-weight diffusers checkpoints, saved like the real ones.

The test fixtures and the benchmarks build their checkpoints here (one place):
SD 1.5, SDXL and Flux pipelines, ControlNets and IP-Adapters with the public
folder layouts, and a Hugging Face hub cache seeded offline so repo ids such as
``stabilityai/stable-diffusion-xl-base-1.0`` resolve to tiny weights.

Sizes keep four VAE blocks (scale factor 8, like the real models) so a 64x64
image has 8x8 latents. Tokenizers are built from a byte-level vocabulary: no
hub access anywhere. Import this module only where torch, diffusers and
transformers are installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

__all__ = [
    "build_controlnet",
    "build_controlnet_pipeline",
    "build_flux",
    "build_ip_adapter",
    "build_lora",
    "build_sd15",
    "build_sdxl",
    "clip_tokenizer",
    "generator",
    "photo",
    "pixels",
    "t5_tokenizer",
]

_VAE_CHANNELS = (8, 8, 8, 8)  # four blocks: vae scale factor 8 like the real models


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable-character table (what ByteLevel uses)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def clip_tokenizer(max_length: int = 77) -> Any:
    """A byte-level CLIP BPE tokenizer with no merges (every byte is a token)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in _bytes_to_unicode().values():
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


CLIP_VOCAB = 2 + 2 * 256


def t5_tokenizer(max_length: int = 512) -> Any:
    """A Unigram T5 tokenizer over single characters (``<unk>`` at id 2)."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(chr(c), -3.0) for c in range(ord("a"), ord("z") + 1)]
    pieces += [(chr(c), -4.0) for c in range(ord("0"), ord("9") + 1)]
    pieces += [(c, -5.0) for c in ",.!?'-"]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)


def _clip_text(with_projection: bool = False, hidden: int = 32) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=CLIP_VOCAB, hidden_size=hidden, intermediate_size=37,
                            num_hidden_layers=2, num_attention_heads=4, projection_dim=32,
                            max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                            pad_token_id=1, hidden_act="gelu")
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return cls(config).eval()


def _vae(latent_channels: int = 4, flux: bool = False) -> Any:
    from diffusers import AutoencoderKL

    extra: dict[str, Any] = {"use_quant_conv": False, "use_post_quant_conv": False,
                             "shift_factor": 0.0609, "scaling_factor": 1.5035} if flux else {}
    return AutoencoderKL(
        block_out_channels=_VAE_CHANNELS, in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=latent_channels, norm_num_groups=4, sample_size=64, **extra)


def _unet(cross_attention_dim: int = 32, sdxl: bool = False) -> Any:
    from diffusers import UNet2DConditionModel

    extra: dict[str, Any] = {}
    if sdxl:
        extra = {"addition_embed_type": "text_time", "addition_time_embed_dim": 8,
                 "projection_class_embeddings_input_dim": 32 + 6 * 8,
                 "transformer_layers_per_block": (1, 1), "use_linear_projection": True}
    return UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=4,
        out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=cross_attention_dim,
        attention_head_dim=(2, 4), norm_num_groups=8, **extra)


def build_sd15(folder: Path, seed: int = 0, *, safe_serialization: bool = True,
               variant: str | None = None) -> Path:
    """Save a tiny ``StableDiffusionPipeline`` (no safety checker) into *folder*.

    ``safe_serialization=False`` writes pickle (``.bin``) weights instead of safetensors;
    ``variant="fp16"`` names the weight files like the hub's fp16 variants.
    """
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    torch.manual_seed(seed)
    pipe = StableDiffusionPipeline(
        unet=_unet(), vae=_vae(), text_encoder=_clip_text(), tokenizer=clip_tokenizer(),
        scheduler=PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                skip_prk_steps=True, steps_offset=1),
        safety_checker=None, feature_extractor=None, image_encoder=None,
        requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=safe_serialization, variant=variant)
    return folder


def build_sdxl(folder: Path, seed: int = 0) -> Path:
    """Save a tiny ``StableDiffusionXLPipeline`` into *folder*."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    torch.manual_seed(seed)
    pipe = StableDiffusionXLPipeline(
        unet=_unet(cross_attention_dim=64, sdxl=True), vae=_vae(),
        text_encoder=_clip_text(), tokenizer=clip_tokenizer(),
        text_encoder_2=_clip_text(with_projection=True), tokenizer_2=clip_tokenizer(),
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                         beta_schedule="scaled_linear", steps_offset=1,
                                         timestep_spacing="leading"),
        image_encoder=None, feature_extractor=None)
    pipe.save_pretrained(folder)
    return folder


def build_flux(folder: Path, seed: int = 0, *, guidance_embeds: bool = False) -> Path:
    """Save a tiny ``FluxPipeline`` into *folder* (schnell-like unless *guidance_embeds*)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4 * 4, num_layers=1, num_single_layers=1,
        attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
        pooled_projection_dim=32, axes_dims_rope=(4, 4, 8), guidance_embeds=guidance_embeds)
    t5 = T5EncoderModel(T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=37, num_layers=2,
                                 num_heads=4, relative_attention_num_buckets=8,
                                 decoder_start_token_id=0)).eval()
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False),
        vae=_vae(latent_channels=4, flux=True), text_encoder=_clip_text(),
        tokenizer=clip_tokenizer(), text_encoder_2=t5, tokenizer_2=t5_tokenizer(),
        transformer=transformer)
    pipe.save_pretrained(folder)
    return folder


def build_controlnet(base: Path, folder: Path, seed: int = 0) -> Path:
    """Save a tiny ``ControlNetModel`` made from *base*'s UNet, with random output convs.

    ``ControlNetModel.from_unet`` zero-initialises the zero convs (so a fresh
    ControlNet has no effect); they are randomised here so a control image
    visibly changes the output.
    """
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 8, 8, 16))
    with torch.no_grad():
        for name, param in controlnet.named_parameters():
            if "controlnet_" in name or "conv_out" in name:
                param.normal_(0.0, 0.5)
    controlnet.save_pretrained(folder)
    return folder


def build_controlnet_pipeline(base: Path, controlnet: Path, folder: Path) -> Path:
    """Save *base*'s components plus *controlnet* as one ``StableDiffusionControlNetPipeline``.

    Its ``model_index.json`` names a ``controlnet``, like the hub's merged
    ControlNet checkpoints.
    """
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(base)
    merged = StableDiffusionControlNetPipeline(
        **{name: module for name, module in pipe.components.items()},
        controlnet=ControlNetModel.from_pretrained(controlnet), requires_safety_checker=False)
    merged.save_pretrained(folder)
    return folder


def build_ip_adapter(base: Path, folder: Path, *, sdxl: bool = False, seed: int = 0) -> Path:
    """Save a tiny IP-Adapter for *base* in the public ``h94/IP-Adapter`` layout.

    ``models/ip-adapter_sd15.safetensors`` (SDXL: ``sdxl_models/ip-adapter_sdxl.safetensors``)
    plus ``image_encoder/`` holding a ``CLIPVisionModelWithProjection``.
    """
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    subfolder, weight = ("sdxl_models", "ip-adapter_sdxl.safetensors") if sdxl else \
        ("models", "ip-adapter_sd15.safetensors")
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    cross = unet.config.cross_attention_dim
    embed_dim = 16
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4,
        image_size=224, patch_size=32, projection_dim=embed_dim, hidden_act="gelu")).eval()
    encoder.save_pretrained(folder / subfolder / "image_encoder")
    tensors = {
        "image_proj.proj.weight": torch.randn(cross * 4, embed_dim),
        "image_proj.proj.bias": torch.randn(cross * 4),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    # diffusers numbers the cross-attention processors 1, 3, 5, ... in attn_processors order
    key = 1
    modules = dict(unet.named_modules())
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        to_k = modules[name.removesuffix(".processor")].to_k.weight
        for proj in ("to_k_ip", "to_v_ip"):
            tensors[f"ip_adapter.{key}.{proj}.weight"] = torch.randn(to_k.shape[0], cross) * 0.5
        key += 2
    (folder / subfolder).mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / subfolder / weight))
    return folder


def build_lora(base: Path, folder: Path, *, seed: int = 0) -> Path:
    """Save a random UNet LoRA for *base* as ``folder/pytorch_lora_weights.safetensors``.

    ``init_lora_weights=False`` makes ``lora_B`` non-zero, so the LoRA visibly
    changes the output; the UNet is a fresh copy loaded from *base*.
    """
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    StableDiffusionPipeline.save_lora_weights(
        folder, unet_lora_layers=get_peft_model_state_dict(unet), safe_serialization=True)
    return folder




def generator(seed: int = 0, device: str = "cpu") -> torch.Generator:
    """What the plugin builds from ``seed=``: the raw side of a comparison uses the same."""
    return torch.Generator(device).manual_seed(seed)


def pixels(image: Image.Image) -> np.ndarray:
    """An image as a uint8 array, for exact comparisons."""
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def photo(seed: int, size: tuple[int, int] = (64, 64)) -> Image.Image:
    """A noisy colour gradient: an ordinary picture, not an edge map."""
    rng = np.random.RandomState(seed)
    base = np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[1], size[0], 3)
    noisy = base + rng.randint(-60, 60, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
