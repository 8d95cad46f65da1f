"""The words a word-level text encoder (studio-mini's) knows, and the words of a prompt it does not.

A word-level encoder reads a closed vocabulary: any other word becomes `<unk>`, which the model was
trained to pass over, so "a crimson ball" silently draws a ball of no particular colour. This module
says so before anything is generated. It needs no torch: the vocabulary is read from the JSON header
of the encoder's safetensors file (the config `WordTextEncoder.save` writes there), and the model
folder's lexicon (`lexicon.json`, built by lab/lexicon.py from WordNet and colour-name lists) adds
everyday words the encoder reads as a known word ("crimson" as "red", "ascends" as "rises").

    vocabulary = model_vocabulary("studio-mini")      # None for MAGI-1 models: T5 reads any text
    for unknown in vocabulary.unknown_words("a crimsn ball"):
        unknown.word, unknown.start, unknown.end, unknown.nearest   # "crimsn", 2, 8, ("crimson", ...)
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from magi_engine.errors import CheckpointError

__all__ = ["Vocabulary", "UnknownWord", "tokenize_words", "word_spans", "model_vocabulary", "unknown_words_warning",
           "ENCODER_FILE", "LEXICON_FILE"]

#: Runs of letters and digits (any script); "<unk>" stays one word.
_WORD = re.compile(r"<unk>|[^\W_]+", re.IGNORECASE)
ENCODER_FILE = "text_encoder.safetensors"
LEXICON_FILE = "lexicon.json"
LEXICON_FORMAT = "magi-studio.lexicon"
_ENCODER_FORMAT = "magi-studio.word-text-encoder"
_MAX_HEADER = 16_000_000  # a word encoder's header is a few kilobytes; more than this is damage
_NEAREST = 3


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """(lower-case word, start, end) for every word of `text`, positions in `text` itself."""
    return [(match.group().lower(), match.start(), match.end()) for match in _WORD.finditer(str(text))]


def tokenize_words(text: str) -> list[str]:
    """Lower-case words: runs of letters/digits; everything else separates. A literal "<unk>" is kept
    whole, so training can write the unknown word into a caption."""
    return [word for word, _, _ in word_spans(text)]


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance with adjacent transpositions counted as one edit (typing slips)."""
    previous2, previous = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if previous2 is not None and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], previous2[j - 2] + 1)
        previous2, previous = previous, row
    return previous[-1]


@dataclass(frozen=True)
class UnknownWord:
    """A word of a prompt the model does not know, where it is, and known words to write instead."""

    word: str
    start: int
    end: int
    nearest: tuple[str, ...]


