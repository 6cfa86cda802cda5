"""The ``transformers.TrainingArguments`` HF callbacks receive, built from the recipe to describe the run.

Every recipe field with a ``TrainingArguments`` counterpart is mapped (:data:`RECIPE_ARGUMENTS`); the
arguments with no recipe counterpart keep HF's defaults and may be changed with :class:`HFArgs` (what the
callbacks read only: the trainer never looks at them). docs/huggingface.md lists both.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainingArguments

__all__ = ["RECIPE_ARGUMENTS", "UNSUPPORTED_ARGUMENTS", "HFArgs", "training_arguments_from_config"]

RECIPE_ARGUMENTS: dict[str, str] = {
    "output_dir": "output_dir",
    "per_device_train_batch_size": "micro_batch_size",
    "per_device_eval_batch_size": "data.eval_batch_size (else micro_batch_size)",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "num_train_epochs": "epochs",
    "max_steps": "max_steps",
    "logging_strategy": "logging_strategy",
    "logging_steps": "logging_steps",
    "eval_strategy": "eval_strategy",
    "eval_steps": "eval_steps",
    "save_strategy": "save_strategy",
    "save_steps": "save_steps",
    "save_total_limit": "checkpoint[0].save_total_limit",
    "load_best_model_at_end": "load_best_model_at_end",
    "metric_for_best_model": "metric_for_best_model",
    "greater_is_better": "greater_is_better",
    "seed": "seed",
    "max_grad_norm": "max_grad_norm",
    "learning_rate": "optimizer.lr",
    "weight_decay": "optimizer.weight_decay",
    "optim": "optimizer.type",
    "optim_args": "optimizer.momentum / optimizer.nesterov (sgd)",
    "adam_beta1": "optimizer.betas[0]",
    "adam_beta2": "optimizer.betas[1]",
    "adam_epsilon": "optimizer.eps",
    "lr_scheduler_type": "scheduler.type",
    "lr_scheduler_kwargs": "scheduler.min_lr_ratio / decay_steps / decay_shape",
    "warmup_steps": "scheduler.warmup_steps / warmup_ratio",
    "bf16": "precision",
    "fp16": "precision",
    "use_cpu": "device",
    "dataloader_num_workers": "data.num_workers",
    "dataloader_drop_last": "(the training data loader drops an incomplete last micro-batch)",
    "disable_tqdm": "progress",
    "restore_callback_states_from_checkpoint": "(callback states are always restored on resume)",
}
"""``TrainingArguments`` field → the recipe setting it is taken from. ``HFArgs`` may not override these."""

UNSUPPORTED_ARGUMENTS: dict[str, str] = {
    "logging_first_step": "log every `logging_steps`, or log from a callback (control.should_log)",
    "eval_delay": "set eval_steps / eval_strategy, or evaluate from a callback (control.should_evaluate)",
    "eval_on_start": "call trainer.evaluate() before trainer.train()",
}
"""``TrainingArguments`` fields that change HF's training flow in ways the trainer does not implement."""

_OPTIMIZERS = {"adamw": "adamw_torch", "sgd": "sgd"}
_WSD_DECAY = {"linear": "linear", "cosine": "cosine", "sqrt": "1-sqrt"}


def _get(obj: Any, name: str, default: Any = None) -> Any:
    value = getattr(obj, name, default)
    return default if value is None else value


