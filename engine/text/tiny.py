"""A small word-level text encoder for our own small models (studio-mini).

Our procedural world has a closed vocabulary ("a red circle rolls to the left over green grass"), so
a word tokenizer and a few transformer layers trained together with the DiT replace T5-XXL. The
sequence mirrors MAGI-1's layout: a learned duration token for the number of chunks still to generate
(1..8, counting the chunk itself) comes first, then <bos>, then the words:

    [<dur_k>, <bos>, word_1, ..., word_n]   (cut to max_tokens)

Model: token embedding -> N pre-norm transformer layers -> LayerNorm. Word order reaches the layers
either as learned absolute positions added to the embeddings (`positions="learned"`, studio-mini up to
v5) or as rotary positions on each layer's queries and keys (`positions="rotary"`): attention then
sees only how far apart two words are, so "a red ball rises" means the same at the start of a prompt
or after "Over the grass,", as T5's relative positions make it for MAGI-1. The layers keep
`nn.TransformerEncoderLayer`'s parameter names, so files of either kind load into the same classes.
It is saved as one safetensors file whose metadata holds the JSON config, vocabulary included.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from magi_engine.dit.rope import apply_rotary
from magi_engine.errors import CheckpointError, ConfigError, DeviceError
from magi_engine.text.words import tokenize_words

__all__ = ["WordTextEncoder", "WordTextEncoderConfig", "build_vocabulary", "tokenize_words", "SPECIAL_WORDS",
           "MAX_DURATION", "UNK"]

log = logging.getLogger(__name__)

MAX_DURATION = 8
PAD, UNK, BOS = "<pad>", "<unk>", "<bos>"
#: Every vocabulary starts with these, in this order (ids 0..10).
SPECIAL_WORDS = (PAD, UNK, BOS, *(f"<dur{k}>" for k in range(1, MAX_DURATION + 1)))
_PAD_ID, _UNK_ID, _BOS_ID, _FIRST_DURATION_ID = 0, 1, 2, 3
_FORMAT = "magi-studio.word-text-encoder"
_FORMAT_VERSION = 1
#: How word order reaches the layers (WordTextEncoderConfig.positions).
POSITIONS = ("learned", "rotary")
_ROTARY_BASE = 10000.0


def build_vocabulary(captions: Iterable[str], min_count: int = 1) -> tuple[str, ...]:
    """SPECIAL_WORDS followed by every word seen at least `min_count` times, sorted (deterministic)."""
    if not isinstance(min_count, int) or min_count < 1:
        raise ConfigError(f"build_vocabulary: min_count must be an integer >= 1, got {min_count!r}")
    counts = Counter(word for caption in captions for word in tokenize_words(caption))
    words = (word for word, n in counts.items() if n >= min_count and word not in SPECIAL_WORDS)
    return SPECIAL_WORDS + tuple(sorted(words))


@dataclass(frozen=True)
class WordTextEncoderConfig:
    vocab: tuple[str, ...]
    embed_dim: int = 256
    num_layers: int = 2
    num_heads: int = 4
    max_tokens: int = 64
    ffn_ratio: float = 4.0
    positions: str = "learned"

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocab", tuple(self.vocab))  # JSON gives lists
        if self.vocab[: len(SPECIAL_WORDS)] != SPECIAL_WORDS:
            raise ConfigError(f"WordTextEncoderConfig.vocab must start with {list(SPECIAL_WORDS)} "
                              "(use build_vocabulary)")
        if len(set(self.vocab)) != len(self.vocab):
            duplicates = sorted(w for w, n in Counter(self.vocab).items() if n > 1)
            raise ConfigError(f"WordTextEncoderConfig.vocab has duplicate entries {duplicates[:10]}")
        bad = [w for w in self.vocab[len(SPECIAL_WORDS):] if tokenize_words(w) != [w]]
        if bad:
            raise ConfigError(f"WordTextEncoderConfig.vocab has entries the tokenizer never produces "
                              f"(not lower-case letters/digits): {bad[:10]}")
        for name in ("embed_dim", "num_layers", "num_heads", "max_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"WordTextEncoderConfig.{name} must be a positive integer, got {value!r}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"WordTextEncoderConfig.embed_dim ({self.embed_dim}) must be a multiple of "
                              f"num_heads ({self.num_heads})")
        if self.max_tokens < 2:
            raise ConfigError(f"WordTextEncoderConfig.max_tokens must be >= 2 (duration token and <bos>), "
                              f"got {self.max_tokens}")
        if not isinstance(self.ffn_ratio, (int, float)) or not 0 < self.ffn_ratio <= 16:
            raise ConfigError(f"WordTextEncoderConfig.ffn_ratio must be in (0, 16], got {self.ffn_ratio!r}")
        if self.positions not in POSITIONS:
            raise ConfigError(f"WordTextEncoderConfig.positions must be one of {list(POSITIONS)}, got {self.positions!r}")
        if self.positions == "rotary" and (self.embed_dim // self.num_heads) % 2:
            raise ConfigError(f"WordTextEncoderConfig: rotary positions need an even head size, got "
                              f"{self.embed_dim // self.num_heads}")

    @property
    def ffn_dim(self) -> int:
        return max(1, round(self.embed_dim * self.ffn_ratio))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "WordTextEncoderConfig":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ConfigError("WordTextEncoderConfig JSON must be an object")
        known = {"vocab", "embed_dim", "num_layers", "num_heads", "max_tokens", "ffn_ratio", "positions"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"WordTextEncoderConfig: unknown field(s) {unknown}; known are {sorted(known)}")
        return cls(**data)


class SelfAttention(nn.Module):
    """Multi-head self-attention with `nn.MultiheadAttention`'s parameter names, optionally rotary."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, angles: torch.Tensor | None) -> torch.Tensor:
        """x [B, L, C], mask [B, L] (True = valid), angles [L, head_dim/2] or None -> [B, L, C]."""
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).unflatten(-1, (3, self.heads, -1)).unbind(2)
        if angles is not None:  # [B, L, heads, head_dim]
            q, k = apply_rotary(q, angles).to(v.dtype), apply_rotary(k, angles).to(v.dtype)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             attn_mask=mask[:, None, None, :])  # [B, heads, L, head_dim]
        return self.out_proj(out.transpose(1, 2).flatten(2))


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer (GELU, no dropout) with `nn.TransformerEncoderLayer`'s parameter names."""

    def __init__(self, dim: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.linear1, self.linear2 = nn.Linear(dim, ffn_dim), nn.Linear(ffn_dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, angles: torch.Tensor | None) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x), mask, angles)
        return x + self.linear2(F.gelu(self.linear1(self.norm2(x))))


