"""The engine interface: how forward, backward and the optimizer step run.

The trainer never touches ``torch.distributed``, DDP, GradScaler or DeepSpeed itself: it asks its engine.
An engine is built from the trainer (it reads ``trainer.config``) and is chosen by the recipe's ``engine:``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from arctic_like.engine import compiling
from arctic_like.engine.prefetch import Prefetcher

if TYPE_CHECKING:
    from arctic_like.trainer.trainer import Trainer

logger = logging.getLogger("arctic_like.engine")

_PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

NO_CONTEXT = contextlib.nullcontext()
"""A context that does nothing (reused: the hot loop enters one per micro-batch)."""

SMALL_MODEL_PARAMETERS = 5_000_000
"""Below this size a model trains fastest on one CPU thread (see ``Engine.cpu_threads``)."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parameter_count(model: torch.nn.Module, exclude_embeddings: bool = False) -> int:
    """Number of parameters of ``model``, counting a ZeRO-3 partitioned parameter at its full size; without
    the weights of ``nn.Embedding`` modules (and the weights tied to them) if ``exclude_embeddings``."""
    skip: set[int] = set()
    if exclude_embeddings:
        skip = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    return sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters() if id(p) not in skip)


def launched_world_size() -> int:
    """The world size a launcher (torchrun, deepspeed) announced through ``WORLD_SIZE``; 1 otherwise."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def resolve_device(requested: str) -> torch.device:
    """Turn the recipe's ``device`` (``auto``/``cpu``/``cuda``) into a device, per local rank on GPUs."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device: cuda was requested but no CUDA GPU is available. Fix: set device: auto or cpu."
        )
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


