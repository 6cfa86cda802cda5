"""Optimizer factories: `adamw` (torch AdamW, DeepSpeed's FusedAdam or DeepSpeedCPUAdam as the engine calls
for; `fused_adam` and `cpu_adam` force one) and `sgd`, all with weight-decay parameter groups."""

from arctic_like.optimizer.adam import (
    ADAM_IMPLEMENTATIONS,
    build_adam,
    choose_adam,
    load_cpu_adam_op,
    optimizer_offload_device,
)
from arctic_like.optimizer.base import (
    AdamWConfig,
    AdamWOptimizerFactory,
    CPUAdamConfig,
    CPUAdamOptimizerFactory,
    FusedAdamConfig,
    FusedAdamOptimizerFactory,
    OptimizerFactory,
    SGDConfig,
    SGDOptimizerFactory,
    weight_decay_groups,
)

__all__ = [
    "ADAM_IMPLEMENTATIONS",
    "AdamWConfig",
    "AdamWOptimizerFactory",
    "CPUAdamConfig",
    "CPUAdamOptimizerFactory",
    "FusedAdamConfig",
    "FusedAdamOptimizerFactory",
    "OptimizerFactory",
    "SGDConfig",
    "SGDOptimizerFactory",
    "build_adam",
    "choose_adam",
    "load_cpu_adam_op",
    "optimizer_offload_device",
    "weight_decay_groups",
]