def rotary_angles(length: int, head_dim: int, device: torch.device) -> torch.Tensor:
    """[length, head_dim/2]: token position x the usual geometric frequencies (base 10000)."""
    frequencies = _ROTARY_BASE ** (-torch.arange(head_dim // 2, dtype=torch.float32, device=device) / (head_dim // 2))
    return torch.arange(length, dtype=torch.float32, device=device)[:, None] * frequencies


class WordTextEncoder(nn.Module):
    """`TextEncoder` for our small models; also trainable (`encode_batch` keeps gradients)."""

    def __init__(self, config: WordTextEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_dim = config.embed_dim
        self.max_tokens = config.max_tokens
        self._ids = {word: i for i, word in enumerate(config.vocab)}
        #: Everyday words read as trained ones ("crimson" -> ("red",)): the model folder's lexicon.json,
        #: set by the bundle loader (magi_engine.text.words.Vocabulary.lexicon).
        self.lexicon: dict[str, tuple[str, ...]] = {}
        self.token_embedding = nn.Embedding(len(config.vocab), config.embed_dim, padding_idx=_PAD_ID)
        self.rotary = config.positions == "rotary"
        if not self.rotary:
            self.position_embedding = nn.Parameter(torch.zeros(config.max_tokens, config.embed_dim))
        self.layers = nn.ModuleList(EncoderLayer(config.embed_dim, config.num_heads, config.ffn_dim)
                                    for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.embed_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Small embeddings, as in GPT-2/BERT: pre-norm layers see unit-scale activations after the norm.
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        with torch.no_grad():
            self.token_embedding.weight[_PAD_ID].zero_()
        if not self.rotary:
            nn.init.normal_(self.position_embedding, std=0.02)

    # Tokens ----------------------------------------------------------------------------------------
    def tokenize(self, prompt: str, chunks_remaining: int = 1) -> list[int]:
        """[<dur_k>, <bos>, words...] as ids, cut to max_tokens; a lexicon word becomes the trained words
        it means, any other unknown word <unk>."""
        if not isinstance(chunks_remaining, int) or isinstance(chunks_remaining, bool) or chunks_remaining < 1:
            raise ConfigError(f"chunks_remaining must be an integer >= 1 (the chunk itself counts), "
                              f"got {chunks_remaining!r}")
        duration = _FIRST_DURATION_ID + min(chunks_remaining, MAX_DURATION) - 1
        words = []
        for word in tokenize_words(prompt):
            if word in self._ids:
                words.append(self._ids[word])
            else:
                words += [self._ids[w] for w in self.lexicon.get(word, ("<unk>",))]
        return [duration, _BOS_ID, *words][: self.max_tokens]

    # Forward ---------------------------------------------------------------------------------------
    def encode_batch(self, prompts: Sequence[str],
                     chunks_remaining: int | Sequence[int] = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Features [B, L, C] and mask [B, L] (True = valid token), L = the longest prompt of the batch.

        Runs on the module's device and dtype, with gradients when enabled (training).
        """
        if isinstance(prompts, str):
            raise ConfigError("encode_batch takes a sequence of prompts, not one string (use encode)")
        if isinstance(chunks_remaining, int):
            chunks_remaining = [chunks_remaining] * len(prompts)
        if len(chunks_remaining) != len(prompts) or not prompts:
            raise ConfigError(f"encode_batch needs >= 1 prompt and one chunks_remaining per prompt, got "
                              f"{len(prompts)} prompts and {len(chunks_remaining)} values")
        token_lists = [self.tokenize(p, c) for p, c in zip(prompts, chunks_remaining)]
        length = max(len(t) for t in token_lists)
        device = self.token_embedding.weight.device
        ids = torch.full((len(token_lists), length), _PAD_ID, dtype=torch.long)
        for row, tokens in enumerate(token_lists):
            ids[row, : len(tokens)] = torch.tensor(tokens)
        ids = ids.to(device)  # [B, L]
        mask = ids != _PAD_ID  # [B, L]; <pad> is never produced by tokenize
        x = self.token_embedding(ids)  # [B, L, C]
        angles = None
        if self.rotary:
            angles = rotary_angles(length, self.embed_dim // self.config.num_heads, device)
        else:
            x = x + self.position_embedding[:length]
        for layer in self.layers:
            x = layer(x, mask, angles)
        x = self.final_norm(x)
        return x * mask.unsqueeze(-1).to(x.dtype), mask  # padded rows zeroed: they carry no meaning

    def encode(self, prompt: str, chunks_remaining: int = 1) -> torch.Tensor:
        """float32 CPU [tokens, embed_dim] for one prompt (TextEncoder protocol)."""
        with torch.no_grad():
            features, mask = self.encode_batch([prompt], chunks_remaining)
        return features[0, : int(mask[0].sum())].float().cpu()

    # Files -----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """One safetensors file; its metadata holds the config JSON (vocabulary included)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in self.state_dict().items()}
        metadata = {"format": "pt", _FORMAT: str(_FORMAT_VERSION), "config": self.config.to_json()}
        save_file(tensors, str(path), metadata=metadata)
        log.info("saved word text encoder to %s", path)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "WordTextEncoder":
        """Read a file written by `save` (safetensors only)."""
        from safetensors import SafetensorError, safe_open

        path = Path(path).expanduser()
        if not path.is_file():
            raise CheckpointError(f"Text encoder file {path} does not exist.")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(f"Text encoder file {path} is not a readable safetensors file ({error}); "
                                  "only safetensors files are accepted.") from None
        if metadata.get(_FORMAT) != str(_FORMAT_VERSION) or "config" not in metadata:
            raise CheckpointError(f"Text encoder file {path} was not written by WordTextEncoder.save "
                                  f"(metadata {sorted(metadata)}).")
        try:
            config = WordTextEncoderConfig.from_json(metadata["config"])
        except (ConfigError, ValueError, TypeError) as error:
            raise CheckpointError(f"Text encoder file {path} has an invalid config: {error}") from None
        model = cls(config)
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as error:
            raise CheckpointError(f"Text encoder file {path} does not match its config: {error}") from None
        try:
            return model.to(device).eval()
        except (RuntimeError, AssertionError) as error:
            raise DeviceError(f"The text encoder cannot run on {device!r}: {error}") from None
