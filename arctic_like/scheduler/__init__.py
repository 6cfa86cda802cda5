"""Learning-rate scheduler factories: `constant`, `linear`, `cosine` (with warmup), `wsd`, and `huggingface`
(any transformers scheduler by name)."""

from arctic_like.scheduler.base import (
    ConstantSchedulerFactory,
    CosineSchedulerFactory,
    LinearSchedulerFactory,
    Schedule,
    SchedulerFactory,
    WSDSchedulerConfig,
    WSDSchedulerFactory,
)
from arctic_like.scheduler.huggingface import HFSchedulerConfig, HFSchedulerFactory

__all__ = [
    "ConstantSchedulerFactory",
    "CosineSchedulerFactory",
    "HFSchedulerConfig",
    "HFSchedulerFactory",
    "LinearSchedulerFactory",
    "Schedule",
    "SchedulerFactory",
    "WSDSchedulerConfig",
    "WSDSchedulerFactory",
]
