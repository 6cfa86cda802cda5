"""Gradient-norm statistics, computed where gradients are complete (``pre-optimizer-step``)."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch

from arctic_like.callbacks.base import Callback

logger = logging.getLogger("arctic_like.callbacks.grad_norm")


class GradNormMonitor(Callback):
    """Measure gradient norms before each optimizer step and add them to the next log.

    Logged: ``grad_norm/total`` (L2 norm of all gradients), ``grad_norm/max``, ``/min`` and ``/mean`` over
    the per-parameter norms, and ``grad_norm/<name>`` for each parameter whose name matches a regular
    expression in ``layers``. A warning is logged when a norm is NaN/inf or the total exceeds
    ``explode_factor`` times its running mean (or ``max_norm`` when given). Under DeepSpeed ZeRO 2/3 the
    gradients live in DeepSpeed's partitions, not on the parameters, and nothing is measured.
    """

    def __init__(
        self,
        layers: Sequence[str] = (),
        every_n_steps: int = 1,
        explode_factor: float = 10.0,
        max_norm: float | None = None,
    ) -> None:
        super().__init__()
        self.layers = [re.compile(p) for p in layers]
        self.every_n_steps = max(1, every_n_steps)
        self.explode_factor = explode_factor
        self.max_norm = max_norm
        self.last: dict[str, float] = {}
        self.warnings = 0
        self._mean: float | None = None
        self._count = 0

    def hooks(self) -> list[tuple[str, Callable[..., Any]]]:
        """Merge the latest norms into the trainer's logs before any logger sees them."""

        def add_grad_norms(trainer: Any, logs: dict[str, Any]) -> dict[str, Any]:
            if self.last and isinstance(logs, dict) and "loss" in logs:
                return {**logs, **self.last}
            return logs

        return [("pre-log", add_grad_norms)]

    def compute(self, model: torch.nn.Module) -> dict[str, float]:
        """The statistics for ``model``'s current gradients."""
        norms: dict[str, torch.Tensor] = {
            name: p.grad.detach().float().norm(2)
            for name, p in model.named_parameters()
            if p.grad is not None
        }
        if not norms:
            return {}
        stacked = torch.stack(list(norms.values()))
        stats = {
            "grad_norm/total": float(stacked.pow(2).sum().sqrt()),
            "grad_norm/max": float(stacked.max()),
            "grad_norm/min": float(stacked.min()),
            "grad_norm/mean": float(stacked.mean()),
        }
        for name, value in norms.items():
            if any(p.search(name) for p in self.layers):
                stats[f"grad_norm/{name}"] = float(value)
        return stats

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if (state.global_step + 1) % self.every_n_steps:
            return
        model = kwargs.get("model")
        if model is None:
            return
        self.last = self.compute(model)
        total = self.last.get("grad_norm/total")
        if total is None:
            return
        if not all(math.isfinite(v) for v in self.last.values()):
            self.warnings += 1
            logger.warning("non-finite gradient norm at step %d: total=%s", state.global_step + 1, total)
            return
        limit = self.max_norm
        if limit is None and self._mean is not None and self._count >= 3:
            limit = self.explode_factor * self._mean
        if limit is not None and total > limit:
            self.warnings += 1
            logger.warning(
                "exploding gradient norm at step %d: total=%.4g > %.4g", state.global_step + 1, total, limit
            )
        self._count += 1
        self._mean = total if self._mean is None else self._mean + (total - self._mean) / self._count
