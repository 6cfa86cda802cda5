"""The ``torch`` engine: plain PyTorch on CPU or one GPU, DDP when launched by torchrun."""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from arctic_like.engine.base import NO_CONTEXT, Engine, launched_world_size, logger


def distributed_timeout() -> datetime.timedelta:
    """Bound on collectives so a crashed rank ends the run instead of hanging it."""
    return datetime.timedelta(seconds=float(os.environ.get("ARCTIC_LIKE_DIST_TIMEOUT_S", "300")))


class TorchEngine(Engine):
    """Plain PyTorch: autocast for bf16/fp16, a GradScaler for fp16, DDP over a torchrun process group."""

    name = "torch"

    @classmethod
    def init_distributed(cls, config: Any) -> None:
        """Initialise the process group when torchrun started several processes (gloo on CPU, NCCL on GPU)."""
        if launched_world_size() <= 1 or torch.distributed.is_initialized():
            return
        use_cuda = config.device != "cpu" and torch.cuda.is_available()
        backend = "nccl" if use_cuda else "gloo"
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group(backend=backend, timeout=distributed_timeout())
        world = torch.distributed.get_world_size()
        logger.info("joined process group: backend=%s world_size=%d", backend, world)

    def __init__(self, trainer: Any) -> None:
        super().__init__(trainer)
        self.wrapped: torch.nn.Module | None = None
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None
        self._unscaled = False
        self._stepped = True

    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        """Move the model to the device and wrap it in DDP when the run has several processes."""
        model.to(self.device)
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        if self.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(model, device_ids=device_ids)
        else:
            self.wrapped = model

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:
        """Run the (possibly DDP-wrapped) model on a batch."""
        with self.autocast():
            return self.wrapped(**batch)

    def accumulate(self, boundary: bool) -> contextlib.AbstractContextManager:
        """Skip DDP's gradient all-reduce on every micro-batch but the window's last."""
        if boundary or not isinstance(self.wrapped, DistributedDataParallel):
            return NO_CONTEXT
        return self.wrapped.no_sync()

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of ``loss / window_size`` (loss-scaled in fp16)."""
        scaled = loss / self.window_size if self.window_size > 1 else loss
        if self.scaler is not None:
            scaled = self.scaler.scale(scaled)
        scaled.backward()

    def clip_grad_norm(self, max_norm: float | None) -> float | torch.Tensor | None:
        """Clip to ``max_norm`` and return the total norm before clipping (``None`` when not clipping)."""
        if not max_norm:
            return None
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
            self._unscaled = True
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        return torch.nn.utils.clip_grad_norm_(params, max_norm).detach()

    def step(self) -> float | None:
        """Optimizer step (skipped by the scaler on inf/NaN gradients in fp16)."""
        self._stepped = True
        if self.scaler is not None:
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self._stepped = self.scaler.get_scale() >= scale
            self._unscaled = False
        else:
            self.optimizer.step()
        return None

    def end_step(self) -> None:
        """Scheduler step (not after an fp16 step the scaler skipped) and zero grad."""
        if self._stepped and self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def zero_grad(self) -> None:
        """Drop accumulated gradients."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None and self._unscaled:
            self.scaler.update()
            self._unscaled = False

    def unwrap(self) -> torch.nn.Module:
        """The model without its DDP wrapper."""
        return self.model
