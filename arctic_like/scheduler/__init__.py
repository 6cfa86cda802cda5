"""Learning-rate scheduler factories: `constant`, `linear`, `cosine` (with warmup) and `wsd`."""

from arctic_like.scheduler.base import (
    ConstantSchedulerFactory,
    CosineSchedulerFactory,
    LinearSchedulerFactory,
    Schedule,
    SchedulerFactory,
    WSDSchedulerConfig,
    WSDSchedulerFactory,
)

__all__ = [
    "ConstantSchedulerFactory",
    "CosineSchedulerFactory",
    "LinearSchedulerFactory",
    "Schedule",
    "SchedulerFactory",
    "WSDSchedulerConfig",
    "WSDSchedulerFactory",
]
