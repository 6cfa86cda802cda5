"""The Lightning adapter: a harness callback as a ``lightning.pytorch.Callback``.

Lightning calls its batch hooks once per micro-batch; the adapter fires ``_on_train_batch_start`` at the first
micro-batch of an accumulation cycle and ``_on_train_batch_end`` once ``trainer.global_step`` has advanced,
so that a harness "train batch" is one optimizer step in every framework.
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar

import lightning.pytorch as pl

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

LIGHTNING_SUPPLIES: dict[str, frozenset[str]] = {
    "_on_train_start": _COMMON,
    "_on_train_end": _COMMON,
    "_on_epoch_start": _COMMON,
    "_on_epoch_end": _COMMON,
    "_on_train_batch_start": _COMMON | {"batch"},
    "_on_train_batch_end": _COMMON | {"batch", "loss"},
    "_on_before_optimizer_step": _COMMON | {"batch"},
    "_on_validation_end": _COMMON | {"metrics"},
    "_on_save": _COMMON,
    "_on_exception": _COMMON | {"exception"},
}
"""What the Lightning adapter supplies per harness event (Lightning has no log event)."""

# Hooks inside which Lightning allows ``LightningModule.log``; elsewhere values go to the loggers directly.
_MODULE_LOG_EVENTS = frozenset(
    {
        "_on_train_start",
        "_on_epoch_start",
        "_on_epoch_end",
        "_on_train_batch_start",
        "_on_train_batch_end",
        "_on_before_optimizer_step",
    }
)


class LightningHarnessCallback(pl.Callback, Dispatcher):
    """A ``lightning.pytorch.Callback`` driving one harness callback. Build it with :func:`to_lightning`."""

    framework: ClassVar[str] = "Lightning"
    supplies = LIGHTNING_SUPPLIES

    def __init__(self, callback: HarnessCallback) -> None:
        Dispatcher.__init__(self, callback)
        self._losses = StepLosses()
        self._step_at_start: int | None = None
        self._batch: Any = None
        self._step_lr: float | None = None
        self._saving = False
        self._warned_evaluate = False

    @property
    def state_key(self) -> str:
        """Key of the harness callback's state in Lightning checkpoints."""
        return self.callback.state_key

    def state_dict(self) -> dict[str, Any]:
        return self.callback.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.callback.load_state_dict(state_dict)

    # -- extraction -----------------------------------------------------------------------------------------
    def _getters(self, trainer: pl.Trainer, pl_module: pl.LightningModule, **extra: Any) -> dict[str, Any]:
        def optimizer() -> Any:
            return trainer.optimizers[0] if trainer.optimizers else None

        def learning_rate() -> float:
            opt = optimizer()
            return float(opt.param_groups[0]["lr"]) if opt is not None else math.nan

        def max_steps() -> int:
            if trainer.max_steps is not None and trainer.max_steps >= 0:
                return trainer.max_steps
            return int(trainer.estimated_stepping_batches)

        getters = {
            "current_step": lambda: trainer.global_step,
            "max_steps": max_steps,
            "epoch": lambda: trainer.current_epoch,
            "model": lambda: pl_module,
            "optimizer": optimizer,
            "learning_rate": learning_rate,
            "is_main_process": lambda: trainer.is_global_zero,
            "batch": lambda: self._batch,
            "loss": self._step_loss,
        }
        getters.update(extra)
        return getters

    def _step_loss(self) -> float:
        # Lightning divides each micro-batch loss by accumulate_grad_batches: their sum is the step's mean.
        return self._losses.mean() * len(self._losses.values)

    def _event(self, name: str, trainer: pl.Trainer, pl_module: pl.LightningModule, **extra: Any) -> None:
        result = self.fire(name, self._getters(trainer, pl_module, **extra))
        self._apply(result, name, trainer, pl_module)

    def _apply(
        self, result: HarnessControl | None, event: str, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> None:
        if result is None:
            return
        if result.log:
            if event in _MODULE_LOG_EVENTS:
                for key, value in result.log.items():
                    pl_module.log(key, float(value), on_step=True, on_epoch=False)
            else:
                for lg in trainer.loggers:
                    lg.log_metrics(dict(result.log), step=trainer.global_step)
        if result.evaluate and not self._warned_evaluate:
            self._warned_evaluate = True
            logger.warning(
                "%s asked to evaluate now; Lightning has no public way to start validation from a callback, "
                "so validation runs on Lightning's own schedule (val_check_interval).",
                type(self.callback).__name__,
            )
        if result.save and not self._saving:
            ckpt_cb = trainer.checkpoint_callback
            directory = getattr(ckpt_cb, "dirpath", None) or os.path.join(
                trainer.default_root_dir, "checkpoints"
            )
            trainer.save_checkpoint(os.path.join(directory, f"harness-step={trainer.global_step}.ckpt"))
        if result.stop_training:
            trainer.should_stop = True

    # -- Lightning hooks ------------------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._step_at_start = None
        self._event("_on_train_start", trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._event("_on_train_end", trainer, pl_module)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._event("_on_epoch_start", trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._event("_on_epoch_end", trainer, pl_module)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch = batch if "batch" in self.needed else None
        if self._step_at_start is None:
            self._step_at_start = trainer.global_step
            self._losses.reset()
            self._step_lr = None
            self._event("_on_train_batch_start", trainer, pl_module)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        if "learning_rate" in self.needed:
            self._step_lr = float(optimizer.param_groups[0]["lr"])
        self._event("_on_before_optimizer_step", trainer, pl_module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if "loss" in self.needed:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if loss is not None:
                self._losses.add(loss)
        if self._step_at_start is None or trainer.global_step == self._step_at_start:
            return
        self._step_at_start = None
        extra = {} if self._step_lr is None else {"learning_rate": lambda: self._step_lr}
        self._event("_on_train_batch_end", trainer, pl_module, **extra)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._event(
            "_on_validation_end", trainer, pl_module, metrics=lambda: float_dict(trainer.callback_metrics)
        )

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: Any) -> None:
        self._saving = True
        try:
            self._event("_on_save", trainer, pl_module)
        finally:
            self._saving = False

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._event("_on_exception", trainer, pl_module, exception=lambda: exception)


def to_lightning(callback: HarnessCallback) -> LightningHarnessCallback:
    """Wrap ``callback`` as a ``lightning.pytorch.Callback`` (validated now; raises ``HarnessError``)."""
    return LightningHarnessCallback(callback)
