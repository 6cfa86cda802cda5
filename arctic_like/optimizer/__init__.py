"""Optimizer factories: `adamw` and `sgd`, both with weight-decay parameter groups."""

from arctic_like.optimizer.base import (
    AdamWConfig,
    AdamWOptimizerFactory,
    OptimizerFactory,
    SGDConfig,
    SGDOptimizerFactory,
    weight_decay_groups,
)

__all__ = [
    "AdamWConfig",
    "AdamWOptimizerFactory",
    "OptimizerFactory",
    "SGDConfig",
    "SGDOptimizerFactory",
    "weight_decay_groups",
]