class Engine(ABC):
    """Runs one model's forward, backward and optimizer step for a trainer.

    Life cycle: ``init_distributed(config)`` (class method, before data loaders are built, so samplers see
    the world size) → the model factory runs inside ``model_init_context(config)`` →
    ``Engine(trainer)`` → ``prepare(model, optimizer, scheduler)`` → ``compile()`` → ``prefetch(batches)``
    per epoch → per micro-batch ``accumulate(boundary)`` around ``forward``/``backward`` → at the boundary
    ``clip_grad_norm`` and ``step`` (optimizer, scheduler, zero grad).
    """

    name: ClassVar[str]

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.config = trainer.config
        self.device = trainer.device
        self.gradient_accumulation_steps = int(self.config.gradient_accumulation_steps)
        # Micro-batches in the current accumulation window (fewer in an epoch's incomplete last window), set
        # by the trainer: each micro-batch's loss is divided by it, so a step's gradient is their mean.
        self.window_size = self.gradient_accumulation_steps
        self.dtype = _PRECISIONS[self.config.precision]
        if self.dtype == torch.float16 and self.device.type != "cuda":
            raise ValueError(
                "precision: fp16 needs a CUDA device (found "
                f"{self.device.type}). Fix: use precision: bf16 or fp32 on CPU."
            )
        self.model: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.compile_setting: Any = getattr(self.config, "compile", None)
        self.compile_errors: tuple[type[BaseException], ...] = ()
        """What ``torch.compile`` raises when it cannot compile the model (empty without ``compile:``)."""

    @classmethod
    @abstractmethod
    def init_distributed(cls, config: Any) -> None:
        """Join the process group a launcher set up (nothing to do for a single plain process)."""

    @classmethod
    def model_init_context(cls, config: Any) -> contextlib.AbstractContextManager:
        """Context the trainer builds the model in (DeepSpeed ZeRO-3 builds it partitioned); a no-op here."""
        return contextlib.nullcontext()

    @property
    def world_size(self) -> int:
        """Number of processes taking part in the run."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size()
        return 1

    @property
    def global_rank(self) -> int:
        """This process's rank in the run."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank()
        return 0

    @property
    def local_rank(self) -> int:
        """This process's rank on its machine."""
        return int(os.environ.get("LOCAL_RANK", "0"))

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context for forward passes (a no-op in fp32)."""
        if self.dtype == torch.float32:
            return NO_CONTEXT
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    @abstractmethod
    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        """Take ownership of model, optimizer and scheduler (wrap, move, initialise)."""

    @abstractmethod
    def forward(self, batch: dict[str, torch.Tensor]) -> Any:
        """Run the model on a batch (under autocast when mixed precision is on)."""

    @abstractmethod
    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate gradients of one micro-batch's loss, scaled by ``1 / window_size``."""

    @abstractmethod
    def clip_grad_norm(self, max_norm: float | None) -> float | torch.Tensor | None:
        """Clip gradients to ``max_norm`` (if given) and return the total norm before clipping, if known."""

    @abstractmethod
    def step(self) -> float | None:
        """The optimizer step; returns a gradient norm if one was computed on the way."""

    @abstractmethod
    def end_step(self) -> None:
        """After the optimizer step: step the scheduler and zero the gradients."""

    @property
    def steps_after_skipped_boundary(self) -> bool:
        """Whether a window whose last micro-batch was skipped may still be stepped (gradients in sync)."""
        return self.world_size == 1

    @abstractmethod
    def zero_grad(self) -> None:
        """Discard accumulated gradients without stepping."""

    @abstractmethod
    def unwrap(self) -> torch.nn.Module:
        """The plain model (without DDP/DeepSpeed wrappers)."""

    def compile(self) -> None:
        """``torch.compile`` the model in place when the recipe says ``compile:`` (after ``prepare``)."""
        setting = self.compile_setting
        if setting is None:
            return
        model = self.unwrap()
        compiling.compile_model(model, setting)
        self.compile_errors = compiling.compile_errors(setting)
        logger.info("model %s compiled with torch.compile (%s)", type(model).__name__, setting)

    def compile_error(self, error: BaseException) -> Exception:
        """The error to report for ``error``, one of ``compile_errors``: which model, why, the fix."""
        return compiling.explain_compile_error(self.unwrap(), self.compile_setting, error)

    def eager(self) -> contextlib.AbstractContextManager:
        """Context in which a compiled model runs eagerly (evaluation, generation)."""
        return compiling.eager(self.compile_setting)

    def prefetch(self, batches: Iterable[Any]) -> Iterator[Any]:
        """The batches of one epoch: on a GPU moved ahead of use (pinned memory, ``non_blocking`` copies
        on a side stream, see ``engine/prefetch.py``); elsewhere as the loader gives them."""
        if self.device.type != "cuda":
            return iter(batches)
        return Prefetcher(batches, self.device)

    def accumulate(self, boundary: bool) -> contextlib.AbstractContextManager:
        """Context around one micro-batch's forward and backward; ``boundary``: the window's last one."""
        return NO_CONTEXT

    @contextlib.contextmanager
    def cpu_threads(self) -> Iterator[None]:
        """During training on CPU, a model under ``SMALL_MODEL_PARAMETERS`` uses one intra-op thread.

        Its matmuls are too small for OpenMP to gain anything, and its thread synchronisation collapses
        when the cores are shared (measured: 10x slower with 2 threads on a busy 2-core machine). Setting
        ``OMP_NUM_THREADS`` (or ``torch.set_num_threads`` before training) keeps the user's choice.
        """
        small = parameter_count(self.unwrap()) < SMALL_MODEL_PARAMETERS
        if self.device.type != "cpu" or not small or "OMP_NUM_THREADS" in os.environ:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def prepare_frozen(self, model: torch.nn.Module) -> torch.nn.Module:
        """Take a second model that only runs forward (DPO's reference): frozen, in eval mode, on the device.

        Returns what :meth:`forward_frozen` is given.
        """
        model.requires_grad_(False)
        model.eval()
        return model.to(self.device)

    def forward_frozen(self, model: torch.nn.Module, batch: dict[str, Any]) -> Any:
        """Run a model prepared by :meth:`prepare_frozen` without gradients (autocast as ``forward``)."""
        with torch.no_grad(), self.autocast():
            return model(**batch)

    def train_mode(self, training: bool) -> None:
        """Put the model in training or evaluation mode."""
        self.unwrap().train(training)
