"""Tiny random-weight transformers checkpoints, built offline (tests and bench/ share them).

Each ``build_*`` function writes a complete checkpoint folder (``config.json``,
``model.safetensors``, tokenizer and processor files) that loads back through
``from_pretrained(folder)`` exactly like a hub download. Tokenizers are built
in memory (no hub, no sentencepiece): byte-level BPE for CLIP, byte-fallback
BPE for the Llama-style language models and SigLIP. Image processors are the
PIL ones, so torchvision is not needed.

:func:`hub_cache.seed_hub_cache` (tests/hub_cache.py) copies a folder into a Hugging Face hub cache under a
repo id, so ``from_pretrained("ORG/NAME")`` finds it with ``HF_HUB_OFFLINE=1``.

Weights are seeded: the same builder gives the same checkpoint in every process.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

__all__ = [
    "ANSWER_JSON",
    "ANSWER_PIECES",
    "LLAVA_NEXT_TEMPLATE",
    "LLAVA_TEMPLATE",
    "build_clip",
    "build_llava",
    "build_llava_next",
    "build_scripted_llava",
    "build_siglip",
    "clip_tokenizer",
    "llama_tokenizer",
]

# LLaVA 1.5's own template (llava-hf/llava-1.5-7b-hf), less its generation tags.
LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

# LLaVA-Next (Mistral) style: [INST] ... [/INST]; no system role, like the real one.
LLAVA_NEXT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] }}{% endfor %}{{ ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'][0]['text'] + '</s> ' }}"
    "{% endif %}{% endfor %}"
)

# What the scripted LLaVA always answers: three added tokens, then end of sequence.
ANSWER_PIECES = ('{"label": ', '"cat", ', '"count": 2}')
ANSWER_JSON = "".join(ANSWER_PIECES)

_IMAGE = 32  # pixels per side the tiny vision towers take
_PATCH = 8


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character map (CLIP's byte-level alphabet)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    chars = list(keep)
    extra = 0
    for byte in range(256):
        if byte not in keep:
            keep.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, map(chr, chars), strict=True))


def clip_tokenizer() -> Any:
    """CLIP's byte-level BPE over every byte, no merges (so every byte is a token)."""
    from transformers import CLIPTokenizer

    alphabet = list(_bytes_to_unicode().values())
    vocab = {char: index for index, char in enumerate(alphabet)}
    vocab |= {f"{char}</w>": len(alphabet) + index for index, char in enumerate(alphabet)}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[])


def llama_tokenizer(extra: tuple[str, ...] = ()) -> Any:
    """Byte-fallback BPE over printable ASCII, ``<image>`` special, ``<pad>`` as pad."""
    from transformers import LlamaTokenizer

    pieces = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), "▁",
              *(chr(c) for c in range(33, 127))]
    vocab = {piece: index for index, piece in enumerate(pieces)}
    tokenizer = LlamaTokenizer(vocab=vocab, merges=[])
    tokenizer.add_tokens(["<image>", "<pad>"], special_tokens=True)
    tokenizer.pad_token = "<pad>"
    if extra:
        tokenizer.add_tokens(list(extra))
    return tokenizer


def _clip_image_processor() -> Any:
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(size={"shortest_edge": _IMAGE},
                                 crop_size={"height": _IMAGE, "width": _IMAGE})


def _vision(**overrides: Any) -> dict[str, Any]:
    return {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
            "num_attention_heads": 4, "image_size": _IMAGE, "patch_size": _PATCH} | overrides


def _llama(vocab_size: int, pad: int, **overrides: Any) -> dict[str, Any]:
    return {"model_type": "llama", "vocab_size": vocab_size, "hidden_size": 32,
            "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 512, "bos_token_id": 1,
            "eos_token_id": 2, "pad_token_id": pad} | overrides


