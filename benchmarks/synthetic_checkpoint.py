"""A MAGI-1 checkpoint folder in the official hub layout with random weights, at full size or tiny.

The official weights cannot be fetched on our machines; end-to-end figures (load, memory, time to the
first chunk through Session and `magi-studio generate`) need a folder the real loader reads:

    ckpt/magi/<variant>/inference_weight.distill[.fp8]   the DiT (bf16, or FP8 in MAGI-1's layout)
    ckpt/vae                                             the ViT VAE (config.json + safetensors)
    ckpt/t5/t5-v1_1-xxl                                  T5-v1.1-XXL's encoder (bf16) and a word tokenizer

Speed and memory do not depend on the values. The FP8 variants quantise layers 1..L-2 of a random DiT
with magi_engine.loading.fp8.quantize_fp8_linear (one activation scale for every linear). Full-size DiTs are
drawn one official tensor at a time (`write_dit_by_tensor`), so the 24B needs no 48 GB of GPU memory; their
LayerNorm gains are drawn around 1 as the model applies them: MAGI-1 stores most norms' gamma zero-centred
(gamma - 1, magi_engine.dit.norms.OnePlusLayerNorm), so those tensors are drawn around 0. (Drawn around 1,
they gave every QK-norm a gain of 2: attention logits four times sharper than a unit-gain model's, which
made `gpu_speed.py onload`'s FP8 error 13% rel L2 where the same quantiser gives 5.6% on gpu_speed's
random_dit.) Errors against bf16 want the very weights another mode measured: `write_whole_dit` writes
benchmarks.magi_scale.random_dit's.

    python benchmarks/synthetic_checkpoint.py /tmp/magi --variant 4.5B_distill 4.5B_distill_quant
    python benchmarks/synthetic_checkpoint.py /tmp/magi --variant 24B_distill_quant   # 24B FP8, about 24 GB
    python benchmarks/synthetic_checkpoint.py /tmp/tiny --tiny      # seconds on a CPU (tests)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.magi_scale import random_dit  # noqa: E402
from magi_engine.dit.model import MagiDiT  # noqa: E402
from magi_engine.dit.norms import OnePlusLayerNorm  # noqa: E402
from magi_engine.dit.official_keys import expected_official_shapes, official_key_plan, to_official_state_dict  # noqa: E402,E501
from magi_engine.loading import save_sharded  # noqa: E402
from magi_engine.loading.fp8 import quantize_fp8_linear  # noqa: E402
from magi_engine.variants import magi_variant, tiny_dit_config  # noqa: E402
from magi_engine.vae import VideoVAE  # noqa: E402
from magi_engine.vae.config import VAEConfig  # noqa: E402

#: T5-v1.1-XXL's encoder (google/t5-v1_1-xxl config.json).
T5_XXL = dict(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64, vocab_size=32128,
              feed_forward_proj="gated-gelu", relative_attention_num_buckets=32, relative_attention_max_distance=128,
              is_gated_act=True, dense_act_fn="gelu_new", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
TINY_VAE = VAEConfig(video_size=32, video_length=8, embed_dim=256, depth=1, num_heads=4, mlp_ratio=1.0)
#: |input| the FP8 activation scale is set for (random inputs of unit scale stay inside ±448·scale).
FP8_INPUT_AMAX = 16.0


def variant_for(name: str, tiny: bool):
    variant = magi_variant(name)
    if tiny:
        return dataclasses.replace(variant, dit=dataclasses.replace(tiny_dit_config(distilled=variant.dit.distilled),
                                                                   num_layers=4))
    return variant


def randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    generator = torch.Generator(device=next(module.parameters()).device).manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim >= 2:
                p.normal_(0, p[0].numel() ** -0.5, generator=generator)
            else:
                p.normal_(1.0 if p.ndim == 1 else 0.0, 0.02, generator=generator)
    return module


def fp8_official_state(official: dict[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """The official bf16 state with the linears of layers 1..L-2 in MAGI-1's FP8 layout."""
    layers = list(range(1, config.num_layers - 1))
    out = dict(official)
    for source in official_key_plan(config, layers).values():
        keys = source.official
        if len(keys) < 3 or not keys[1].endswith(".weight_scale"):
            continue
        prefix = keys[0][: -len(".weight")]
        dense = out.pop(keys[0])
        stored = quantize_fp8_linear(dense.float(), FP8_INPUT_AMAX, per_channel=len(keys) == 4)
        out.update({f"{prefix}.{name}": tensor.to(dense.device) for name, tensor in stored.items()})
    return out


def zero_centred_keys(config) -> set[str]:
    """The official keys of the norm gains stored zero-centred (gamma - 1): those of the OnePlusLayerNorms."""
    with torch.device("meta"):
        dit = MagiDiT(config)
    ours = {f"{name}.weight" for name, module in dit.named_modules() if isinstance(module, OnePlusLayerNorm)}
    return {key for name, source in official_key_plan(config).items() if name in ours for key in source.official}