class Vocabulary:
    """The trained words of a word-level encoder plus its lexicon (word -> the known words it reads as)."""

    def __init__(self, words, lexicon: Mapping[str, tuple[str, ...]] | None = None, *, name: str = "studio-mini") -> None:
        #: The model's name as messages say it.
        self.name = name
        self.words: tuple[str, ...] = tuple(sorted({w for w in words if not w.startswith("<")}))
        self._known = frozenset(self.words)
        self.lexicon: dict[str, tuple[str, ...]] = {}
        for word, meaning in (lexicon or {}).items():
            if word not in self._known and all(w in self._known for w in meaning) and meaning:
                self.lexicon[word] = tuple(meaning)

    def knows(self, word: str) -> bool:
        """True for a trained word and for a lexicon word (read as trained words)."""
        word = word.lower()
        return word in self._known or word in self.lexicon

    def meaning(self, word: str) -> tuple[str, ...]:
        """The trained words `word` is read as: itself, its lexicon entry, or () when unknown."""
        word = word.lower()
        if word in self._known:
            return (word,)
        return self.lexicon.get(word, ())

    def nearest(self, word: str, count: int = _NEAREST) -> tuple[str, ...]:
        """Up to `count` trained words to write instead of `word`, fewest edits first (at most one per
        three letters): a trained word itself, or what a lexicon word means ("crimsn" -> crimson -> red)."""
        word = word.lower()
        limit = max(1, (len(word) + 1) // 3)
        ranked = sorted([(edit_distance(word, w), 0, (w,)) for w in self.words if abs(len(w) - len(word)) <= limit]
                        + [(edit_distance(word, w), 1, m) for w, m in self.lexicon.items()
                           if abs(len(w) - len(word)) <= limit])
        found: list[str] = []
        for distance, _, meaning in ranked:
            if distance > limit:
                break
            found += [w for w in meaning if w not in found]
        return tuple(found[:count])

    def unknown_words(self, prompt: str) -> list[UnknownWord]:
        """The words of `prompt` the model neither trained on nor finds in its lexicon, in order."""
        return [UnknownWord(word, start, end, self.nearest(word))
                for word, start, end in word_spans(prompt) if not self.knows(word) and word != "<unk>"]

    @classmethod
    def from_model_folder(cls, folder: str | Path, name: str | None = None) -> "Vocabulary":
        """The vocabulary of the word encoder in `folder` and the lexicon beside it (if any)."""
        folder = Path(folder)
        lexicon_path = folder / LEXICON_FILE
        return cls(read_encoder_words(folder / ENCODER_FILE),
                   read_lexicon(lexicon_path) if lexicon_path.is_file() else None, name=name or folder.name)


def read_encoder_words(path: Path) -> tuple[str, ...]:
    """The vocabulary in the metadata of a word encoder file, from its JSON header alone."""
    try:
        with open(path, "rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            if size > _MAX_HEADER:
                raise ValueError(f"a header of {size} bytes")
            header = json.loads(handle.read(size))
        metadata = header.get("__metadata__") or {}
        if metadata.get(_ENCODER_FORMAT) is None:
            raise ValueError("no word text encoder metadata")
        vocab = json.loads(metadata["config"])["vocab"]
        if not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab):
            raise ValueError("the vocabulary is not a list of words")
        return tuple(vocab)
    except (OSError, struct.error, ValueError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"Cannot read the text encoder's vocabulary from {path} ({error}).") from None


def read_lexicon(path: Path) -> dict[str, tuple[str, ...]]:
    """`words` of a lexicon file: {word: "known words it reads as"} (lab/lexicon.py writes it)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != LEXICON_FORMAT or not isinstance(data.get("words"), dict):
            raise ValueError(f"not a {LEXICON_FORMAT} file")
        return {str(word): tuple(tokenize_words(meaning)) for word, meaning in data["words"].items()}
    except (OSError, ValueError, AttributeError) as error:
        raise CheckpointError(f"Cannot read the lexicon {path} ({error}).") from None


@lru_cache(maxsize=8)
def _folder_vocabulary(folder: str, name: str, stamp: tuple[float, float]) -> Vocabulary:
    return Vocabulary.from_model_folder(folder, name)


def model_vocabulary(spec: str) -> Vocabulary | None:
    """The vocabulary of the model `spec` names when it reads words from a closed vocabulary
    (studio-mini, or a folder of ours with a word encoder); None for any other model (MAGI-1's T5
    reads any text) and for a spec that names nothing readable. Read once per file version."""
    from magi_resources import resource_path

    spec = (spec or "").strip()
    if spec == "studio-mini":
        folder = resource_path("models", "studio-mini")
    elif spec and not spec.startswith(("hub:", "sand-ai/")):
        folder = Path(spec).expanduser()
    else:
        return None
    encoder, lexicon = folder / ENCODER_FILE, folder / LEXICON_FILE
    try:
        if not encoder.is_file():
            return None
        stamp = (encoder.stat().st_mtime, lexicon.stat().st_mtime if lexicon.is_file() else 0.0)
        return _folder_vocabulary(str(folder.resolve()), spec if spec == "studio-mini" else folder.name, stamp)
    except (OSError, CheckpointError):
        return None


def unknown_words_warning(prompt: str, vocabulary: Vocabulary | None) -> str | None:
    """One line naming the words of `prompt` the model will pass over, or None when it knows them all."""
    if vocabulary is None:
        return None
    unknown = vocabulary.unknown_words(prompt)
    if not unknown:
        return None
    parts = []
    for item in dict((u.word, u) for u in unknown).values():
        instead = f" (nearest known: {', '.join(item.nearest)})" if item.nearest else ""
        parts.append(f"{item.word!r}{instead}")
    them = "it" if len(parts) == 1 else "them"
    return f"{vocabulary.name} does not know {'; '.join(parts)} and will pass over {them}, in {prompt!r}."
