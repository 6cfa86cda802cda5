"""Integrations: HuggingFace ``TrainerCallback``s in arctic_like, and optional wandb / MLflow loggers."""

from arctic_like.integrations.hf import (
    HF_EVENT_MAP,
    CallbackSpecError,
    CallbackStateError,
    HFArgs,
    HFCallbackSupport,
    TrainerCallbackHandler,
    resolve_callback_spec,
    training_arguments_from_config,
)

__all__ = [
    "HF_EVENT_MAP",
    "CallbackSpecError",
    "CallbackStateError",
    "HFArgs",
    "HFCallbackSupport",
    "TrainerCallbackHandler",
    "resolve_callback_spec",
    "training_arguments_from_config",
]
