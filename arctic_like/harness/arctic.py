"""The arctic_like adapter: a harness callback as a set of ``(event, fn)`` callbacks on our ``Trainer``.

Built only from the trainer's CallbackMixin events (``train``, ``epoch``, ``step``, ``loss``,
``optimizer-step``, ``evaluate``, ``log``, ``checkpoint``); control goes through ``trainer.control``.
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar

from arctic_like.harness.core import (
    COMMON_ARGUMENTS,
    Dispatcher,
    HarnessCallback,
    HarnessControl,
    StepLosses,
    float_dict,
    logger,
)

_COMMON = COMMON_ARGUMENTS

ARCTIC_SUPPLIES: dict[str, frozenset[str]] = {
    "_on_train_start": _COMMON,
    "_on_train_end": _COMMON,
    "_on_epoch_start": _COMMON,
    "_on_epoch_end": _COMMON,
    "_on_train_batch_start": _COMMON | {"batch"},
    "_on_train_batch_end": _COMMON | {"batch", "loss"},
    "_on_before_optimizer_step": _COMMON | {"batch", "loss"},
    "_on_validation_end": _COMMON | {"metrics"},
    "_on_log": _COMMON | {"logs"},
    "_on_save": _COMMON | {"checkpoint_dir"},
    "_on_exception": _COMMON | {"exception"},
}
"""What the arctic_like adapter supplies per harness event (every event)."""


class ArcticHarnessCallback(Dispatcher):
    """Drives one harness callback from an arctic_like ``Trainer``'s events. Build it with :func:`to_arctic`.

    ``callbacks`` is the list of ``(event, fn)`` pairs it puts on ``trainer.callbacks``;
    ``trainer.add_callback`` (or ``to_arctic(cb, trainer)``) installs them through :meth:`setup`.
    ``state_key`` / ``state_dict`` / ``load_state_dict`` let the trainer's callback states carry the harness
    callback's state through arctic_like checkpoints.
    """

    framework: ClassVar[str] = "arctic_like"
    supplies = ARCTIC_SUPPLIES

    def __init__(self, callback: HarnessCallback) -> None:
        super().__init__(callback)
        self._epoch = 0
        self._losses = StepLosses()
        self._step_at_start: int | None = None
        self._batch: Any = None
        self._step_lr: float | None = None
        self._pending_logs: dict[str, float] = {}
        self._logs: dict[str, Any] = {}
        self.callbacks: list[tuple[str, Any]] = [
            ("pre-train", self._pre_train),
            ("post-train", self._post_train),
            ("error-train", self._error_train),
            ("pre-epoch", self._pre_epoch),
            ("post-epoch", self._post_epoch),
            ("pre-step", self._pre_step),
            ("post-step", self._post_step),
            ("post-loss", self._post_loss),
            ("pre-optimizer-step", self._pre_optimizer_step),
            ("post-evaluate", self._post_evaluate),
            ("pre-log", self._pre_log),
            ("post-log", self._post_log),
            ("post-checkpoint", self._post_checkpoint),
        ]

    __arctic_like_callback__: ClassVar[bool] = True

    def setup(self, trainer: Any) -> None:
        """Append the ``(event, fn)`` pairs to ``trainer.callbacks`` (``add_callback`` calls this)."""
        trainer.callbacks.extend(self.callbacks)

    def teardown(self, trainer: Any) -> None:
        """Remove what :meth:`setup` appended."""
        for entry in self.callbacks:
            if entry in trainer.callbacks:
                trainer.callbacks.remove(entry)

    @property
    def state_key(self) -> str:
        """Key of the harness callback's state among the trainer's callback states."""
        return self.callback.state_key

    def state_dict(self) -> dict[str, Any]:
        return self.callback.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.callback.load_state_dict(state)

    # -- extraction -----------------------------------------------------------------------------------------
    def _getters(self, trainer: Any, **extra: Any) -> dict[str, Any]:
        state = trainer.state

        def learning_rate() -> float:
            optimizer = trainer.optimizer
            return float(optimizer.param_groups[0]["lr"]) if optimizer is not None else math.nan

        getters = {
            "current_step": lambda: state.global_step,
            "max_steps": lambda: state.max_steps,
            "epoch": lambda: self._epoch,
            "model": lambda: trainer.model,
            "optimizer": lambda: trainer.optimizer,
            "learning_rate": learning_rate,
            "is_main_process": lambda: state.is_world_process_zero,
            "batch": lambda: self._batch,
            "loss": self._losses.mean,
        }
        getters.update(extra)
        return getters

    def _event(self, name: str, trainer: Any, **extra: Any) -> None:
        self._apply(self.fire(name, self._getters(trainer, **extra)), trainer)

    def _apply(self, result: HarnessControl | None, trainer: Any) -> None:
        if result is not None:
            result.apply_flags(trainer.control, self._pending_logs)

    # -- trainer events -------------------------------------------------------------------------------------
    def _pre_train(self, trainer: Any) -> None:
        self._epoch = int(trainer.epoch_idx)
        self._step_at_start = None
        self._event("_on_train_start", trainer)

    def _post_train(self, trainer: Any) -> None:
        self._event("_on_train_end", trainer)
        if self._pending_logs:
            values, self._pending_logs = self._pending_logs, {}
            trainer.log(values)

    def _error_train(self, trainer: Any, exception: BaseException) -> None:
        self._event("_on_exception", trainer, exception=lambda: exception)

    def _pre_epoch(self, trainer: Any) -> None:
        self._epoch = int(trainer.epoch_idx)  # exact, also after an epoch cut short (state.epoch is not)
        self._event("_on_epoch_start", trainer)

    def _post_epoch(self, trainer: Any) -> None:
        self._event("_on_epoch_end", trainer)

    def _pre_step(self, trainer: Any, batch: Any) -> Any:
        self._batch = batch if "batch" in self.needed else None
        if self._step_at_start is None:
            self._step_at_start = trainer.state.global_step
            self._losses.reset()
            self._step_lr = None
            self._event("_on_train_batch_start", trainer)
        return batch

    def _post_loss(self, trainer: Any, loss: Any) -> Any:
        if "loss" in self.needed:
            self._losses.add(loss)
        return loss

    def _pre_optimizer_step(self, trainer: Any) -> None:
        if "learning_rate" in self.needed and trainer.optimizer is not None:
            self._step_lr = float(trainer.optimizer.param_groups[0]["lr"])
        self._event("_on_before_optimizer_step", trainer)

    def _post_step(self, trainer: Any) -> None:
        if self._step_at_start is None or trainer.state.global_step == self._step_at_start:
            return
        self._step_at_start = None
        extra = {} if self._step_lr is None else {"learning_rate": lambda: self._step_lr}
        self._event("_on_train_batch_end", trainer, **extra)

    def _post_evaluate(self, trainer: Any, metrics: Any) -> Any:
        self._event("_on_validation_end", trainer, metrics=lambda: float_dict(metrics or {}))
        return metrics

    def _pre_log(self, trainer: Any, logs: Any) -> Any:
        if self._pending_logs:
            logs = {**self._pending_logs, **logs}
            self._pending_logs = {}
        self._logs = logs
        return logs

    def _post_log(self, trainer: Any) -> None:
        logs, self._logs = self._logs, {}
        self._event("_on_log", trainer, logs=lambda: float_dict(logs))

    def _post_checkpoint(self, trainer: Any, path: Any) -> Any:
        if path is not None:
            self._event("_on_save", trainer, checkpoint_dir=lambda: os.fspath(path))
        return path


def to_arctic(callback: HarnessCallback, trainer: Any = None) -> ArcticHarnessCallback:
    """Wrap ``callback`` for an arctic_like ``Trainer`` (validated now; raises ``HarnessError``).

    With ``trainer`` given, the adapter is added to it at once (``trainer.add_callback``).
    """
    adapter = ArcticHarnessCallback(callback)
    logger.debug("built arctic_like adapter for %s: %s", type(callback).__name__, adapter.plan)
    if trainer is not None:
        trainer.add_callback(adapter)
    return adapter
