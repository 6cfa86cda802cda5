"""Ready harness callbacks, written once and run unchanged by every adapter."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from arctic_like.harness.core import HarnessCallback, HarnessControl, HarnessError

_METRIC_PREFIXES = ("eval_", "val_", "eval/", "val/", "validation/")


def lookup_metric(metrics: dict[str, float], name: str) -> float | None:
    """``metrics[name]``, also accepting framework prefixes (``eval_loss``, ``val_loss`` for ``loss``)."""
    bare = name
    for prefix in _METRIC_PREFIXES:
        if name.startswith(prefix):
            bare = name[len(prefix) :]
            break
    for key in (name, bare, *(prefix + bare for prefix in _METRIC_PREFIXES)):
        if key in metrics:
            return metrics[key]
    return None


class EarlyStopping(HarnessCallback):
    """Stop training once ``monitor`` has not improved by ``min_delta`` for ``patience`` evaluations.

    ``monitor`` is looked up with or without the frameworks' ``eval_``/``val_`` prefixes, so ``"loss"`` finds
    HF's ``eval_loss`` and a Lightning ``val_loss`` alike.
    """

    def __init__(self, monitor: str = "loss", mode: str = "min", patience: int = 3, min_delta: float = 0.0):
        if mode not in ("min", "max"):
            raise HarnessError(
                f"EarlyStopping mode={mode!r} is not supported. Fix: use mode='min' or mode='max'."
            )
        if patience < 1:
            raise HarnessError(
                f"EarlyStopping patience={patience} must be at least 1. Fix: pass patience >= 1."
            )
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_step: int | None = None
        self.wait = 0
        self.stopped_step: int | None = None

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def _on_validation_end(self, metrics: dict[str, float], current_step: int) -> HarnessControl | None:
        value = lookup_metric(metrics, self.monitor)
        if value is None:
            raise HarnessError(
                f"EarlyStopping monitors '{self.monitor}', but the evaluation at step {current_step} "
                f"reported only: "
                f"{', '.join(sorted(metrics)) or 'no metrics'}. Fix: pass monitor= one of these."
            )
        if self._improved(value):
            self.best, self.best_step, self.wait = value, current_step, 0
            return None
        self.wait += 1
        if self.wait < self.patience:
            return None
        self.stopped_step = current_step
        return HarnessControl.stop(
            f"{self.monitor} did not improve for {self.patience} evaluations (best {self.best:.6g} at step "
            f"{self.best_step}); stopping at step {current_step}"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_step": self.best_step,
            "wait": self.wait,
            "stopped_step": self.stopped_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
        self.best_step = state.get("best_step")
        self.wait = int(state.get("wait", 0))
        self.stopped_step = state.get("stopped_step")


class LossLogger(HarnessCallback):
    """Append ``{"step", "epoch", "loss", "learning_rate"}`` each ``every`` steps to a JSONL file."""

    def __init__(self, path: str | os.PathLike = "harness_loss.jsonl", every: int = 1):
        if every < 1:
            raise HarnessError(f"LossLogger every={every} must be at least 1. Fix: pass every >= 1.")
        self.path = Path(path)
        self.every = every

    def _on_train_batch_end(
        self, current_step: int, epoch: int, loss: float, learning_rate: float, is_main_process: bool
    ) -> None:
        if not is_main_process or current_step % self.every:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"step": current_step, "epoch": epoch, "loss": loss, "learning_rate": learning_rate}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


class GradNormMonitor(HarnessCallback):
    """Total gradient norm right before each optimizer step, logged as ``name`` and kept in ``history``."""

    def __init__(self, norm_type: float = 2.0, every: int = 1, name: str = "harness/grad_norm"):
        self.norm_type = norm_type
        self.every = every
        self.name = name
        self.history: list[tuple[int, float]] = []

    def _on_before_optimizer_step(self, model: torch.nn.Module, current_step: int) -> HarnessControl | None:
        step = current_step + 1
        if step % self.every:
            return None
        grads = [p.grad.detach() for p in model.parameters() if p.grad is not None]
        if not grads:
            return None
        norms = torch.stack([torch.linalg.vector_norm(g, self.norm_type) for g in grads])
        value = float(torch.linalg.vector_norm(norms, self.norm_type))
        self.history.append((step, value))
        return HarnessControl(log={self.name: value})


class StepTimer(HarnessCallback):
    """Steps per second and samples per second of the optimizer steps (evaluation and saving excluded).

    ``samples_per_step`` defaults to the batch size of the step's micro-batch times
    ``gradient_accumulation_steps``. ``last`` holds the latest rates; ``summary()`` the averages.
    """

    def __init__(self, gradient_accumulation_steps: int = 1, every: int = 1):
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.every = every
        self.steps = 0
        self.samples = 0
        self.seconds = 0.0
        self.last: dict[str, float] = {}
        self._t0: float | None = None

    def _on_train_batch_start(self) -> None:
        self._t0 = time.perf_counter()

    def _on_train_batch_end(self, current_step: int, batch: Any) -> HarnessControl | None:
        if self._t0 is None:
            return None
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        self._t0 = None
        samples = _batch_size(batch) * self.gradient_accumulation_steps
        self.steps += 1
        self.samples += samples
        self.seconds += elapsed
        self.last = {"steps_per_second": 1.0 / elapsed, "samples_per_second": samples / elapsed}
        return None if current_step % self.every else HarnessControl(log=dict(self.last))

    def summary(self) -> dict[str, float]:
        """Average rates over every timed step."""
        if not self.steps:
            return {"steps_per_second": math.nan, "samples_per_second": math.nan}
        return {
            "steps_per_second": self.steps / self.seconds,
            "samples_per_second": self.samples / self.seconds,
        }


def _batch_size(batch: Any) -> int:
    if isinstance(batch, dict):
        batch = next(iter(batch.values()), None)
    elif isinstance(batch, (list, tuple)):
        batch = batch[0] if batch else None
    shape = getattr(batch, "shape", None)
    return int(shape[0]) if shape else 1


class NaNGuard(HarnessCallback):
    """Stop training at the first non-finite training loss, naming the step (kept in ``tripped_step``)."""

    def __init__(self) -> None:
        self.tripped_step: int | None = None

    def _on_train_batch_end(self, current_step: int, loss: float) -> HarnessControl | None:
        if math.isfinite(loss):
            return None
        self.tripped_step = current_step
        return HarnessControl.stop(f"non-finite loss ({loss}) at step {current_step}; stopping training")

    def state_dict(self) -> dict[str, Any]:
        return {"tripped_step": self.tripped_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tripped_step = state.get("tripped_step")