def random_official_tensor(key: str, shape: tuple[int, ...], device: torch.device, generator, *,
                           zero_centred: bool = False) -> torch.Tensor:
    """A random official-layout tensor, scaled as random_dit scales ours (bf16; the loader casts). Norm gains
    are drawn around 1 as applied: a `zero_centred` one (stored as gamma - 1) around 0."""
    if key.endswith("bands"):
        n = shape[0]
        return 1.0 / 10000.0 ** (torch.arange(n, device=device, dtype=torch.float32) / n)
    t = torch.empty(shape, device=device, dtype=torch.bfloat16)
    if len(shape) >= 2:
        return t.normal_(0, math.prod(shape[1:]) ** -0.5, generator=generator)
    return t.normal_(1.0 if key.endswith("weight") and not zero_centred else 0.0, 0.02, generator=generator)


def write_dit_by_tensor(root: Path, name: str, device: torch.device, *, variant=None) -> None:
    """A full-size DiT written without ever holding the whole model on the device: each official tensor is
    drawn, quantised where MAGI-1's FP8 layout wants it, and moved to CPU memory (24B FP8: about 24 GB).
    `variant` replaces `name`'s (tests: a small model)."""
    variant = variant_for(name, tiny=False) if variant is None else variant
    config = variant.dit
    zero_centred = zero_centred_keys(config)
    quantised = {}
    if variant.fp8:
        for source in official_key_plan(config, list(range(1, config.num_layers - 1))).values():
            keys = source.official
            if len(keys) >= 3 and keys[1].endswith(".weight_scale"):
                quantised[keys[0]] = len(keys) == 4
    generator = torch.Generator(device=device).manual_seed(0)
    out = {}
    for key, shape in expected_official_shapes(config).items():
        tensor = random_official_tensor(key, shape, device, generator, zero_centred=key in zero_centred)
        if key in quantised:
            prefix = key[: -len(".weight")]
            stored = quantize_fp8_linear(tensor, FP8_INPUT_AMAX, per_channel=quantised[key])
            out.update({f"{prefix}.{part}": value.cpu() for part, value in stored.items()})
        else:
            out[key] = tensor.cpu()
        del tensor
    save_sharded(out, root / variant.hub_folder, 4 * 2**30)


def write_dit(root: Path, name: str, tiny: bool, device: torch.device) -> None:
    if not tiny:
        write_dit_by_tensor(root, name, device)
        return
    write_whole_dit(root, variant_for(name, tiny), device, torch.float32, shard_bytes=60_000)


def write_whole_dit(root: Path, variant, device: torch.device, dtype: torch.dtype, *,
                    shard_bytes: int = 4 * 2**30) -> Path:
    """benchmarks.magi_scale.random_dit(variant, device, dtype) in the official layout under `root` (the whole
    model on `device` first: 4.5B in bf16 8.4 GiB); returns the DiT folder. Loaded in `dtype`, it is that very
    model (the weights gpu_speed.py's other modes measure)."""
    dit = random_dit(variant, device, dtype)
    official = to_official_state_dict(dit.state_dict(), variant.dit)
    del dit
    if variant.fp8:
        official = fp8_official_state(official, variant.dit)
    folder = root / variant.hub_folder
    save_sharded({k: v.detach().cpu() for k, v in official.items()}, folder, shard_bytes)
    return folder


def write_vae(root: Path, tiny: bool, device: torch.device) -> None:
    config = TINY_VAE if tiny else VAEConfig()
    with torch.device("meta"):
        vae = VideoVAE(config)
    vae = randomize(vae.to_empty(device=device), seed=2)
    folder = root / "ckpt" / "vae"
    save_sharded({k: v.detach().to("cpu", torch.float32 if tiny else torch.bfloat16) for k, v in vae.state_dict().items()},
                 folder, 4 * 2**30)
    ddconfig = {k: v for k, v in config.to_dict().items()
                if k not in ("scale_factor", "tile_size", "tile_overlap", "tile_frames", "bf16_attention_inputs")}
    (folder / "config.json").write_text(json.dumps({"_class_name": "ViTVAE", "ddconfig": ddconfig}))


def write_t5(root: Path, caption_channels: int, tiny: bool, device: torch.device) -> None:
    from transformers import T5Config, T5EncoderModel

    from tests.engine.factories import save_tiny_t5  # its word-level tokenizer (prompts of any words work)

    folder = root / "ckpt" / "t5" / "t5-v1_1-xxl"
    save_tiny_t5(folder, d_model=caption_channels)
    if tiny:
        return
    (folder / "model.safetensors").unlink()  # the tiny weights; the full model is written in shards
    config = T5Config(**T5_XXL)
    with torch.device("meta"):
        model = T5EncoderModel(config)
    model = randomize(model.to_empty(device=device).to(torch.bfloat16), seed=3)
    model.save_pretrained(folder, safe_serialization=True, max_shard_size="5GB")


def build(root: Path, variants: list[str], tiny: bool) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() and not tiny else "cpu")
    seconds = {}
    for name in variants:
        started = time.perf_counter()
        write_dit(root, name, tiny, device)
        seconds[name] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    write_vae(root, tiny, device)
    write_t5(root, variant_for(variants[0], tiny).dit.caption_channels, tiny, device)
    seconds["vae_t5"] = round(time.perf_counter() - started, 1)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--variant", nargs="+", default=["4.5B_distill"])
    parser.add_argument("--tiny", action="store_true", help="tiny DiT, VAE and T5 (a CPU test of the layout)")
    args = parser.parse_args()
    print(json.dumps({"built": str(args.root), "seconds": build(args.root, args.variant, args.tiny)}))


if __name__ == "__main__":
    main()
