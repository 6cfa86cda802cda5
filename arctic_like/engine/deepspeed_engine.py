"""The ``deepspeed`` engine: ``deepspeed.initialize`` with the config that ``build_deepspeed_config`` makes
from the recipe (ZeRO 0-3, optimizer and parameter offload, bf16/fp16, activation checkpointing).

The optimizer and scheduler come from the trainer's factories (so their callbacks fire and see the real
optimizer); the ``adamw`` factory already picked DeepSpeed's FusedAdam or DeepSpeedCPUAdam where the run
calls for them. Under ZeRO-3 the model is built inside ``deepspeed.zero.Init`` (through transformers'
``HfDeepSpeedConfig``), so no process ever holds the whole model.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch

from arctic_like.engine.base import Engine, free_port, launched_world_size, logger
from arctic_like.engine.deepspeed_config import build_deepspeed_config, param_offload_device, zero_stage
from arctic_like.engine.torch_engine import distributed_timeout
from arctic_like.optimizer.adam import ninja_on_path, optimizer_offload_device

__all__ = ["DeepSpeedEngine", "build_deepspeed_config"]


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


def _current_world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return launched_world_size()


def _check_offload_optimizer(optimizer: torch.optim.Optimizer, ds: dict[str, Any]) -> None:
    """DeepSpeed's own rule, said before DeepSpeed says it: an offloaded optimizer state is stepped by one of
    DeepSpeed's CPU optimizers unless ``zero_force_ds_cpu_optimizer`` is false."""
    device = optimizer_offload_device("deepspeed", ds)
    if device is None or not ds.get("zero_force_ds_cpu_optimizer", True):
        return
    from deepspeed.ops.adam import DeepSpeedCPUAdam
    from deepspeed.ops.lion import DeepSpeedCPULion

    if not isinstance(optimizer, DeepSpeedCPUAdam | DeepSpeedCPULion):
        raise ValueError(
            f"deepspeed.zero_optimization.offload_optimizer (device {device}) steps the optimizer on the CPU "
            f"with DeepSpeed's CPU optimizers, but the recipe's optimizer is {type(optimizer).__name__}. "
            "Fix: use optimizer type adamw (it picks DeepSpeedCPUAdam) or cpu_adam, or set "
            f"deepspeed.zero_force_ds_cpu_optimizer: false to step {type(optimizer).__name__} on the CPU."
        )


def _checkpoint_through_deepspeed(model: torch.nn.Module, ds: dict[str, Any]) -> None:
    """Make the model's checkpointed layers use ``deepspeed.checkpointing.checkpoint``, configured from the
    config's ``activation_checkpointing`` section (the model factory enabled checkpointing already)."""
    import deepspeed

    if not hasattr(model, "_set_gradient_checkpointing"):
        raise ValueError(
            f"model.gradient_checkpointing under engine: deepspeed needs a transformers model, got "
            f"{type(model).__name__}. Fix: call deepspeed.checkpointing.checkpoint in your model yourself "
            "and set model.gradient_checkpointing: false."
        )
    deepspeed.checkpointing.configure(None, deepspeed_config=ds)
    checkpoint = deepspeed.checkpointing.checkpoint
    model._set_gradient_checkpointing(enable=True, gradient_checkpointing_func=checkpoint)
    if hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()  # a reentrant checkpoint needs inputs requiring grad (e.g. LoRA)


class DeepSpeedEngine(Engine):
    """Forward/backward/step through a DeepSpeed engine (ZeRO 0-3, offload, bf16/fp16, clipping,
    activation checkpointing)."""

    name = "deepspeed"

    @classmethod
    def init_distributed(cls, config: Any) -> None:
        """Set single-process launcher variables if missing and join (or create) the process group."""
        import deepspeed

        _single_process_env()
        ninja_on_path()  # DeepSpeed compiles its shared-memory collectives op on first use
        if not torch.distributed.is_initialized():
            deepspeed.init_distributed(timeout=distributed_timeout())

    @classmethod
    @contextlib.contextmanager
    def model_init_context(cls, config: Any) -> Iterator[None]:
        """Under ZeRO-3, build the model partitioned (``deepspeed.zero.Init`` through transformers'
        ``HfDeepSpeedConfig``): each process allocates only its share, on the offload device if any."""
        ds = build_deepspeed_config(config, _current_world_size())
        if zero_stage(ds) != 3:
            yield
            return
        from transformers.integrations import HfDeepSpeedConfig

        hf_config = HfDeepSpeedConfig(ds)  # transformers holds a weak reference: alive while building
        try:
            yield
        finally:
            del hf_config

    def __init__(self, trainer: Any) -> None:
        super().__init__(trainer)
        self.ds_config = build_deepspeed_config(self.config, self.world_size)
        checkpointing = self.ds_config.get("activation_checkpointing") or {}
        if checkpointing.get("cpu_checkpointing") and self.device.type != "cuda":
            raise ValueError(
                "deepspeed.activation_checkpointing.cpu_checkpointing moves checkpointed activations from "
                f"the GPU to the CPU, but this run's device is {self.device.type}. "
                "Fix: remove cpu_checkpointing (the activations already live in CPU memory)."
            )
        self.hf_deepspeed_config: Any = None
        if zero_stage(self.ds_config) == 3:
            from transformers.integrations import HfDeepSpeedConfig

            # Kept for the engine's life, as HF's Trainer does: transformers then knows that parameters are
            # partitioned (ranks generate in lockstep, loading gathers).
            self.hf_deepspeed_config = HfDeepSpeedConfig(self.ds_config)
        self.wrapped: Any = None

    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        """``deepspeed.initialize`` with our model, optimizer and scheduler."""
        import deepspeed

        _check_offload_optimizer(optimizer, self.ds_config)
        if "activation_checkpointing" in self.ds_config:
            _checkpoint_through_deepspeed(model, self.ds_config)
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
        logger.info("deepspeed engine ready: %s", self.describe())

    def describe(self) -> str:
        """One line: ZeRO stage, optimizer, offload targets and precision, e.g. for the start-up log."""
        ds = self.ds_config
        parts = [f"zero stage {self.wrapped.zero_optimization_stage()}"]
        basic = getattr(self.optimizer, "optimizer", self.optimizer)
        parts.append(f"optimizer {type(basic).__name__}")
        for what, device in (
            ("optimizer state", optimizer_offload_device("deepspeed", ds)),
            ("parameters", param_offload_device(ds)),
        ):
            if device:
                parts.append(f"{what} offloaded to {device}")
        parts.append(self.config.precision)
        if "activation_checkpointing" in ds:
            parts.append("activation checkpointing")
        return ", ".join(parts)

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
