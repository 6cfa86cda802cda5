"""arctic_like: a training framework whose every building block is extensible through callbacks.

The callback core is imported eagerly (it needs only the standard library); the trainer, the
factories and the recipe loader import torch and transformers, so they load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from arctic_like.callback import (
    CallbackError,
    CallbackMeta,
    CallbackMixin,
    callback_wrapper,
    run_first,
    run_last,
)

__version__ = "0.1.0"

_LAZY = {
    "load_recipe": "arctic_like.config",
    "build_trainer": "arctic_like.config",
    "RecipeError": "arctic_like.config",
    "TrainerConfig": "arctic_like.config",
    "Trainer": "arctic_like.trainer",
    "CausalTrainer": "arctic_like.trainer",
    "SFTTrainer": "arctic_like.trainer",
    "TrainerState": "arctic_like.trainer",
    "TrainerControl": "arctic_like.trainer",
    "SkipStep": "arctic_like.trainer",
    "StopEpoch": "arctic_like.trainer",
    "StopTraining": "arctic_like.trainer",
    "DataFactory": "arctic_like.data",
    "ModelFactory": "arctic_like.model",
    "TokenizerFactory": "arctic_like.tokenizer",
    "OptimizerFactory": "arctic_like.optimizer",
    "SchedulerFactory": "arctic_like.scheduler",
    "CheckpointEngine": "arctic_like.checkpoint",
    "CheckpointError": "arctic_like.checkpoint",
    "RegistryError": "arctic_like.registry",
    "HFCallbackSupport": "arctic_like.integrations",
    "HFArgs": "arctic_like.integrations",
}

__all__ = [
    "CallbackError",
    "CallbackMeta",
    "CallbackMixin",
    "__version__",
    "callback_wrapper",
    "run_first",
    "run_last",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'arctic_like' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
