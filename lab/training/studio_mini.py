"""The configuration of studio-mini: our small model of the MAGI-1 architecture.

128x128 video at 24 fps (the smallest size the issue allows; an 8x8x4 VAE makes it a 16x16x6 latent
per chunk, 384 DiT tokens, which a laptop CPU denoises in seconds). Sizes are chosen so the shipped
weights stay under 40 MB: VAE 8.9 M parameters (fp16), DiT 15.4 M (int8 matrices), text encoder ~0.5 M.
The DiT was trained with 8 layers up to v2 and then grown to 16 (lab/training/grow.py).
"""

from __future__ import annotations

from magi_engine.config import DiTConfig, GuidanceConfig, SamplingConfig
from magi_engine.text.tiny import WordTextEncoderConfig, build_vocabulary
from magi_engine.vae.config import VAEConfig
from lab.world.captions import vocabulary_sentences

NAME = "studio-mini"
LABEL = "studio-mini (built in)"
WIDTH = HEIGHT = 128

VAE = VAEConfig(video_size=128, video_length=12, embed_dim=768, depth=1, num_heads=12, mlp_ratio=1.0,
                scale_factor=1.0, tile_size=256, tile_overlap=0.25, tile_frames=12, bf16_attention_inputs=False)

TEXT_CHANNELS = 128
TEXT_TOKENS = 24

DIT = DiTConfig(num_layers=16, hidden_size=256, ffn_hidden_size=1024, num_heads=4, num_kv_groups=2, head_dim=64,
                caption_channels=TEXT_CHANNELS, caption_max_length=TEXT_TOKENS, null_caption_tokens=8)

#: Base model with two-pass text guidance (history guidance 1.0 skips the third pass).
SAMPLING = SamplingConfig(num_steps=8, window=4, guidance=GuidanceConfig(
    mode="cfg3", history_scales=(1.0, 1.0, 1.0, 1.0, 1.0), text_scales=(4.0, 4.0, 4.0, 0.0, 0.0)))


def text_config() -> WordTextEncoderConfig:
    """Rotary positions since v6 (v5 and earlier: learned; lab/training/rotary_text.py carried it over)."""
    return WordTextEncoderConfig(build_vocabulary(vocabulary_sentences()), embed_dim=TEXT_CHANNELS, num_layers=2,
                                 num_heads=4, max_tokens=TEXT_TOKENS, ffn_ratio=2.0, positions="rotary")
