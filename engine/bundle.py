"""A loaded model: DiT, VAE, text encoder and their defaults, plus our own on-disk format for it.

Our format (used by studio-mini and any model we train) is a folder:

    model.json              {"format": "magi-studio-model", "version": 2, name, label, dit, vae,
                             text_encoder, sampling, width, height, fps, preview}
    dit.safetensors         MagiDiT state dict (our parameter names); since version 2 its large
                            matrices may be int8 with per-row scales (engine/loading/int8.py)
    vae.safetensors         VideoVAE state dict (official MAGI-1 VAE names), large matrices likewise
    text_encoder.safetensors  WordTextEncoder (config in its metadata)

Only safetensors and JSON are read; nothing is unpickled and no code is run from the folder.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from magi_engine.config import DiTConfig, SamplingConfig
from magi_engine.dit.model import MagiDiT
from magi_engine.errors import CheckpointError, ConfigError
from magi_engine.model_files import FORMAT_NAME, FORMAT_VERSION, read_manifest
from magi_engine.output_files import check_output_file, create_temporary, replace_output_file
from magi_engine.text.base import TextEncoder
from magi_engine.vae import LatentRGBProjection, VideoVAE
from magi_engine.vae.config import VAEConfig

log = logging.getLogger(__name__)



@dataclass
class ModelBundle:
    name: str
    label: str
    dit: MagiDiT
    vae: VideoVAE
    text_encoder: TextEncoder
    sampling: SamplingConfig
    width: int
    height: int
    fps: int = 24
    preview: LatentRGBProjection | None = None
    source: str = ""
    #: One sentence on where the parts went to fit the device's memory ("" when there was no choice).
    memory_plan: str = ""
    #: What of the DiT waits in CPU memory (magi_engine.config.DIT_OFFLOAD_MODES; "none" for our own models).
    dit_offload: str = "none"
    #: The VAE decode's working memory in bytes (VideoVAE.decode's budget_bytes); None: MAGI-1's own tiles.
    vae_decode_budget: int | None = None
    #: What the memory plan was made for (magi_engine.loading.memory.MemoryTarget); None: no plan was made.
    memory_target: object = None

    @property
    def device(self) -> torch.device:
        return self.dit.device


def save_native_bundle(bundle: ModelBundle, folder: str | Path, dtype: torch.dtype | None = None,
                       int8_matrices: bool = False) -> None:
    """Write `bundle` in our format; each file is written to a temporary name and renamed into place.

    `dtype` (e.g. float16) stores the DiT and VAE weights smaller; loading casts them to the run dtype.
    `int8_matrices` stores the DiT's and the VAE's large matrices in int8 with per-row scales (half of
    fp16), the rest in `dtype`.
    """
    from magi_engine.loading.int8 import quantize_int8
    from magi_engine.text.tiny import WordTextEncoder

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not isinstance(bundle.text_encoder, WordTextEncoder):
        raise ConfigError("Only models with our word-level text encoder can be saved in the studio format.")
    manifest = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "name": bundle.name, "label": bundle.label,
        "dit": bundle.dit.config.to_dict(), "vae": bundle.vae.config.to_dict(),
        "text_encoder": {"type": "word", "file": "text_encoder.safetensors"},
        "sampling": bundle.sampling.to_dict(), "width": bundle.width, "height": bundle.height, "fps": bundle.fps,
        "preview": bundle.preview.to_dict() if bundle.preview else None,
    }
    def stored(module: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
                for k, v in module.state_dict().items()}

    def stored_int8(module: torch.nn.Module) -> dict[str, torch.Tensor]:
        # int8 codes come from the full-precision weights: casting to `dtype` first would round them twice.
        return quantize_int8({k: v.detach().cpu() for k, v in module.state_dict().items()},
                             float_dtype=dtype or torch.float32)

    pack = stored_int8 if int8_matrices else stored
    _atomic_safetensors(pack(bundle.dit), folder / "dit.safetensors")
    _atomic_safetensors(pack(bundle.vae), folder / "vae.safetensors")
    for name in ("dit.safetensors", "vae.safetensors", "text_encoder.safetensors", "model.json"):
        check_output_file(folder / name, "model file")  # before any weights are written
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        staged = Path(tmp) / "text_encoder.safetensors"
        bundle.text_encoder.save(staged)
        replace_output_file(staged, folder / "text_encoder.safetensors", "model file")
    _atomic_text(json.dumps(manifest, indent=1), folder / "model.json")


def load_native_bundle(folder: str | Path, device: torch.device, dtype: torch.dtype) -> ModelBundle:
    from magi_engine.loading import CheckpointReader, load_into_module
    from magi_engine.loading.int8 import int8_dequantized_tensors
    from magi_engine.dit.model import is_float32_island
    from magi_engine.text.tiny import WordTextEncoder
    from magi_engine.text.words import LEXICON_FILE, Vocabulary, read_lexicon

    folder = Path(folder)
    manifest = read_manifest(folder)
    try:
        dit_config = DiTConfig.from_dict(manifest["dit"])
        vae_config = VAEConfig.from_dict(manifest["vae"])
        sampling = SamplingConfig.from_dict(manifest["sampling"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{folder / 'model.json'} is incomplete: {exc}") from None

    with torch.device("meta"):
        dit = MagiDiT(dit_config)
        vae = VideoVAE(vae_config)
    with CheckpointReader(folder / "dit.safetensors") as reader:
        load_into_module(dit, int8_dequantized_tensors(reader), device=device,
                         dtype_for=lambda name: torch.float32 if is_float32_island(name) else dtype)
    with CheckpointReader(folder / "vae.safetensors") as reader:
        load_into_module(vae, int8_dequantized_tensors(reader), device=device, dtype_for=lambda name: dtype)
    text_file = folder / manifest.get("text_encoder", {}).get("file", "text_encoder.safetensors")
    if not text_file.is_file():
        raise CheckpointError(f"The text encoder file {text_file} is missing. Reinstall the model.")
    text_encoder = WordTextEncoder.load(text_file, device=device)
    if (folder / LEXICON_FILE).is_file():  # everyday words read as trained ones (lab/lexicon.py builds it)
        text_encoder.lexicon = Vocabulary(text_encoder.config.vocab, read_lexicon(folder / LEXICON_FILE)).lexicon
    preview = manifest.get("preview")
    return ModelBundle(
        name=manifest.get("name", folder.name), label=manifest.get("label", folder.name), dit=dit.eval(),
        vae=vae.eval(), text_encoder=text_encoder, sampling=sampling, width=int(manifest.get("width", 256)),
        height=int(manifest.get("height", 256)), fps=int(manifest.get("fps", 24)),
        preview=LatentRGBProjection.from_dict(preview) if preview else None, source=str(folder))


def _atomic_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Write through a temporary name made new (never through a link planted there), then rename it over
    `path` only if `path` is new or a regular file."""
    tmp = path.with_name(path.name + ".tmp")
    os.close(create_temporary(tmp))  # save_file opens by name: the name is now our own new file
    try:
        save_file(tensors, str(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        replace_output_file(tmp, path, "model file")
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _atomic_text(text: str, path: Path) -> None:
    """As _atomic_safetensors, for text."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with os.fdopen(create_temporary(tmp), "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        replace_output_file(tmp, path, "model file")
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
