"""Learning-rate scheduler factories: `constant`, `linear`, `cosine` (all with warmup) and `wsd`.

Every schedule is a multiplier of the optimizer's learning rate, a function of the optimizer step, over the
run's horizon ``trainer.training_horizon`` (total optimizer steps): a linear warmup from 0 (``warmup_steps``
or ``warmup_ratio``), then the schedule's shape down to ``min_lr_ratio``. The result is a ``LambdaLR`` whose
multiplier is a picklable object, so its ``state_dict`` round-trips through checkpoints.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from arctic_like.callback import CallbackMixin
from arctic_like.config.base import HumanFraction, HumanInt
from arctic_like.config.parts import SchedulerConfig
from arctic_like.context import TrainerContext
from arctic_like.registry import Registrable

__all__ = [
    "ConstantSchedulerFactory",
    "CosineSchedulerFactory",
    "LinearSchedulerFactory",
    "Schedule",
    "SchedulerFactory",
    "WSDSchedulerConfig",
    "WSDSchedulerFactory",
]


class Schedule:
    """The learning-rate multiplier at an optimizer step (picklable; used as a ``LambdaLR`` lambda)."""

    def __init__(
        self,
        shape: Literal["constant", "linear", "cosine", "wsd"],
        horizon: int,
        warmup: int,
        min_lr_ratio: float = 0.0,
        decay_steps: int = 0,
        decay_shape: Literal["linear", "cosine", "sqrt"] = "linear",
    ) -> None:
        self.shape, self.horizon, self.warmup = shape, max(1, horizon), min(warmup, max(1, horizon))
        self.min_lr_ratio, self.decay_steps, self.decay_shape = min_lr_ratio, decay_steps, decay_shape

    @staticmethod
    def _decay(shape: str, progress: float) -> float:
        progress = min(max(progress, 0.0), 1.0)
        if shape == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if shape == "sqrt":
            return 1.0 - math.sqrt(progress)
        return 1.0 - progress

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return step / self.warmup
        if self.shape == "constant":
            return 1.0
        floor = self.min_lr_ratio
        if self.shape == "wsd":
            decay_start = self.horizon - self.decay_steps
            if step < decay_start:
                return 1.0
            progress = (step - decay_start) / max(1, self.decay_steps)
            return floor + (1.0 - floor) * self._decay(self.decay_shape, progress)
        progress = (step - self.warmup) / max(1, self.horizon - self.warmup)
        return floor + (1.0 - floor) * self._decay(self.shape, progress)


class SchedulerFactory(TrainerContext, Registrable, CallbackMixin):
    """Builds the scheduler for ``trainer.optimizer`` over ``trainer.training_horizon`` optimizer steps."""

    config: ClassVar[type[SchedulerConfig]] = SchedulerConfig

    def __init__(self, trainer: Any, config: SchedulerConfig) -> None:
        self.trainer = trainer
        self.config = config

    @property
    def horizon(self) -> int:
        horizon = getattr(self.trainer, "training_horizon", None)
        if not isinstance(horizon, int) or horizon < 1:
            raise ValueError(
                f"the scheduler needs trainer.training_horizon (total optimizer steps, >= 1), "
                f"got {horizon!r}. "
                f"Fix: set max_steps, or make sure the training data gives at least one step."
            )
        return horizon

    def __call__(self) -> LRScheduler:
        optimizer = getattr(self.trainer, "optimizer", None)
        if optimizer is None:
            raise ValueError("the scheduler factory needs trainer.optimizer. Fix: build the optimizer first.")
        return self.create_scheduler(optimizer)

    def create_scheduler(self, optimizer: torch.optim.Optimizer) -> LRScheduler:
        """The scheduler driving ``optimizer``."""
        raise NotImplementedError(f"{type(self).__name__} must implement create_scheduler()")


class _ShapeSchedulerFactory(SchedulerFactory):
    shape: ClassVar[Literal["constant", "linear", "cosine"]]

    def create_scheduler(self, optimizer: torch.optim.Optimizer) -> LRScheduler:
        horizon = self.horizon
        schedule = Schedule(self.shape, horizon, self.config.warmup(horizon), self.config.min_lr_ratio)
        return LambdaLR(optimizer, schedule)


class ConstantSchedulerFactory(_ShapeSchedulerFactory):
    """Warmup, then the optimizer's learning rate."""

    name = "constant"
    shape = "constant"


class LinearSchedulerFactory(_ShapeSchedulerFactory):
    """Warmup, then linear decay to ``min_lr_ratio`` at the end of the run."""

    name = "linear"
    shape = "linear"


class CosineSchedulerFactory(_ShapeSchedulerFactory):
    """Warmup, then cosine decay to ``min_lr_ratio`` at the end of the run."""

    name = "cosine"
    shape = "cosine"


class WSDSchedulerConfig(SchedulerConfig):
    """Warmup-stable-decay: the decay phase is the last ``decay_steps`` (or ``decay_ratio`` of the run)."""

    decay_steps: HumanInt | None = Field(default=None, ge=0)
    decay_ratio: HumanFraction | None = None
    decay_shape: Literal["linear", "cosine", "sqrt"] = "linear"

    @model_validator(mode="after")
    def _one_decay(self) -> WSDSchedulerConfig:
        if self.decay_steps is not None and self.decay_ratio is not None:
            raise ValueError("give either decay_steps or decay_ratio, not both")
        return self

    def decay(self, horizon: int, warmup: int) -> int:
        """Decay steps for a run of ``horizon`` steps (default 10% of it), not overlapping the warmup."""
        steps = (
            self.decay_steps if self.decay_steps is not None else round((self.decay_ratio or 0.1) * horizon)
        )
        return min(steps, horizon - warmup)


class WSDSchedulerFactory(SchedulerFactory):
    """Warmup, a stable phase at the full learning rate, then a decay to ``min_lr_ratio``."""

    name = "wsd"
    config = WSDSchedulerConfig

    def create_scheduler(self, optimizer: torch.optim.Optimizer) -> LRScheduler:
        horizon = self.horizon
        warmup = self.config.warmup(horizon)
        decay = self.config.decay(horizon, warmup)
        schedule = Schedule("wsd", horizon, warmup, self.config.min_lr_ratio, decay, self.config.decay_shape)
        return LambdaLR(optimizer, schedule)
