"""Text encoders of the engine: prompt -> [tokens, channels] features for the DiT's cross-attention.

* `TextEncoder` (base): the interface every encoder implements.
* `T5TextEncoder` (t5): MAGI-1's T5 v1.1 XXL path with caption cleaning and special tokens
  (transformers is imported only when a T5 is loaded).
* `WordTextEncoder` (tiny): our small word-level encoder for studio-mini.
* `Vocabulary`, `model_vocabulary` (words): the words a word-level encoder knows, without torch.
* `clean_caption` (clean), `SpecialTokens` / `find_special_tokens` (special_tokens): MAGI-1's pieces.

The names that need torch load on first use (PEP 562), so `magi_engine.text.words` costs no torch.
"""

from importlib import import_module

__all__ = ["TextEncoder", "T5TextEncoder", "WordTextEncoder", "WordTextEncoderConfig", "build_vocabulary",
           "clean_caption", "SpecialTokens", "find_special_tokens", "Vocabulary", "model_vocabulary"]

_MODULES = {"TextEncoder": "base", "T5TextEncoder": "t5", "WordTextEncoder": "tiny", "WordTextEncoderConfig": "tiny",
            "build_vocabulary": "tiny", "clean_caption": "clean", "SpecialTokens": "special_tokens",
            "find_special_tokens": "special_tokens", "Vocabulary": "words", "model_vocabulary": "words"}


def __getattr__(name: str):
    if name in _MODULES:
        return getattr(import_module(f"magi_engine.text.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'magi_engine.text' has no attribute {name!r}")
