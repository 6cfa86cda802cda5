"""`huggingface` tokenizer factory: ``AutoTokenizer.from_pretrained`` on a local directory (or hub name)."""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from arctic_like.config.parts import TokenizerConfig, resolve_recipe_path
from arctic_like.tokenizer.base import TokenizerFactory

__all__ = ["HFTokenizerConfig", "HFTokenizerFactory"]

logger = logging.getLogger("arctic_like.tokenizer")


class HFTokenizerConfig(TokenizerConfig):
    """``name_or_path``: a directory written by ``save_pretrained`` (relative to the recipe) or a hub name."""

    name_or_path: str
    pad_token: str | None = None
    """Pad token to set when the tokenizer has none (default: its eos token)."""
    trust_remote_code: bool = False


class HFTokenizerFactory(TokenizerFactory):
    """Loads a saved Hugging Face tokenizer; gives it a pad token when it lacks one."""

    name = "huggingface"
    config = HFTokenizerConfig

    def create_tokenizer(self) -> PreTrainedTokenizerBase:
        source = self.config.name_or_path
        local = resolve_recipe_path(Path(source))
        if local.exists():
            source = str(local)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=self.config.trust_remote_code)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"cannot load a tokenizer from {self.config.name_or_path!r}: {error}. Fix: point "
                f"tokenizer.name_or_path at a directory written by tokenizer.save_pretrained()."
            ) from error
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
