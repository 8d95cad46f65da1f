"""Model folders on disk, looked at without loading anything: what a folder holds, and the built-in model's name.

`is_native_bundle` / `read_manifest` read a MAGI Studio model folder's description (model.json);
`locate_magi_checkpoint` finds an official MAGI-1 checkpoint's weights, VAE and T5 under a folder. No
torch: the Settings dialog calls these on the GUI thread to say what a chosen folder holds; loading is
magi_engine.bundle and magi_engine.magi_checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from magi_engine.errors import CheckpointError
from magi_engine.variants import MAGI_VARIANTS, MagiVariant

#: The small model that ships with the app.
STUDIO_MINI = "studio-mini"
FORMAT_NAME = "magi-studio-model"
FORMAT_VERSION = 2


def is_native_bundle(folder: Path) -> bool:
    return (folder / "model.json").is_file()


def read_manifest(folder: Path) -> dict:
    path = folder / "model.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # Recursion: nested too deep
        raise CheckpointError(f"{path} cannot be read as a model description ({exc}). "
                              "Reinstall or re-download the model.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not a MAGI Studio model description.")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer MAGI Studio (format version {manifest.get('version')}). "
                              "Update MAGI Studio to use this model.")
    return manifest


@dataclass(frozen=True)
class MagiCheckpoint:
    variant: MagiVariant
    weights: Path
    vae: Path | None
    t5: Path | None
    special_tokens: Path | None


def locate_magi_checkpoint(folder: str | Path, variant: str | None = None) -> MagiCheckpoint:
    """Find the weights, VAE, T5 and special tokens of a MAGI-1 variant under `folder`."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CheckpointError(f"The checkpoint folder {folder} does not exist. Choose the folder you downloaded "
                              "MAGI-1 into (it contains ckpt/magi/...).")
    candidates = []
    for name, v in MAGI_VARIANTS.items():
        if variant and name != variant:
            continue
        options = [folder / "ckpt" / "magi" / name / v.weight_subdir, folder / name / v.weight_subdir]
        if folder.name == name:
            options.append(folder / v.weight_subdir)
        if folder.name == v.weight_subdir and folder.parent.name == name:
            options.append(folder)
        candidates += [(v, w) for w in options if w.is_dir()]
    unique = {str(w): (v, w) for v, w in candidates}
    if not unique:
        raise CheckpointError(f"No MAGI-1 weights found in {folder}. Expected ckpt/magi/<variant>/inference_weight* "
                              f"with a variant among {', '.join(MAGI_VARIANTS)}.")
    if len(unique) > 1:
        names = sorted({v.name for v, _ in unique.values()})
        raise CheckpointError(f"{folder} holds several MAGI-1 variants ({', '.join(names)}); choose one.")
    chosen, weights = next(iter(unique.values()))
    roots = [folder, *folder.parents][:5]
    vae = _first_dir([r / "ckpt" / "vae" for r in roots] + [r / "vae" for r in roots], "config.json")
    t5 = _first_dir([r / sub for r in roots for sub in ("ckpt/t5/t5-v1_1-xxl", "t5/t5-v1_1-xxl",
                                                          "t5_pretrained/t5-v1_1-xxl")], "config.json")
    tokens = next((p for r in roots for p in (r / "special_tokens.npz", r / "example/assets/special_tokens.npz",
                                              r / "ckpt/special_tokens.npz") if p.is_file()), None)
    return MagiCheckpoint(chosen, weights, vae, t5, tokens)


def _first_dir(options: list[Path], marker: str) -> Path | None:
    return next((p for p in options if (p / marker).is_file()), None)
