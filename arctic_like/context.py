"""`TrainerContext`: what a building block reads from the trainer it is built for, under ArcticTraining's
names (``self.device``, ``self.world_size``, ``self.global_rank``, ``self.local_rank`` in a factory)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

__all__ = ["TrainerContext", "call_with_optional"]


def call_with_optional(method: Callable[..., Any], *args: Any, **optional: Any) -> Any:
    """``method(*args, **optional)``, leaving out the ``optional`` keyword arguments its signature lacks: the
    ArcticTraining parameters (``save(model)``, ``create_optimizer(model, optimizer_config)``) reach overrides
    that take them, and overrides written without them keep working."""
    parameters = inspect.signature(method).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return method(*args, **{k: v for k, v in optional.items() if takes_any or k in parameters})


class TrainerContext:
    """Mixin of the factories, data sources and checkpoint engines: the trainer's device and process ranks."""

    trainer: Any

    @property
    def device(self) -> Any:
        """The trainer's device (None before the trainer has one)."""
        return getattr(self.trainer, "device", None)

    @property
    def world_size(self) -> int:
        """Number of processes in the run."""
        return int(getattr(self.trainer, "world_size", 1) or 1)

    @property
    def global_rank(self) -> int:
        """This process's rank in the run."""
        return int(getattr(self.trainer, "global_rank", 0) or 0)

    @property
    def local_rank(self) -> int:
        """This process's rank on its machine."""
        return int(getattr(self.trainer, "local_rank", os.environ.get("LOCAL_RANK", 0)) or 0)
