"""`ModelFactory`: the base of every model factory (events `call`, `create-config`, `create-model`)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from transformers import PretrainedConfig

from arctic_like.callback import CallbackMixin
from arctic_like.config.parts import ModelConfig
from arctic_like.context import TrainerContext
from arctic_like.registry import Registrable

__all__ = ["ModelFactory"]


class ModelFactory(TrainerContext, Registrable, CallbackMixin):
    """Builds the run's model: ``ModelFactory(trainer, config)()`` → ``create_model(create_config())``."""

    config: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, trainer: Any, config: ModelConfig) -> None:
        self.trainer = trainer
        self.config = config

    def __call__(self) -> torch.nn.Module:
        return self.create_model(self.create_config())

    def create_config(self) -> PretrainedConfig:
        """The model's architecture config."""
        raise NotImplementedError(f"{type(self).__name__} must implement create_config()")

    def create_model(self, model_config: PretrainedConfig) -> torch.nn.Module:
        """The model built from ``model_config``."""
        raise NotImplementedError(f"{type(self).__name__} must implement create_model()")
