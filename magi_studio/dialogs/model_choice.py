"""What the settings dialog says about each model it offers, without loading one.

* `describe_folder(path)`: what a local model folder holds (a MAGI-1 checkpoint through
  magi_engine.magi_checkpoint.locate_magi_checkpoint, or a MAGI Studio model folder) or the CheckpointError.
* `variant_rows(facts, device)`: every MAGI-1 hub variant with its memory estimate at its default size
  (magi_engine.loading.memory), whether this device can hold it, and whether the hub cache has it.
* `dit_placements(spec, target, facts, device, text_encoder)`: each DiT placement (offload mode) of a MAGI-1 model
  with the memory it needs at the project's size, and which one Automatic takes: the loader's own plan
  (magi_engine.loading.memory.plan_memory), asked with the device facts instead of the device.
* `available_devices(facts)`, `model_default_size(spec)`, `set_hub_offline(on)`.
All of it is quick arithmetic or a look at the file system; nothing here touches the network, and
nothing imports torch: what the devices are and hold (magi_engine.device_facts.DeviceFacts) comes from the
engine worker, which asks torch once on its own thread (EngineWorker.ask_device_facts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from magi_engine.device_facts import DeviceFacts
from magi_engine.errors import CheckpointError, DownloadError, OutOfMemory
from magi_engine.loading.hub import download_variant
from magi_engine.loading.memory import (GIB, OFFLOAD_WORDS, MemoryTarget, check_fits, estimate_memory, offload_measured,
                                       plan_memory)
from magi_engine.model_files import STUDIO_MINI, is_native_bundle, locate_magi_checkpoint, read_manifest
from magi_engine.variants import MAGI_VARIANTS, MagiVariant
from magi_studio.document.model import DEFAULT_SIZE


@dataclass(frozen=True)
class FolderReport:
    ok: bool
    #: One line for the dialog: what was found, or the CheckpointError's message.
    text: str
    size: tuple[int, int] | None = None


def describe_folder(path: str | os.PathLike) -> FolderReport:
    """Validate a model folder the way loading will, and say what it holds."""
    folder = Path(path).expanduser()
    if not str(path).strip():
        return FolderReport(False, "Choose the folder that holds the MAGI-1 checkpoint.")
    try:
        if folder.is_dir() and is_native_bundle(folder):
            manifest = read_manifest(folder)
            return FolderReport(True, f"MAGI Studio model “{manifest.get('label', folder.name)}”.",
                                (int(manifest.get("width", DEFAULT_SIZE[0])), int(manifest.get("height", DEFAULT_SIZE[1]))))
        found = locate_magi_checkpoint(folder)
    except CheckpointError as error:
        return FolderReport(False, str(error))
    parts = [f"{found.variant.label}: weights in {found.weights.relative_to(folder)}"]
    parts.append("VAE found" if found.vae else "no VAE found (ckpt/vae)")
    parts.append("T5 found" if found.t5 else "no T5 text encoder found (ckpt/t5/t5-v1_1-xxl)")
    ok = found.vae is not None and found.t5 is not None
    return FolderReport(ok, " · ".join(parts) + ("." if ok else " — download that part as well."),
                        (found.variant.width, found.variant.height))


@dataclass(frozen=True)
class VariantRow:
    variant: MagiVariant
    estimate_gib: float
    #: Whether this device can hold it (None: its free memory is unknown), and why not.
    fits: bool | None
    free_gib: float | None
    explanation: str
    cached: bool

    @property
    def fit_text(self) -> str:
        if self.fits is None:
            return "Free memory unknown"
        return f"{'Fits' if self.fits else 'Too large'} · {self.free_gib:.0f} GiB free"

    @property
    def memory_text(self) -> str:
        return f"about {self.estimate_gib:.0f} GiB at {self.variant.width}×{self.variant.height}"

    @property
    def status_text(self) -> str:
        return "Downloaded" if self.cached else "Not downloaded"


def variant_rows(facts: DeviceFacts | None, device: str = "auto",
                 cache_dir: str | os.PathLike | None = None) -> list[VariantRow]:
    """`facts` None: the devices are not known yet (the engine worker has not answered), so nothing fits or not."""
    target = facts.device(device) if facts is not None else None
    if target is not None and not target.available:
        target = facts.device("cpu")
    free = target.free_bytes if target is not None else None
    rows = []
    for variant in MAGI_VARIANTS.values():
        # An FP8 checkpoint stays FP8 on a GPU with FP8 matmuls, as the loader and dit_placements count it
        estimate = estimate_memory(variant.dit, width=variant.width, height=variant.height,
                                   window=variant.sampling.window, cache_chunks=variant.sampling.cache_chunks,
                                   fp8=variant.fp8, keep_fp8=variant.fp8 and target is not None and target.fp8_matmul)
        fits, explanation = None, estimate.describe()
        if free is not None:
            try:
                check_fits(estimate, target.kind, label=variant.label, available_bytes=free)
                fits = True
            except OutOfMemory as error:
                fits, explanation = False, str(error)
        rows.append(VariantRow(variant, estimate.total_bytes / GIB, fits, None if free is None else free / GIB,
                               explanation, is_cached(variant.name, cache_dir)))
    return rows


#: The DiT placements Settings › Engine offers (magi_engine.config.DIT_OFFLOAD_MODES), in order of memory needed.
PLACEMENT_LABELS = {"none": "On the GPU", "layers": "Layers in CPU memory", "kv-cache": "KV cache in CPU memory",
                    "both": "Layers and KV cache in CPU memory"}


@dataclass(frozen=True)
class PlacementRow:
    mode: str
    gib: float
    #: Whether it fits this GPU's free memory (None: unknown).
    fits: bool | None
    measured: bool

    @property
    def text(self) -> str:
        unmeasured = ", not measured" if not self.measured else ""
        fit = "" if self.fits is None else "" if self.fits else ", too large"
        return f"{PLACEMENT_LABELS[self.mode]} — about {self.gib:.1f} GiB{unmeasured}{fit}"


@dataclass(frozen=True)
class PlacementReport:
    """What Settings › Engine says about the DiT placements of one model at the project's size."""

    rows: tuple[PlacementRow, ...]
    #: The mode Automatic takes, and the plan's sentence (where T5 goes, why this mode, the VAE decode).
    auto: str
    plan_text: str
    target: MemoryTarget

    def row(self, mode: str) -> PlacementRow:
        return next(row for row in self.rows if row.mode == mode)


