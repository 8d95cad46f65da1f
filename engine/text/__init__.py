"""Text encoders of the engine: prompt -> [tokens, channels] features for the DiT's cross-attention.

* `TextEncoder` (base): the interface every encoder implements.
* `T5TextEncoder` (t5): MAGI-1's T5 v1.1 XXL path with caption cleaning and special tokens
  (transformers is imported only when a T5 is loaded).
* `WordTextEncoder` (tiny): our small word-level encoder for studio-mini.
* `clean_caption` (clean), `SpecialTokens` / `find_special_tokens` (special_tokens): MAGI-1's pieces.
"""

from engine.text.base import TextEncoder
from engine.text.clean import clean_caption
from engine.text.special_tokens import SpecialTokens, find_special_tokens
from engine.text.t5 import T5TextEncoder
from engine.text.tiny import WordTextEncoder, WordTextEncoderConfig, build_vocabulary

__all__ = ["TextEncoder", "T5TextEncoder", "WordTextEncoder", "WordTextEncoderConfig", "build_vocabulary",
           "clean_caption", "SpecialTokens", "find_special_tokens"]
