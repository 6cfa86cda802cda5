"""The DeepSpeed config a run hands to ``deepspeed.initialize``: the recipe's ``deepspeed:`` dict with the
recipe's own settings filled in under DeepSpeed's keys.

Filled from the recipe (a value the dict sets differently is rejected, naming the key):
``train_micro_batch_size_per_gpu``, ``gradient_accumulation_steps``, ``train_batch_size``,
``gradient_clipping``, ``bf16.enabled``/``fp16.enabled`` (from ``precision``; ``bfloat16`` is read as
``bf16``) and ``activation_checkpointing`` (present exactly when ``model.gradient_checkpointing`` is on).
Offload settings are checked against the ZeRO stage they need. No DeepSpeed import: this is plain data.
"""

from __future__ import annotations

import copy
from typing import Any

from arctic_like.optimizer.adam import optimizer_offload_device

__all__ = ["build_deepspeed_config", "param_offload_device", "zero_stage"]


def zero_stage(ds: dict[str, Any]) -> int:
    """The ZeRO stage of a DeepSpeed config (0 when ``zero_optimization`` is absent)."""
    return int((ds.get("zero_optimization") or {}).get("stage", 0))


def param_offload_device(ds: dict[str, Any]) -> str | None:
    """``cpu``/``nvme`` when ``zero_optimization.offload_param`` (ZeRO-3 parameter offload) is on."""
    section = (ds.get("zero_optimization") or {}).get("offload_param") or {}
    device = section.get("device", "none")
    return device if device in ("cpu", "nvme") else None


def _fill_from_recipe(ds: dict[str, Any], config: Any, world_size: int) -> None:
    mbs = int(config.micro_batch_size)
    gas = int(config.gradient_accumulation_steps)
    wanted: dict[str, tuple[Any, str]] = {
        "train_micro_batch_size_per_gpu": (mbs, "micro_batch_size"),
        "gradient_accumulation_steps": (gas, "gradient_accumulation_steps"),
        "train_batch_size": (mbs * gas * world_size, "micro_batch_size x grad accumulation x world size"),
        "gradient_clipping": (float(config.max_grad_norm or 0.0), "max_grad_norm"),
    }
    for key, (value, source) in wanted.items():
        given = ds.get(key, "auto")
        if given != "auto" and given != value:
            raise ValueError(
                f"deepspeed.{key} is {given!r} but the recipe's {source} gives {value!r}. "
                f"Fix: remove deepspeed.{key} (it is filled in from the recipe) or make them agree."
            )
        ds[key] = value


def _fill_precision(ds: dict[str, Any], config: Any) -> None:
    if "bfloat16" in ds:  # DeepSpeed's older spelling, read only when `bf16` is absent: merge it into `bf16`
        ds["bf16"] = {**dict(ds.pop("bfloat16") or {}), **dict(ds.get("bf16") or {})}
    for section in ("bf16", "fp16"):
        enabled = config.precision == section
        block = dict(ds.get(section) or {})
        given = block.get("enabled", "auto")
        if given != "auto" and bool(given) != enabled:
            raise ValueError(
                f"deepspeed.{section}.enabled is {given!r} but the recipe's precision is "
                f"{config.precision!r}. "
                f"Fix: remove deepspeed.{section}.enabled (it follows precision) or make them agree."
            )
        block["enabled"] = enabled
        ds[section] = block


def _fill_activation_checkpointing(ds: dict[str, Any], config: Any) -> None:
    checkpointing = bool(getattr(getattr(config, "model", None), "gradient_checkpointing", False))
    section = ds.get("activation_checkpointing")
    if section is not None and not checkpointing:
        raise ValueError(
            "deepspeed.activation_checkpointing is set, but model.gradient_checkpointing is false, so no "
            "layer is checkpointed. Fix: set model.gradient_checkpointing: true (the layers then checkpoint "
            "through DeepSpeed with these settings), or remove deepspeed.activation_checkpointing."
        )
    if checkpointing:
        ds["activation_checkpointing"] = dict(section or {})


def _check_offload(ds: dict[str, Any]) -> None:
    stage = zero_stage(ds)
    optimizer, param = optimizer_offload_device("deepspeed", ds), param_offload_device(ds)
    if optimizer and stage == 0:
        raise ValueError(
            f"deepspeed.zero_optimization.offload_optimizer (device {optimizer}) needs ZeRO stage 1, 2 or 3, "
            "but the stage is 0. Fix: set deepspeed.zero_optimization.stage to 1, 2 or 3."
        )
    if param and stage != 3:
        raise ValueError(
            f"deepspeed.zero_optimization.offload_param (device {param}) needs ZeRO stage 3 (only stage 3 "
            f"partitions the parameters), but the stage is {stage}. "
            "Fix: set deepspeed.zero_optimization.stage: 3, or remove offload_param."
        )


def build_deepspeed_config(config: Any, world_size: int) -> dict[str, Any]:
    """The DeepSpeed config for ``world_size`` processes: the recipe's ``deepspeed:`` dict with the recipe's
    own settings filled in. Raises ``ValueError`` naming the key when the dict contradicts the recipe."""
    ds = copy.deepcopy(dict(config.deepspeed))
    if "optimizer" in ds or "scheduler" in ds:
        key = "optimizer" if "optimizer" in ds else "scheduler"
        raise ValueError(
            f"deepspeed.{key} is set, but arctic_like builds the optimizer and scheduler with its factories. "
            f"Fix: remove deepspeed.{key} and configure the recipe's optimizer:/scheduler: sections "
            "(optimizer.implementation picks DeepSpeed's FusedAdam or DeepSpeedCPUAdam)."
        )
    _fill_from_recipe(ds, config, world_size)
    _fill_precision(ds, config)
    _fill_activation_checkpointing(ds, config)
    _check_offload(ds)
    ds.setdefault("steps_per_print", 1 << 30)
    ds.setdefault("wall_clock_breakdown", False)
    return ds
