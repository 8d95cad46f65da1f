"""Turning a model name into a loaded ModelBundle.

A model is named by one of:
  * "studio-mini" — our small model shipped with the app (no download);
  * a local folder — our own format (model.json) or an official MAGI-1 checkpoint folder;
  * a MAGI-1 hub variant — "4.5B_distill", "magi-1-24b-base", "hub:24B_distill" — fetched from
    sand-ai/MAGI-1 through huggingface_hub (cache and HF_HUB_OFFLINE respected).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Literal


from magi_engine.bundle import ModelBundle, load_native_bundle
from magi_engine.config import RuntimeConfig
from magi_engine.device import parse_dtype, pick_device, use_expandable_segments
from magi_engine.errors import CheckpointError, ConfigError
from magi_engine.loading.safetensors_io import refuse_pickled_only
from magi_engine.model_files import STUDIO_MINI, is_native_bundle
from magi_engine.variants import MAGI_VARIANTS, magi_variant

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]


def studio_mini_path() -> Path:
    """Where studio-mini's weights live (inside the installed `resources` package, or the checkout)."""
    from magi_resources import resource_path

    return resource_path("models", STUDIO_MINI)


@dataclass(frozen=True)
class ModelSource:
    kind: Literal["native", "magi-folder", "hub"]
    path: Path | None = None
    variant: str | None = None

    def describe(self) -> str:
        if self.kind == "hub":
            return f"MAGI-1 {self.variant} (Hugging Face hub)"
        return str(self.path)


def resolve_model(spec: str) -> ModelSource:
    """Decide what `spec` names, without loading anything."""
    spec = (spec or STUDIO_MINI).strip()
    if spec == STUDIO_MINI:
        path = studio_mini_path()
        if not (path / "model.json").is_file():
            raise CheckpointError(f"studio-mini's weights are not installed (looked in {path}). Reinstall MAGI Studio, "
                                  "or choose a MAGI-1 checkpoint folder.")
        return ModelSource("native", path)
    if spec.startswith("hub:") or spec.startswith("sand-ai/MAGI-1:"):
        return ModelSource("hub", variant=magi_variant(spec.split(":", 1)[1]).name)
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"{path} is a file; choose the folder that holds the model.")
        if is_native_bundle(path):
            return ModelSource("native", path)
        refuse_pickled_only(path)  # a folder of .bin/.pt files gets "refused: pickles", not "nothing found"
        return ModelSource("magi-folder", path)
    try:
        return ModelSource("hub", variant=magi_variant(spec).name)
    except ConfigError:
        raise CheckpointError(f"{spec!r} is neither a folder nor a known model. Use 'studio-mini', a checkpoint "
                              f"folder, or one of {', '.join(MAGI_VARIANTS)}.") from None


def load_model(spec: str = STUDIO_MINI, *, device: str = "auto", dtype: str | None = None,
               progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
               width: int | None = None, height: int | None = None, text_on_cpu: bool = False,
               runtime: RuntimeConfig | None = None, window: int | None = None,
               chunks: int | None = None) -> ModelBundle:
    """`runtime`: compiled layers, native FP8 and quantising to it on load (magi_engine.dit.compiled.resolve_runtime
    chooses for the device).
    `width`, `height`, `window`, `chunks`: what the memory choices are made for (None: the model's defaults)."""
    from magi_engine.dit.compiled import apply_runtime, resolve_runtime
    from magi_engine.magi_checkpoint import load_magi_checkpoint
    from magi_engine.model_files import locate_magi_checkpoint

    source = resolve_model(spec)
    target = pick_device(device)
    torch_dtype = parse_dtype(dtype, target)
    choice = resolve_runtime(runtime, target)
    if target.type == "cuda":
        use_expandable_segments()
    if source.kind == "native":
        if choice.quantize_fp8:
            log.info("quantising to FP8 on load is for MAGI-1 checkpoints: %s loads as it is", source.path)
        bundle = load_native_bundle(source.path, target, torch_dtype)
        log.info("loaded %s from %s on %s (%s)", bundle.label, source.path, target, torch_dtype)
        apply_runtime(bundle.dit, choice)
        return bundle
    if source.kind == "hub":
        root = download_magi(source.variant, progress=progress, cancel=cancel)
        checkpoint = locate_magi_checkpoint(root, source.variant)
    else:
        checkpoint = locate_magi_checkpoint(source.path)
    bundle = load_magi_checkpoint(checkpoint, target, torch_dtype, width=width, height=height, window=window,
                                  text_on_cpu=text_on_cpu, progress=progress, native_fp8=choice.native_fp8,
                                  text_encoder=(runtime or RuntimeConfig()).text_encoder,
                                  dit_offload=(runtime or RuntimeConfig()).dit_offload, chunks=chunks,
                                  quantize_fp8=choice.quantize_fp8)
    if bundle.dit.layer_streamer is not None and choice.compile_layers:
        log.info("streamed layers run eager: compiled layers are not used with the DiT's layers in CPU memory")
        choice = replace(choice, compile_layers=False)
    apply_runtime(bundle.dit, choice)
    return bundle


def download_magi(variant: str, *, progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> Path:
    from magi_engine.loading import download_variant

    def on_bytes(done: int, total: int) -> None:
        if progress is not None:
            progress(f"Downloading MAGI-1 {variant}", done / total if total else 0.0)

    return download_variant(variant, progress=on_bytes, cancel=cancel)
