"""`TokenizerFactory`: the base of every tokenizer factory (events `call`, `create-tokenizer`)."""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import PreTrainedTokenizerBase

from arctic_like.callback import CallbackMixin
from arctic_like.config.parts import TokenizerConfig
from arctic_like.context import TrainerContext
from arctic_like.registry import Registrable

__all__ = ["TokenizerFactory"]


class TokenizerFactory(TrainerContext, Registrable, CallbackMixin):
    """Builds the run's tokenizer: ``TokenizerFactory(trainer, config)()`` returns it.

    Subclasses set ``name`` (the recipe's ``tokenizer.type``), ``config`` (their config class) and implement
    :meth:`create_tokenizer`.
    """

    config: ClassVar[type[TokenizerConfig]] = TokenizerConfig

    def __init__(self, trainer: Any, config: TokenizerConfig) -> None:
        self.trainer = trainer
        self.config = config

    def __call__(self) -> PreTrainedTokenizerBase:
        return self.create_tokenizer()

    def create_tokenizer(self) -> PreTrainedTokenizerBase:
        """Build and return the tokenizer."""
        raise NotImplementedError(f"{type(self).__name__} must implement create_tokenizer()")
