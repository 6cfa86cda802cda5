"""Tokenizer factories: `huggingface` (load a saved tokenizer), `char` and `bpe` (trained in-process)."""

from arctic_like.tokenizer.base import TokenizerFactory
from arctic_like.tokenizer.huggingface import HFTokenizerConfig, HFTokenizerFactory
from arctic_like.tokenizer.trained import (
    BPETokenizerConfig,
    BPETokenizerFactory,
    CharTokenizerFactory,
    TrainedTokenizerConfig,
    TrainedTokenizerFactory,
)

__all__ = [
    "BPETokenizerConfig",
    "BPETokenizerFactory",
    "CharTokenizerFactory",
    "HFTokenizerConfig",
    "HFTokenizerFactory",
    "TokenizerFactory",
    "TrainedTokenizerConfig",
    "TrainedTokenizerFactory",
]
