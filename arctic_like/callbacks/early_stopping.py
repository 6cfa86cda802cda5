"""Stop training when an evaluation metric stops improving."""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

from arctic_like.callbacks.base import Callback, check_mode

logger = logging.getLogger("arctic_like.callbacks.early_stopping")


class EarlyStopping(Callback):
    """Set ``control.should_training_stop`` after ``patience`` evaluations without improvement.

    An evaluation improves when ``metric`` beats the best value so far by more than ``threshold``
    (lower is better for ``mode="min"``, higher for ``"max"``). Unlike HF's ``EarlyStoppingCallback`` it needs
    no ``load_best_model_at_end``. Its counter and best value are saved with checkpoints.
    """

    def __init__(
        self,
        metric: str = "eval_loss",
        mode: Literal["min", "max"] = "min",
        patience: int = 3,
        threshold: float = 0.0,
        state_key: str | None = None,
    ) -> None:
        check_mode("EarlyStopping", mode)
        if patience < 1:
            raise ValueError(f"EarlyStopping patience must be at least 1, got {patience}.")
        super().__init__(state_key)
        self.metric = metric
        self.mode = mode
        self.patience = patience
        self.threshold = threshold
        self.best: float | None = None
        self.bad_evaluations = 0
        self.stopped_at: int | None = None

    def _key(self, metrics: dict[str, Any]) -> str:
        if self.metric in metrics:
            return self.metric
        prefixed = f"eval_{self.metric}"
        if prefixed in metrics:
            return prefixed
        raise ValueError(
            f"EarlyStopping metric {self.metric!r} is not among the evaluation metrics {sorted(metrics)}. "
            "Fix: set `metric` to one of them."
        )

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any
    ) -> None:
        value = float((metrics or {})[self._key(metrics or {})])
        improved = not math.isnan(value) and (
            self.best is None
            or (
                value < self.best - self.threshold
                if self.mode == "min"
                else value > self.best + self.threshold
            )
        )
        if improved:
            self.best = value
            self.bad_evaluations = 0
        else:
            self.bad_evaluations += 1
        if self.bad_evaluations >= self.patience:
            self.stopped_at = state.global_step
            control.should_training_stop = True
            logger.info(
                "early stopping at step %d: %s did not improve on %s for %d evaluations",
                state.global_step,
                self.metric,
                self.best,
                self.patience,
            )

    def state_dict(self) -> dict[str, Any]:
        """Best value and the count of evaluations without improvement."""
        return {"best": self.best, "bad_evaluations": self.bad_evaluations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.best = state.get("best")
        self.bad_evaluations = int(state.get("bad_evaluations", 0))
