"""`huggingface` scheduler factory: any scheduler of ``transformers.get_scheduler``, by name.

``scheduler: {type: huggingface, name: cosine_with_min_lr, warmup_ratio: 5%, scheduler_specific_kwargs:
{min_lr_rate: 0.1}}`` builds ``transformers.get_scheduler(name, optimizer, num_warmup_steps,
num_training_steps, scheduler_specific_kwargs)`` over the run's horizon (``trainer.training_horizon``
optimizer steps). This is ArcticTraining's default scheduler (``name: linear``).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import model_validator
from torch.optim.lr_scheduler import LRScheduler
from transformers import SchedulerType, get_scheduler

from arctic_like.config.parts import SchedulerConfig
from arctic_like.scheduler.base import SchedulerFactory

__all__ = ["HF_SCHEDULERS", "HFSchedulerConfig", "HFSchedulerFactory"]

_NEEDS_METRICS = ("reduce_lr_on_plateau", "greedy")
"""Schedulers stepped with an evaluation metric, which the per-step ``scheduler.step()`` does not pass."""

HF_SCHEDULERS = tuple(t.value for t in SchedulerType if t.value not in _NEEDS_METRICS)
"""The ``transformers`` schedulers this factory builds."""


class HFSchedulerConfig(SchedulerConfig):
    """``name`` (a ``transformers`` scheduler), warmup (``warmup_steps`` or ``warmup_ratio``) and that
    scheduler's own keyword arguments; checked by building the schedule once when the recipe is loaded."""

    name: str = "linear"
    scheduler_specific_kwargs: dict[str, Any] = {}

    @model_validator(mode="after")
    def _buildable(self) -> HFSchedulerConfig:
        if self.name not in HF_SCHEDULERS:
            why = " (it needs an evaluation metric at every step)" if self.name in _NEEDS_METRICS else ""
            raise ValueError(
                f"name {self.name!r} is not a transformers scheduler this factory builds{why}. "
                f"Fix: use one of {', '.join(HF_SCHEDULERS)}"
            )
        if self.min_lr_ratio:
            raise ValueError(
                "min_lr_ratio is not a setting of the huggingface schedulers. Fix: use name: "
                "cosine_with_min_lr with scheduler_specific_kwargs: {min_lr_rate: ...}, or our cosine/linear"
            )
        try:
            _build(self, torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), horizon=10)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"transformers cannot build the {self.name!r} scheduler from scheduler_specific_kwargs "
                f"{self.scheduler_specific_kwargs}: {error}. Fix: give the keyword arguments "
                f"transformers.get_scheduler({self.name!r}) needs"
            ) from None
        return self


def _build(config: HFSchedulerConfig, optimizer: torch.optim.Optimizer, horizon: int) -> LRScheduler:
    return get_scheduler(
        config.name,
        optimizer,
        num_warmup_steps=config.warmup(horizon),
        num_training_steps=horizon,
        scheduler_specific_kwargs=dict(config.scheduler_specific_kwargs),
    )


class HFSchedulerFactory(SchedulerFactory):
    """``transformers.get_scheduler`` by name over the run's optimizer steps."""

    name = "huggingface"
    config = HFSchedulerConfig

    def create_scheduler(self, optimizer: torch.optim.Optimizer) -> LRScheduler:
        return _build(self.config, optimizer, self.horizon)
