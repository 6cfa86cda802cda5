"""`ModelFactory`: the base of every model factory.

Events, in run order: `call` → `create-config` → `create-model` → `create-peft-config` → `wrap-model`
(the last only when `create-peft-config` returns a config: the factory's config has a `peft:` section, or
a callback made one). A callback on `post-create-peft-config` changes the adapter settings; one on
`post-wrap-model` changes the wrapped model.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from transformers import PretrainedConfig

if TYPE_CHECKING:
    import peft

from arctic_like.callback import CallbackMixin
from arctic_like.config.parts import ModelConfig
from arctic_like.context import TrainerContext
from arctic_like.registry import Registrable

__all__ = ["ModelFactory"]

logger = logging.getLogger("arctic_like.model")


class ModelFactory(TrainerContext, Registrable, CallbackMixin):
    """Builds the run's model: ``ModelFactory(trainer, config)()`` → ``create_model(create_config())``, then
    wrapped by ``peft`` when ``create_peft_config`` gives a config."""

    config: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, trainer: Any, config: ModelConfig) -> None:
        self.trainer = trainer
        self.config = config

    def __call__(self) -> torch.nn.Module:
        model = self.create_model(self.create_config())
        peft_config = self.create_peft_config(model)
        if peft_config is not None:
            model = self.wrap_model(model, peft_config)
        return model

    def create_config(self) -> PretrainedConfig:
        """The model's architecture config."""
        raise NotImplementedError(f"{type(self).__name__} must implement create_config()")

    def create_model(self, model_config: PretrainedConfig) -> torch.nn.Module:
        """The model built from ``model_config``."""
        raise NotImplementedError(f"{type(self).__name__} must implement create_model()")

    def create_peft_config(self, model: torch.nn.Module) -> peft.PeftConfig | None:
        """The adapter config for ``model`` from the factory config's ``peft`` section (``None``: train every
        weight)."""
        settings = getattr(self.config, "peft", None)
        return None if settings is None else settings.build()

    def wrap_model(self, model: torch.nn.Module, peft_config: peft.PeftConfig) -> torch.nn.Module:
        """``model`` with the adapter of ``peft_config``: only adapter weights stay trainable."""
        from arctic_like.model.peft import parameter_summary, wrap_with_peft

        wrapped = wrap_with_peft(model, peft_config)
        trainable, total = parameter_summary(wrapped)
        logger.info(
            "peft %s: %s trainable of %s parameters (%.2f%%)",
            getattr(peft_config.peft_type, "value", peft_config.peft_type),
            f"{trainable:,}",
            f"{total:,}",
            100 * trainable / max(total, 1),
        )
        return wrapped
