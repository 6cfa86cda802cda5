"""Optimizer factories: the `OptimizerFactory` base, `adamw` (with weight-decay groups), its DeepSpeed-named
forms `fused_adam` and `cpu_adam` (as in ArcticTraining), and `sgd`."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator

from arctic_like.callback import CallbackMixin
from arctic_like.config.base import HumanFloat
from arctic_like.config.parts import OptimizerConfig
from arctic_like.context import call_with_optional
from arctic_like.optimizer.adam import AdamImplementation, build_adam, choose_adam
from arctic_like.registry import Registrable

__all__ = [
    "AdamWConfig",
    "AdamWOptimizerFactory",
    "CPUAdamConfig",
    "CPUAdamOptimizerFactory",
    "FusedAdamConfig",
    "FusedAdamOptimizerFactory",
    "OptimizerFactory",
    "SGDConfig",
    "SGDOptimizerFactory",
    "weight_decay_groups",
]


def weight_decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two parameter groups: decayed weights, and biases plus norm/embedding-free 1-d weights without decay.

    A parameter gets no weight decay when it is a bias, is 1-dimensional (norm scales), or belongs to a
    normalization layer (``LayerNorm``, ``RMSNorm``, ... recognised by ``norm`` in the module's class name).
    Frozen parameters (``requires_grad=False``) are left out. A parameter partitioned by DeepSpeed ZeRO-3 is
    judged by its full shape (``ds_shape``), not by its local, flattened partition.
    """
    no_decay_ids: set[int] = set()
    for module in model.modules():
        if "norm" in type(module).__name__.lower():
            no_decay_ids.update(id(p) for p in module.parameters(recurse=False))
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        ndim = len(getattr(param, "ds_shape", param.shape))
        if name.endswith("bias") or ndim < 2 or id(param) in no_decay_ids:
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


class OptimizerFactory(Registrable, CallbackMixin):
    """Builds the optimizer for ``trainer.model``: ``OptimizerFactory(trainer, config)()``."""

    config: ClassVar[type[OptimizerConfig]] = OptimizerConfig

    def __init__(self, trainer: Any, config: OptimizerConfig) -> None:
        self.trainer = trainer
        self.config = config

    def __call__(self) -> torch.optim.Optimizer:
        model = getattr(self.trainer, "model", None)
        if model is None:
            raise ValueError(
                "the optimizer factory needs trainer.model. Fix: build the model before the optimizer."
            )
        return call_with_optional(self.create_optimizer, model, optimizer_config=self.config)

    def create_optimizer(
        self, model: torch.nn.Module, optimizer_config: OptimizerConfig | None = None
    ) -> torch.optim.Optimizer:
        """The optimizer over ``model``'s trainable parameters, with ``optimizer_config`` (this factory's
        config; ArcticTraining's signature, so its overrides and callbacks naming it bind)."""
        raise NotImplementedError(f"{type(self).__name__} must implement create_optimizer()")


class AdamWConfig(OptimizerConfig):
    betas: tuple[float, float] = (0.9, 0.999)
    eps: HumanFloat = Field(default=1e-8, gt=0)
    weight_decay: HumanFloat = Field(default=0.01, ge=0)
    implementation: AdamImplementation = "auto"
    """``auto``: DeepSpeed's FusedAdam on GPUs and DeepSpeedCPUAdam with an offloaded optimizer under
    ``engine: deepspeed``, torch's AdamW otherwise; ``torch``, ``fused_adam`` or ``cpu_adam`` force one."""


class AdamWOptimizerFactory(OptimizerFactory):
    """AdamW in the implementation the engine calls for (see ``AdamWConfig.implementation``); no weight decay
    on biases and norm weights."""

    name = "adamw"
    config = AdamWConfig

    def create_optimizer(
        self, model: torch.nn.Module, optimizer_config: OptimizerConfig | None = None
    ) -> torch.optim.Optimizer:
        cfg = optimizer_config or self.config
        trainer_config = getattr(self.trainer, "config", None)
        implementation = choose_adam(
            cfg.implementation,
            engine=getattr(trainer_config, "engine", "torch"),
            deepspeed=dict(getattr(trainer_config, "deepspeed", None) or {}),
            device=torch.device(getattr(self.trainer, "device", "cpu")),
        )
        groups = weight_decay_groups(model, cfg.weight_decay)
        return build_adam(implementation, groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


class FusedAdamConfig(AdamWConfig):
    implementation: Literal["fused_adam"] = "fused_adam"


class FusedAdamOptimizerFactory(AdamWOptimizerFactory):
    """``type: fused_adam``: DeepSpeed's FusedAdam (CUDA), ArcticTraining's default under DeepSpeed."""

    name = "fused_adam"
    config = FusedAdamConfig


class CPUAdamConfig(AdamWConfig):
    implementation: Literal["cpu_adam"] = "cpu_adam"


class CPUAdamOptimizerFactory(AdamWOptimizerFactory):
    """``type: cpu_adam``: DeepSpeedCPUAdam, for an optimizer state offloaded to the CPU (ZeRO-Offload)."""

    name = "cpu_adam"
    config = CPUAdamConfig


class SGDConfig(OptimizerConfig):
    momentum: float = Field(default=0.0, ge=0)
    nesterov: bool = False

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGDConfig:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0; set momentum, e.g. 0.9")
        return self


class SGDOptimizerFactory(OptimizerFactory):
    """``torch.optim.SGD``; no weight decay on biases and norm weights."""

    name = "sgd"
    config = SGDConfig

    def create_optimizer(
        self, model: torch.nn.Module, optimizer_config: OptimizerConfig | None = None
    ) -> torch.optim.Optimizer:
        cfg = optimizer_config or self.config
        groups = weight_decay_groups(model, cfg.weight_decay)
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
