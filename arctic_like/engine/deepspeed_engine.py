"""The ``deepspeed`` engine: ``deepspeed.initialize`` with the recipe's ``deepspeed:`` dict.

Batch sizes, gradient accumulation, clipping and precision are filled in from the recipe; a value the
recipe's ``deepspeed:`` dict sets differently is rejected. The optimizer and scheduler come from the
trainer's factories and are handed to DeepSpeed (so their callbacks fire and DeepSpeed does not build
its own fused Adam).
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from typing import Any

import torch

from arctic_like.engine.base import Engine, free_port, logger
from arctic_like.engine.torch_engine import distributed_timeout


def _single_process_env() -> None:
    """DeepSpeed needs the launcher's variables even for one process; set loopback defaults."""
    defaults = {
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    if "MASTER_PORT" not in os.environ:
        os.environ["MASTER_PORT"] = str(free_port())


def build_deepspeed_config(config: Any, world_size: int) -> dict[str, Any]:
    """The DeepSpeed config: the recipe's ``deepspeed:`` dict with the recipe's own settings filled in.

    Raises ``ValueError`` naming the key when the dict contradicts the recipe.
    """
    ds = copy.deepcopy(dict(config.deepspeed))
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
    for section, precision in (("bf16", "bf16"), ("fp16", "fp16")):
        enabled = config.precision == precision
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
    if "optimizer" in ds or "scheduler" in ds:
        key = "optimizer" if "optimizer" in ds else "scheduler"
        raise ValueError(
            f"deepspeed.{key} is set, but arctic_like builds the optimizer and scheduler with its factories. "
            f"Fix: remove deepspeed.{key} and configure the recipe's optimizer:/scheduler: sections."
        )
    ds.setdefault("steps_per_print", 1 << 30)
    ds.setdefault("wall_clock_breakdown", False)
    return ds


class DeepSpeedEngine(Engine):
    """Forward/backward/step through a DeepSpeed engine (ZeRO 0-3, bf16/fp16, clipping)."""

    name = "deepspeed"

    @classmethod
    def init_distributed(cls, config: Any) -> None:
        """Set single-process launcher variables if missing and join (or create) the process group."""
        import deepspeed

        _single_process_env()
        if not torch.distributed.is_initialized():
            deepspeed.init_distributed(timeout=distributed_timeout())

    def __init__(self, trainer: Any) -> None:
        super().__init__(trainer)
        self.ds_config = build_deepspeed_config(self.config, self.world_size)
        self.wrapped: Any = None
        self._grad_norm: float | None = None

    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        """``deepspeed.initialize`` with our model, torch optimizer and scheduler."""
        import deepspeed

        model.to(self.device)
        engine, ds_optimizer, _, ds_scheduler = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            lr_scheduler=scheduler,
            config=self.ds_config,
            dist_init_required=False,
        )
        self.wrapped = engine
        self.model = model
        self.optimizer = ds_optimizer
        self.scheduler = ds_scheduler
        logger.info("deepspeed engine ready: zero stage %d", engine.zero_optimization_stage())

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:
        """Run the DeepSpeed engine's forward (DeepSpeed handles bf16/fp16 casting)."""
        return self.wrapped(**batch)

    def prepare_frozen(self, model: torch.nn.Module) -> torch.nn.Module:
        """An inference-only DeepSpeed engine with the trained model's precision; partitioned like it under
        ZeRO-3 (each rank holds a shard), whole on each rank otherwise."""
        import deepspeed

        model.requires_grad_(False)
        model.eval()
        stage = int(self.ds_config.get("zero_optimization", {}).get("stage", 0))
        config = {
            key: self.ds_config[key]
            for key in ("train_micro_batch_size_per_gpu", "train_batch_size", "bf16", "fp16")
            if key in self.ds_config
        }
        config["zero_optimization"] = {"stage": 3 if stage == 3 else 0}
        config["steps_per_print"] = 1 << 30
        model = model.to(self.device)
        engine, *_ = deepspeed.initialize(model=model, config=config, dist_init_required=False)
        engine.eval()
        return engine

    def forward_frozen(self, model: torch.nn.Module, batch: dict[str, Any]) -> Any:
        """Run a model prepared by :meth:`prepare_frozen` without gradients."""
        with torch.no_grad():
            return model(**batch)

    @contextlib.contextmanager
    def accumulate(self, boundary: bool) -> Iterator[None]:
        """Tell DeepSpeed whether this micro-batch closes the accumulation window."""
        self.wrapped.set_gradient_accumulation_boundary(boundary)
        yield

    def backward(self, loss: torch.Tensor) -> None:
        """DeepSpeed backward (it divides by gradient_accumulation_steps itself; an incomplete last window's
        losses are scaled up so that its gradient is the mean over its micro-batches too)."""
        if self.window_size != self.gradient_accumulation_steps:
            loss = loss * (self.gradient_accumulation_steps / self.window_size)
        self.wrapped.backward(loss)

    def clip_grad_norm(self, max_norm: float | None) -> float | torch.Tensor | None:
        """DeepSpeed clips inside ``step`` (``gradient_clipping``); the norm is reported by ``step``."""
        return None

    def step(self) -> float | None:
        """DeepSpeed's step: optimizer, scheduler, zero grad; returns its global gradient norm."""
        self.wrapped.step()
        norm = self.wrapped.get_global_grad_norm()
        return None if norm is None else float(norm)

    def end_step(self) -> None:
        """Nothing: DeepSpeed's ``step`` already stepped the scheduler and zeroed the gradients."""

    @property
    def steps_after_skipped_boundary(self) -> bool:
        """DeepSpeed reduces gradients in the boundary backward, so a window without it is dropped."""
        return False

    def zero_grad(self) -> None:
        """Drop accumulated gradients (also ZeRO's partitioned buffers)."""
        if hasattr(self.optimizer, "zero_grad"):
            self.optimizer.zero_grad()
        self.wrapped.zero_grad()

    def unwrap(self) -> torch.nn.Module:
        """The model inside the DeepSpeed engine."""
        return self.wrapped.module
