"""Carry a trained word text encoder over to a new vocabulary (the world's captions gained or lost words).

    python -m lab.training.vocabulary PARTS_DIR OLD_ENCODER   # to studio_mini.text_config()'s vocabulary

PARTS_DIR is a call's carried parts (`.device/run_in`: text.safetensors holds the raw and EMA encoder);
OLD_ENCODER is a text encoder file saved with the vocabulary those parts were trained with (the
shipped bundle's `text_encoder.safetensors`). A word both vocabularies share keeps its trained
embedding row, a new word starts from a fresh row, a dropped word's row goes; nothing else changes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import torch
from safetensors.torch import load_file, save_file

from magi_engine.errors import CheckpointError

EMBEDDING = "token_embedding.weight"
TEXT_PREFIXES = ("model.text.", "model.ema_text.")


def carry_rows(weight: torch.Tensor, old_vocab: Sequence[str], new_vocab: Sequence[str], *,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """[len(new_vocab), C]: the rows of `weight` ([len(old_vocab), C]) for shared words, fresh rows
    (the encoder's own initialisation, N(0, 0.02)) for new ones."""
    if weight.shape[0] != len(old_vocab):
        raise CheckpointError(f"the embedding has {weight.shape[0]} rows but the old vocabulary {len(old_vocab)} words")
    old_rows = {word: row for row, word in enumerate(old_vocab)}
    fresh = torch.randn(len(new_vocab), weight.shape[1], generator=generator) * 0.02
    rows = [weight[old_rows[w]].float() if w in old_rows else fresh[i] for i, w in enumerate(new_vocab)]
    return torch.stack(rows).to(weight.dtype)


def revocab_parts(parts: Path, old_vocab: Sequence[str], new_vocab: Sequence[str]) -> bool:
    """Rewrite `parts`/text.safetensors for `new_vocab`; False (nothing written) when the vocabularies are equal."""
    path = parts / "text.safetensors"
    if not path.is_file():
        raise CheckpointError(f"No text encoder part at {path}.")
    if tuple(old_vocab) == tuple(new_vocab):
        return False
    tensors = load_file(str(path))
    generator = torch.Generator().manual_seed(0)
    for prefix in TEXT_PREFIXES:
        key = prefix + EMBEDDING
        if key not in tensors:
            raise CheckpointError(f"{path} has no {key}.")
        tensors[key] = carry_rows(tensors[key], old_vocab, new_vocab, generator=generator).contiguous()
    save_file(tensors, str(path))
    return True


if __name__ == "__main__":
    from magi_engine.text.tiny import WordTextEncoder
    from lab.training import studio_mini

    if len(sys.argv) != 3:
        sys.exit("usage: python -m lab.training.vocabulary PARTS_DIR OLD_ENCODER")
    parts_dir, old_encoder = Path(sys.argv[1]), Path(sys.argv[2])
    old = WordTextEncoder.load(old_encoder).config.vocab
    new = studio_mini.text_config().vocab
    if revocab_parts(parts_dir, old, new):
        print(f"{parts_dir}: {len(old)} → {len(new)} words (+{len(set(new) - set(old))}, -{len(set(old) - set(new))})")
    else:
        print(f"{parts_dir} already has this vocabulary")
