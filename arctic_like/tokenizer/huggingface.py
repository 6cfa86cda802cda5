"""`huggingface` tokenizer factory: ``AutoTokenizer.from_pretrained`` on a local directory (or hub name)."""

from __future__ import annotations

import logging

from pydantic import field_validator
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from arctic_like.config.parts import TokenizerConfig
from arctic_like.pretrained import load_failure, resolve_pretrained
from arctic_like.tokenizer.base import TokenizerFactory

__all__ = ["HFTokenizerConfig", "HFTokenizerFactory"]

logger = logging.getLogger("arctic_like.tokenizer")


class HFTokenizerConfig(TokenizerConfig):
    """``name_or_path``: a directory written by ``save_pretrained`` (relative to the recipe) or a hub name.

    Without a ``tokenizer:`` section, a recipe whose model has a ``name_or_path`` gets this tokenizer from the
    same path (the model's own tokenizer).
    """

    name_or_path: str
    pad_token: str | None = None
    """Pad token to set when the tokenizer has none (default: its eos token)."""
    chat_template: str | None = None
    """A Jinja chat template replacing the tokenizer's own (for chat ``messages`` data)."""
    trust_remote_code: bool = False

    @field_validator("name_or_path")
    @classmethod
    def _resolve_path(cls, value: str) -> str:
        return resolve_pretrained(value, "tokenizer.name_or_path")


class HFTokenizerFactory(TokenizerFactory):
    """Loads a saved Hugging Face tokenizer; gives it a pad token when it lacks one."""

    name = "huggingface"
    config = HFTokenizerConfig

    def create_tokenizer(self) -> PreTrainedTokenizerBase:
        source = self.config.name_or_path
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=self.config.trust_remote_code)
        except (OSError, ValueError) as error:
            raise load_failure(source, "tokenizer", "tokenizer.name_or_path", error) from error
        if self.config.chat_template is not None:
            tokenizer.chat_template = self.config.chat_template
        if tokenizer.pad_token is None:
            pad = self.config.pad_token or tokenizer.eos_token
            if pad is None:
                raise ValueError(
                    f"tokenizer {self.config.name_or_path!r} has neither a pad nor an eos token. "
                    f"Fix: set tokenizer.pad_token in the recipe."
                )
            tokenizer.pad_token = pad
            logger.info("tokenizer has no pad token; using %r", pad)
        return tokenizer