def placement_variant(spec: str) -> MagiVariant | None:
    """The MAGI-1 variant a model choice loads (a hub name or a checkpoint folder); None: our own models."""
    name = spec.split(":", 1)[-1]
    if name in MAGI_VARIANTS:
        return MAGI_VARIANTS[name]
    if not spec or spec == STUDIO_MINI:
        return None
    try:
        folder = Path(spec).expanduser()
        return None if not folder.is_dir() or is_native_bundle(folder) else locate_magi_checkpoint(folder).variant
    except CheckpointError:
        return None


def dit_placements(spec: str, target: MemoryTarget, facts: DeviceFacts | None, device: str = "auto",
                   text_encoder: str = "auto", dtype: str = "auto") -> PlacementReport | None:
    """Each DiT placement of `spec` at `target` on the CUDA GPU of `facts`, by the loader's plan; None when there
    is no choice to show: no CUDA GPU known, another device chosen, or a model that is not MAGI-1's."""
    variant = placement_variant(spec)
    gpu = facts.device("cuda") if facts is not None else None
    if variant is None or gpu is None or not gpu.available or device not in ("auto", "cuda") \
            or (device == "auto" and facts.auto != "cuda"):
        return None
    weight_bytes = 4 if dtype == "float32" else 2  # magi_engine.device.parse_dtype: bfloat16 on CUDA by default
    plan = plan_memory(variant.dit, width=target.width or variant.width, height=target.height or variant.height,
                       window=target.window or variant.sampling.window, cache_chunks=variant.sampling.cache_chunks,
                       chunks=target.chunks, device="cuda", free=gpu.free_bytes, weight_dtype_bytes=weight_bytes,
                       fp8=variant.fp8, keep_fp8=variant.fp8 and gpu.fp8_matmul,
                       text_encoder=None if text_encoder == "auto" else text_encoder)
    free = gpu.free_bytes
    rows = tuple(PlacementRow(mode, plan.estimates[mode].total_bytes / GIB,
                              None if free is None else plan.estimates[mode].total_bytes <= 0.9 * free,
                              offload_measured(mode)) for mode in PLACEMENT_LABELS)
    words = OFFLOAD_WORDS[plan.dit_offload].format(device="the GPU")
    text = plan.describe() or f"Everything fits on the GPU: {words}."
    return PlacementReport(rows, plan.dit_offload, text, target)


def is_cached(variant: str, cache_dir: str | os.PathLike | None = None) -> bool:
    """Whether the Hugging Face cache holds everything `variant` needs (looked up offline)."""
    try:
        download_variant(variant, cache_dir=cache_dir, local_files_only=True)
    except DownloadError:
        return False
    return True


def available_devices(facts: DeviceFacts | None) -> dict[str, bool]:
    """Each device choice and whether this machine has it (before the facts come: auto and the CPU)."""
    return facts.available() if facts is not None else {"auto": True, "cuda": False, "mps": False, "cpu": True}


def model_default_size(spec: str) -> tuple[int, int]:
    """The size a model generates at by default (studio-mini: 128 × 128)."""
    if spec in MAGI_VARIANTS:
        return MAGI_VARIANTS[spec].width, MAGI_VARIANTS[spec].height
    if spec and spec != STUDIO_MINI and Path(spec).expanduser().is_dir():
        return describe_folder(spec).size or DEFAULT_SIZE
    return DEFAULT_SIZE


def set_hub_offline(on: bool) -> None:
    """Offline mode for this process: HF_HUB_OFFLINE, and huggingface_hub's copy of it read at import."""
    from huggingface_hub import constants

    if on:
        os.environ["HF_HUB_OFFLINE"] = "1"
    else:
        os.environ.pop("HF_HUB_OFFLINE", None)
    constants.HF_HUB_OFFLINE = on
