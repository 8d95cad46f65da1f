"""Tiny random components of the MAGI-1 architecture for engine tests (CPU, float32, milliseconds)."""

from __future__ import annotations

import torch

from magi_engine.config import GuidanceConfig, SamplingConfig
from magi_engine.dit.model import MagiDiT
from magi_engine.sampler.loop import ChunkPlan
from magi_engine.variants import tiny_dit_config

LATENT_H, LATENT_W = 4, 6


def randomize_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-trivial random weights everywhere (norm offsets too, so the "+1" convention matters)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
            elif name.endswith("bands"):
                p.mul_(0.8 + 0.4 * torch.rand(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return module


def tiny_dit(*, distilled: bool = False, gated: bool = False, seed: int = 0) -> MagiDiT:
    return randomize_(MagiDiT(tiny_dit_config(distilled=distilled, gated=gated)), seed).eval()


def tiny_sampling(*, window: int = 4, steps: int = 8, distilled: bool = False) -> SamplingConfig:
    return SamplingConfig(num_steps=steps, window=window,
                          guidance=GuidanceConfig(mode="distilled" if distilled else "cfg3"))


def chunk_noise(seed: int) -> torch.Tensor:
    return torch.randn(1, 16, 6, LATENT_H, LATENT_W, generator=torch.Generator().manual_seed(seed))


def chunk_text(seed: int, tokens: int = 5, channels: int = 32) -> torch.Tensor:
    return torch.randn(tokens, channels, generator=torch.Generator().manual_seed(10_000 + seed))


def plans(indices, *, text_seed_offset: int = 0) -> list[ChunkPlan]:
    return [ChunkPlan(i, chunk_noise(i), chunk_text(i + text_seed_offset, tokens=3 + i % 4)) for i in indices]


# --- A whole tiny model (DiT + VAE + our word text encoder) for session and command-line tests -----

TINY_VOCAB_CAPTIONS = ("a red ball falls to the floor", "the blue square moves left", "a green triangle grows")


def tiny_bundle(*, distilled: bool = True, seed: int = 0):
    """A ModelBundle of the real classes with random weights (64x64 video, 4 steps by default)."""
    import dataclasses

    from magi_engine.bundle import ModelBundle
    from magi_engine.text.tiny import WordTextEncoder, WordTextEncoderConfig, build_vocabulary
    from magi_engine.vae import VideoVAE, fit_latent_rgb_projection
    from magi_engine.vae.config import VAEConfig

    torch.manual_seed(seed)
    text = WordTextEncoder(WordTextEncoderConfig(build_vocabulary(TINY_VOCAB_CAPTIONS), embed_dim=32, num_layers=1,
                                                 num_heads=2, max_tokens=16)).eval()
    dit = tiny_dit(distilled=distilled, seed=seed)
    vae = VideoVAE(VAEConfig(video_size=32, video_length=8, embed_dim=256, depth=1, num_heads=4, mlp_ratio=1.0,
                             tile_size=64)).eval()
    sampling = dataclasses.replace(tiny_sampling(steps=4, distilled=distilled))
    return ModelBundle(name="tiny", label="Tiny test model", dit=dit, vae=vae, text_encoder=text, sampling=sampling,
                       width=64, height=64, preview=fit_latent_rgb_projection(vae), source="memory")


T5_WORDS = "a red blue green circle square rolls slides to the left right over grass sand".split()


def save_tiny_t5(folder, d_model: int = 32):
    """A 2-layer random T5 encoder with a word-level tokenizer, saved as transformers would (safetensors)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(T5_WORDS)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    # T5 appends </s> to every sequence ("special tokens added").
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    config = T5Config(vocab_size=len(vocab), d_model=d_model, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    torch.manual_seed(0)
    T5EncoderModel(config).save_pretrained(folder, safe_serialization=True)
    return folder
