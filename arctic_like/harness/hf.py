"""The HuggingFace ``transformers.Trainer`` adapter: a harness callback as a ``TrainerCallback``.

HF callbacks never see the loss or the batch, so when (and only when) a harness method declares ``loss`` or
``batch`` the adapter records them with a forward hook on the model during training.
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from arctic_like.harness.core import (
    COMMON_ARGUMENTS,
    Dispatcher,
    HarnessCallback,
    HarnessControl,
    HarnessError,
    StepLosses,
    float_dict,
    logger,
)

_COMMON = COMMON_ARGUMENTS
_AFTER_FORWARD = _COMMON | {"loss", "batch"}

HF_SUPPLIES: dict[str, frozenset[str]] = {
    "_on_train_start": _COMMON,
    "_on_train_end": _COMMON,
    "_on_epoch_start": _COMMON,
    "_on_epoch_end": _COMMON,
    "_on_train_batch_start": _COMMON,
    "_on_train_batch_end": _AFTER_FORWARD,
    "_on_before_optimizer_step": _AFTER_FORWARD,
    "_on_validation_end": _COMMON | {"metrics"},
    "_on_log": _COMMON | {"logs"},
    "_on_save": _COMMON | {"checkpoint_dir"},
}
"""What the HF adapter supplies per harness event (HF has no exception event)."""


class HFHarnessCallback(TrainerCallback, ExportableState, Dispatcher):
    """A ``transformers.TrainerCallback`` driving one harness callback. Build it with :func:`to_hf`.

    Each :func:`to_hf` call makes a subclass bound to its harness callback, so that HF's checkpoint restore
    (which rebuilds stateful callbacks as ``type(cb)()`` and sets the saved attributes) restores the very
    harness callback the user holds.
    """

    framework: ClassVar[str] = "HuggingFace Trainer"
    supplies = HF_SUPPLIES
    bound: ClassVar[HarnessCallback]

    def __init__(self) -> None:
        bound = type(self).__dict__.get("bound")
        if bound is None:
            raise HarnessError(
                "HFHarnessCallback is built by to_hf(callback). Fix: call to_hf(your_callback)."
            )
        Dispatcher.__init__(self, bound)
        self._epoch = 0
        self._epochs_begun = 0
        self._losses = StepLosses()
        self._loss_is_sum = False
        self._batch: Any = None
        self._step_lr: float | None = None
        self._pending_logs: dict[str, float] = {}
        self._hook: Any = None

    # -- state through HF's ExportableState ---------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """HF ``ExportableState``: the harness callback's ``state_dict`` as an attribute to restore."""
        return {"args": {}, "attributes": {"harness_state": self.callback.state_dict()}}

    @property
    def harness_state(self) -> dict[str, Any]:
        """The harness callback's state (setting it loads it into the callback)."""
        return self.callback.state_dict()

    @harness_state.setter
    def harness_state(self, value: dict[str, Any]) -> None:
        self.callback.load_state_dict(value)

    # -- extraction -----------------------------------------------------------------------------------------
    def _getters(self, args: Any, state: Any, kwargs: dict[str, Any], **extra: Any) -> dict[str, Any]:
        optimizer = kwargs.get("optimizer")
        getters = {
            "current_step": lambda: state.global_step,
            "max_steps": lambda: state.max_steps,
            "epoch": lambda: self._epoch,
            "model": lambda: kwargs.get("model"),
            "optimizer": lambda: optimizer,
            "learning_rate": lambda: float(optimizer.param_groups[0]["lr"]) if optimizer else math.nan,
            "is_main_process": lambda: state.is_world_process_zero,
            "loss": self._step_loss,
            "batch": lambda: self._batch,
        }
        getters.update(extra)
        return getters

    def _step_loss(self) -> float:
        mean = self._losses.mean()
        return mean * len(self._losses.values) if self._loss_is_sum else mean

    def _record_forward(self, module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        if not module.training:
            return
        loss = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
        if loss is not None and "loss" in self.needed:
            self._losses.add(loss)
            self._loss_is_sum = kwargs.get("num_items_in_batch") is not None
        if "batch" in self.needed:
            self._batch = {k: v for k, v in kwargs.items() if k != "num_items_in_batch"}

    def _apply(self, result: HarnessControl | None, control: Any) -> None:
        if result is not None:
            result.apply_flags(control, self._pending_logs)

    def _event(self, name: str, args: Any, state: Any, control: Any, kwargs: dict, **extra: Any) -> Any:
        self._apply(self.fire(name, self._getters(args, state, kwargs, **extra)), control)
        return control

    # -- HF events -----------------------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self._epoch = math.floor(state.epoch or 0.0)
        self._epochs_begun = 0
        model = kwargs.get("model")
        if self.needed & {"loss", "batch"} and model is not None:
            self._hook = model.register_forward_hook(self._record_forward, with_kwargs=True)
        return self._event("_on_train_start", args, state, control, kwargs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        try:
            self._event("_on_train_end", args, state, control, kwargs)
        finally:
            if self._hook is not None:
                self._hook.remove()
                self._hook = None
        if self._pending_logs:
            state.log_history.append({**self._pending_logs, "step": state.global_step})
            self._pending_logs = {}
        return control

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        # Counted, not taken from state.epoch: after should_epoch_stop that keeps the cut epoch's fraction.
        if self._epochs_begun:
            self._epoch += 1
        self._epochs_begun += 1
        return self._event("_on_epoch_start", args, state, control, kwargs)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        return self._event("_on_epoch_end", args, state, control, kwargs)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self._losses.reset()
        self._step_lr = None
        return self._event("_on_train_batch_start", args, state, control, kwargs)

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        optimizer = kwargs.get("optimizer")
        if "learning_rate" in self.needed and optimizer is not None:
            self._step_lr = float(optimizer.param_groups[0]["lr"])
        return self._event("_on_before_optimizer_step", args, state, control, kwargs)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        extra = {} if self._step_lr is None else {"learning_rate": lambda: self._step_lr}
        return self._event("_on_train_batch_end", args, state, control, kwargs, **extra)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> Any:
        return self._event(
            "_on_validation_end", args, state, control, kwargs, metrics=lambda: float_dict(metrics or {})
        )

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> Any:
        if self._pending_logs and logs is not None:
            # HF appended a copy of ``logs`` (plus "step") to log_history before calling us: extend both.
            new = {k: v for k, v in self._pending_logs.items() if k not in logs}
            logs.update(new)
            if state.log_history and state.log_history[-1].get("step") == state.global_step:
                state.log_history[-1].update(new)
            self._pending_logs = {}
        return self._event("_on_log", args, state, control, kwargs, logs=lambda: float_dict(logs or {}))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        return self._event("_on_save", args, state, control, kwargs, checkpoint_dir=lambda: path)


def to_hf(callback: HarnessCallback) -> HFHarnessCallback:
    """Wrap ``callback`` as a ``transformers.TrainerCallback`` (validated now; raises ``HarnessError``)."""
    name = callback.state_key if isinstance(callback, HarnessCallback) else "Harness"
    cls = type(name, (HFHarnessCallback,), {"bound": callback, "__module__": __name__})
    adapter = cls()
    logger.debug("built HF adapter for %s: %s", type(callback).__name__, adapter.plan)
    return adapter