def _optimizer_arguments(optimizer: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if optimizer is None:
        return out
    for ours, theirs in (("lr", "learning_rate"), ("weight_decay", "weight_decay")):
        if getattr(optimizer, ours, None) is not None:
            out[theirs] = float(getattr(optimizer, ours))
    kind = getattr(optimizer, "type", None)
    if kind in _OPTIMIZERS:
        out["optim"] = _OPTIMIZERS[kind]
    if getattr(optimizer, "betas", None) is not None:
        out["adam_beta1"], out["adam_beta2"] = (float(b) for b in optimizer.betas)
    if getattr(optimizer, "eps", None) is not None:
        out["adam_epsilon"] = float(optimizer.eps)
    if kind == "sgd":
        out["optim_args"] = f"momentum={float(optimizer.momentum)},nesterov={bool(optimizer.nesterov)}"
    return out


def _scheduler_arguments(scheduler: Any, horizon: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if scheduler is None:
        return out
    warmup = scheduler.warmup(horizon) if horizon and hasattr(scheduler, "warmup") else 0
    out["warmup_steps"] = int(warmup)
    kind = getattr(scheduler, "type", None)
    floor = float(getattr(scheduler, "min_lr_ratio", 0.0) or 0.0)
    if kind == "constant":
        out["lr_scheduler_type"] = "constant_with_warmup" if warmup else "constant"
    elif kind == "linear":
        out["lr_scheduler_type"] = "linear"
    elif kind == "cosine":
        out["lr_scheduler_type"] = "cosine_with_min_lr" if floor else "cosine"
        if floor:
            out["lr_scheduler_kwargs"] = {"min_lr_rate": floor}
    elif kind == "wsd" and horizon:
        out["lr_scheduler_type"] = "warmup_stable_decay"
        out["lr_scheduler_kwargs"] = {
            "num_decay_steps": int(scheduler.decay(horizon, warmup)),
            "decay_type": _WSD_DECAY[scheduler.decay_shape],
            "min_lr_ratio": floor,
        }
    return out


def _recipe_arguments(config: Any, horizon: int | None, device: str | None) -> dict[str, Any]:
    """The ``TrainingArguments`` keyword arguments the recipe determines."""
    eval_steps = _get(config, "eval_steps")
    save_steps = _get(config, "save_steps")
    eval_strategy = _get(config, "eval_strategy", "steps" if eval_steps else "no")
    save_strategy = _get(config, "save_strategy", "steps" if save_steps else "no")
    if eval_strategy == "steps" and not eval_steps:
        eval_strategy = "no"
    if save_strategy == "steps" and not save_steps:
        save_strategy = "no"
    data = getattr(config, "data", None)
    micro = int(_get(config, "micro_batch_size", 1))
    precision = _get(config, "precision", "fp32")
    max_grad_norm = getattr(config, "max_grad_norm", 1.0)
    device = device or str(_get(config, "device", "auto"))
    checkpoints = list(getattr(config, "checkpoint", None) or [])
    kwargs: dict[str, Any] = {
        "output_dir": str(_get(config, "output_dir", "output")),
        "per_device_train_batch_size": micro,
        "per_device_eval_batch_size": int(_get(data, "eval_batch_size", micro)),
        "gradient_accumulation_steps": int(_get(config, "gradient_accumulation_steps", 1)),
        "num_train_epochs": float(_get(config, "epochs", 1)),
        "max_steps": int(_get(config, "max_steps", -1)),
        "logging_strategy": _get(config, "logging_strategy", "steps"),
        "logging_steps": _get(config, "logging_steps", 10),
        "eval_strategy": eval_strategy,
        "save_strategy": save_strategy,
        "load_best_model_at_end": bool(_get(config, "load_best_model_at_end", False)),
        "metric_for_best_model": _get(config, "metric_for_best_model"),
        "greater_is_better": _get(config, "greater_is_better"),
        "seed": int(_get(config, "seed", 42)),
        "max_grad_norm": float(max_grad_norm) if max_grad_norm is not None else 0.0,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": device == "cpu",
        "dataloader_num_workers": int(_get(data, "num_workers", 0)),
        "dataloader_drop_last": True,
        "disable_tqdm": not bool(getattr(config, "progress", True)),
        "restore_callback_states_from_checkpoint": True,
        "report_to": "none",
    }
    if eval_steps:
        kwargs["eval_steps"] = eval_steps
    if save_steps:
        kwargs["save_steps"] = save_steps
    if checkpoints and getattr(checkpoints[0], "save_total_limit", None):
        kwargs["save_total_limit"] = int(checkpoints[0].save_total_limit)
    kwargs.update(_optimizer_arguments(getattr(config, "optimizer", None)))
    kwargs.update(_scheduler_arguments(getattr(config, "scheduler", None), horizon))
    return kwargs


def training_arguments_from_config(
    config: Any, *, horizon: int | None = None, device: str | None = None, **overrides: Any
) -> TrainingArguments:
    """A real ``transformers.TrainingArguments`` describing the run ``config`` sets up.

    ``horizon`` (the run's optimizer steps) resolves a warmup ratio and the WSD decay; ``device`` is the
    device the run resolved (``cpu``/``cuda``). ``overrides`` set arguments the recipe has no counterpart
    for; overriding one of :data:`RECIPE_ARGUMENTS` is an error (change the recipe instead).
    """
    unsupported = sorted(set(overrides) & set(UNSUPPORTED_ARGUMENTS))
    if unsupported:
        name = unsupported[0]
        raise ValueError(
            f"HFArgs cannot set {name}: it would change the training flow in HF's Trainer, and arctic_like's "
            f"trainer does not implement it, so callbacks would read a setting the run ignores. "
            f"Fix: {UNSUPPORTED_ARGUMENTS[name]}."
        )
    mapped = sorted(set(overrides) & set(RECIPE_ARGUMENTS))
    if mapped:
        where = ", ".join(f"{name} (recipe: {RECIPE_ARGUMENTS[name]})" for name in mapped)
        raise ValueError(
            f"HFArgs cannot override {where}: these TrainingArguments are set from the recipe so that what "
            "callbacks read matches what the run does. Fix: change the recipe setting instead."
        )
    kwargs = {**_recipe_arguments(config, horizon, device), **overrides}
    try:
        return TrainingArguments(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"cannot build transformers.TrainingArguments from the recipe and overrides {sorted(overrides)}: "
            f"{exc}. Fix: correct the override (see HFArgs) or the recipe field it names."
        ) from exc


class HFArgs:
    """Set ``TrainingArguments`` fields the recipe has no counterpart for, usable as a ``callbacks:`` entry.

    ``{path: arctic_like.integrations.hf.HFArgs, kwargs: {run_name: tiny, logging_dir: runs/tb}}``. It has
    no events: adding it only rebuilds ``trainer.hf_args``. The trainer ignores these values; callbacks read
    them.
    """

    __arctic_like_callback__ = True

    def __init__(self, **overrides: Any) -> None:
        self.overrides = overrides

    def setup(self, trainer: Any) -> None:
        """Merge the overrides into the trainer's training arguments."""
        trainer.update_hf_args(**self.overrides)
