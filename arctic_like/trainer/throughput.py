"""Throughput and memory figures for the trainer's logs, measured without extra device syncs.

Samples and tokens are counted from each batch *before* it is moved to the device (shapes, and the
attention mask's sum while it is still a CPU tensor); time is read with ``time.perf_counter`` on the host
at log points, right after the loss has been read (which already waits for the device). Time spent in
evaluation and checkpointing is left out of the training rates. Peak memory is the process's peak
resident set on CPU and ``torch.cuda.max_memory_allocated`` on a GPU. MFU needs the model's FLOPs per
token (known for HF models) and the GPU's peak FLOP/s (a table of common data-centre GPUs); it is absent
otherwise, and always on CPU.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import torch

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

__all__ = ["Throughput", "batch_size_and_tokens", "flops_per_token", "peak_flops", "peak_memory_gib"]

# Dense peak FLOP/s per GPU (vendor data sheets): bf16/fp16 tensor cores, and fp32 without TF32.
# More specific names first ("H100 PCIe" before "H100").
_PEAK_FLOPS: tuple[tuple[str, float, float], ...] = (
    ("H200", 989e12, 67e12),
    ("H100 PCIe", 756e12, 51e12),
    ("H100", 989e12, 67e12),
    ("A100", 312e12, 19.5e12),
    ("L40S", 362e12, 91.6e12),
    ("L4", 121e12, 30.3e12),
    ("V100", 125e12, 15.7e12),
)


def peak_flops(device_name: str, precision: str) -> float | None:
    """The dense peak FLOP/s of the GPU called ``device_name`` at ``precision`` (fp32/bf16/fp16), or None."""
    for name, half, single in _PEAK_FLOPS:
        if name in device_name:
            return single if precision == "fp32" else half
    return None


def flops_per_token(model: Any) -> float | None:
    """Training FLOPs per token, 6 x the non-embedding parameters (HF's ``floating_point_ops``), or None
    when the model does not say how many parameters it has (not an HF model)."""
    count = getattr(model, "num_parameters", None)
    if not callable(count):
        return None
    return 6.0 * float(count(exclude_embeddings=True))


def peak_memory_gib(device: torch.device) -> float | None:
    """Peak memory of this process in GiB: allocated on the GPU, resident set on CPU (None if unknown)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    if resource is None:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss * (1 if sys.platform == "darwin" else 1024) / 2**30


def batch_size_and_tokens(batch: Any) -> tuple[int, int]:
    """Samples and non-padding tokens of a batch, read without a device sync.

    Tokens are the attention mask's sum while the mask is on the CPU, else the ``input_ids`` shape.
    """
    if not isinstance(batch, dict) or not isinstance(batch.get("input_ids"), torch.Tensor):
        return 0, 0
    ids = batch["input_ids"]
    samples = int(ids.shape[0]) if ids.dim() > 0 else 1
    mask = batch.get("attention_mask")
    if isinstance(mask, torch.Tensor) and mask.device.type == "cpu" and mask.shape == ids.shape:
        return samples, int(mask.sum())
    return samples, ids.numel()


class Throughput:
    """Counts samples and tokens of the training batches and turns them into rates at each log.

    ``count(batch)`` is called per micro-batch (host arithmetic only); ``window(steps)`` at a log point
    returns the figures since the previous one; ``paused()`` wraps work that is not training.
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.device = torch.device(getattr(trainer, "device", "cpu"))
        self.world_size = int(getattr(trainer, "world_size", 1) or 1)
        self.flops_per_token = flops_per_token(getattr(trainer, "model", None))
        self.peak_flops: float | None = None
        if self.device.type == "cuda":
            precision = str(getattr(getattr(trainer, "config", None), "precision", "fp32"))
            self.peak_flops = peak_flops(torch.cuda.get_device_name(self.device), precision)
        self.start()

    def start(self) -> None:
        """Begin a run: the counts are zeroed and the first window starts now."""
        self.samples = self.tokens = 0
        self.run_samples = self.run_tokens = 0
        self._excluded = 0.0
        self._window_start = time.perf_counter()

    def count(self, batch: Any) -> None:
        """Add one micro-batch (call before it is moved to the device)."""
        samples, tokens = batch_size_and_tokens(batch)
        self.samples += samples
        self.tokens += tokens
        self.run_samples += samples
        self.run_tokens += tokens

    def run_tokens_all(self) -> int:
        """Tokens of the whole run over all processes (one all-reduce in a distributed run)."""
        return self._summed(self.run_samples, self.run_tokens)[1]

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Leave the time spent inside out of the training rates (evaluation, checkpoints)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._excluded += time.perf_counter() - start

    def window(self, steps: int) -> dict[str, float]:
        """``tokens_per_second``, ``samples_per_second``, ``step_time`` (s), ``peak_memory_gib`` and, where
        known, ``mfu`` over the ``steps`` optimizer steps since the last call; starts the next window."""
        now = time.perf_counter()
        seconds = max(now - self._window_start - self._excluded, 1e-9)
        samples, tokens = self._summed(self.samples, self.tokens)
        self.samples = self.tokens = 0
        self._excluded = 0.0
        self._window_start = now
        logs = {
            "tokens_per_second": tokens / seconds,
            "samples_per_second": samples / seconds,
            "step_time": seconds / max(steps, 1),
        }
        memory = peak_memory_gib(self.device)
        if memory is not None:
            logs["peak_memory_gib"] = memory
        if self.flops_per_token is not None and self.peak_flops:
            achieved = self.flops_per_token * logs["tokens_per_second"]
            logs["mfu"] = achieved / (self.peak_flops * self.world_size)
        return logs

    def _summed(self, samples: int, tokens: int) -> tuple[int, int]:
        """The counts of all processes (one small all-reduce per log in a distributed run)."""
        if self.world_size == 1 or not torch.distributed.is_initialized():
            return samples, tokens
        t = torch.tensor([samples, tokens], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return int(t[0]), int(t[1])