def _save(model: Any, processor: Any, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_clip(folder: str | Path, seed: int = 0) -> Path:
    """A CLIP checkpoint (32x32 images, 16-d shared space)."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor

    tokenizer = clip_tokenizer()
    vocab = tokenizer.get_vocab()
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37,
                     "num_hidden_layers": 2, "num_attention_heads": 4,
                     "max_position_embeddings": 77, "bos_token_id": vocab["<|startoftext|>"],
                     "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": 1},
        vision_config=_vision(), projection_dim=16)
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    processor = CLIPProcessor(image_processor=_clip_image_processor(), tokenizer=tokenizer)
    return _save(model, processor, Path(folder))


def build_siglip(folder: str | Path, seed: int = 0) -> Path:
    """A SigLIP checkpoint; its tokenizer is a byte-fallback BPE padded to 16 tokens."""
    import torch
    from transformers import SiglipConfig, SiglipModel, SiglipProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    tokenizer = llama_tokenizer()
    tokenizer.model_max_length = 16  # SigLIP pads every text to max_length (64 in the real ones)
    config = SiglipConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 37,
                     "num_hidden_layers": 2, "num_attention_heads": 4,
                     "max_position_embeddings": 16, "pad_token_id": tokenizer.pad_token_id,
                     "eos_token_id": 2, "bos_token_id": 1, "projection_size": 32},
        vision_config=_vision())
    torch.manual_seed(seed)
    model = SiglipModel(config).eval()
    image_processor = SiglipImageProcessorPil(size={"height": _IMAGE, "width": _IMAGE})
    processor = SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return _save(model, processor, Path(folder))


def _llava_parts(extra: tuple[str, ...] = ()) -> tuple[Any, Any]:
    from transformers import LlavaConfig, LlavaProcessor

    tokenizer = llama_tokenizer(extra)
    config = LlavaConfig(
        vision_config=_vision(model_type="clip_vision_model"),
        text_config=_llama(len(tokenizer), tokenizer.pad_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=(_IMAGE // _PATCH) ** 2, vision_feature_layer=-1)
    processor = LlavaProcessor(image_processor=_clip_image_processor(), tokenizer=tokenizer,
                               patch_size=_PATCH, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE)
    return config, processor


def build_llava(folder: str | Path, seed: int = 0) -> Path:
    """A LLaVA 1.5 checkpoint (CLIP vision tower, Llama language model, LLaVA chat template)."""
    import torch
    from transformers import LlavaForConditionalGeneration

    config, processor = _llava_parts()
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    return _save(model, processor, Path(folder))


def build_scripted_llava(folder: str | Path, seed: int = 0, *, endless: bool = False) -> Path:
    """A LLaVA whose greedy answer to any chat prompt is :data:`ANSWER_JSON`, then ``</s>``.

    The answer is the added tokens :data:`ANSWER_PIECES`. Attention and MLP
    outputs are zeroed, so the logits depend only on the last input token
    (through its embedding): the LM head maps the template's final ``:`` to the
    first piece, each piece to the next, and the last one to ``</s>`` (or, when
    *endless*, back to the first piece: it then only stops at ``max_new_tokens``).
    """
    import torch
    from transformers import LlavaForConditionalGeneration

    config, processor = _llava_parts(extra=ANSWER_PIECES)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    tokenizer = processor.tokenizer
    chain = [tokenizer.convert_tokens_to_ids(piece) for piece in (":", *ANSWER_PIECES)]
    chain.append(chain[1] if endless else config.text_config.eos_token_id)
    language = model.model.language_model
    with torch.no_grad():
        for layer in language.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = language.embed_tokens.weight
        head = model.lm_head.weight
        head.zero_()
        for previous, following in itertools.pairwise(chain):
            head[following] = embed[previous]
    return _save(model, processor, Path(folder))


def build_llava_next(folder: str | Path, seed: int = 0) -> Path:
    """A LLaVA-Next checkpoint (any-resolution tiles over a 32x32 CLIP tower)."""
    import torch
    from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextProcessor
    from transformers.models.llava_next.image_processing_pil_llava_next import (
        LlavaNextImageProcessorPil,
    )

    tokenizer = llama_tokenizer()
    grid = [[_IMAGE, 2 * _IMAGE], [2 * _IMAGE, _IMAGE], [2 * _IMAGE, 2 * _IMAGE]]
    config = LlavaNextConfig(
        vision_config=_vision(model_type="clip_vision_model"),
        text_config=_llama(len(tokenizer), tokenizer.pad_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=grid, vision_feature_layer=-1,
        image_seq_length=(_IMAGE // _PATCH) ** 2)
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": _IMAGE}, crop_size={"height": _IMAGE, "width": _IMAGE},
        image_grid_pinpoints=grid)
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                   patch_size=_PATCH, vision_feature_select_strategy="default",
                                   num_additional_image_tokens=1,
                                   chat_template=LLAVA_NEXT_TEMPLATE)
    torch.manual_seed(seed)
    model = LlavaNextForConditionalGeneration(config).eval()
    return _save(model, processor, Path(folder))



