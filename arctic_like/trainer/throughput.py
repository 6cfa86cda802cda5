"""Throughput and memory figures for the trainer's logs, measured without extra device syncs.

Samples are counted from each batch's shape on the host. Tokens (the attention mask's sum, else the
``input_ids`` size) are summed on the device and come back with the loss at the trainer's read-back
(``trainer/readback.py``), so counting them costs no transfer. Time is taken at those read-backs, right
before the transfer: on a GPU as CUDA events (recorded in the stream, read once the transfer has waited for
them, so they time the device's own progress without a sync of their own), on CPU with
``time.perf_counter``. Time spent in evaluation and checkpointing is left out of the training rates. Peak
memory is the process's peak resident set on CPU and ``torch.cuda.max_memory_allocated`` on a GPU. MFU
needs the model's FLOPs per token (known for HF models) and the GPU's peak FLOP/s (a table of common
data-centre GPUs); it is absent otherwise, and always on CPU.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import torch

from arctic_like.trainer.readback import ReadBack, Reading

MASKS_SUMMED_AT = 32
"""Attention masks kept for the next mark before they are summed into one tensor (bounds what they hold)."""

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


class _Clock:
    """Numbered time stamps: CUDA events on a GPU (read once a later transfer has waited for them), else
    host time."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda" and torch.cuda.is_available()
        self.count = 0

    def stamp(self) -> tuple[int, Any]:
        self.count += 1
        if not self.cuda:
            return self.count, time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return self.count, event

    def seconds(self, start: tuple[int, Any], end: tuple[int, Any]) -> float:
        if not self.cuda:
            return end[1] - start[1]
        return start[1].elapsed_time(end[1]) / 1000.0


class Throughput:
    """Counts samples and tokens of the training batches and turns them into rates at each log.

    ``count(batch)`` is called per micro-batch (host arithmetic, and one device sum put into the trainer's
    read-back); ``mark()`` at each read-back, right before its transfer; ``window(steps)`` at a log point
    returns the figures since the previous one (over all processes); ``paused()`` wraps work that is not
    training.
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.device = torch.device(getattr(trainer, "device", "cpu"))
        self.world_size = int(getattr(trainer, "world_size", 1) or 1)
        readback = getattr(trainer, "readback", None)
        self.readback = readback if readback is not None else ReadBack(self.device, self.world_size)
        self.flops_per_token = flops_per_token(getattr(trainer, "model", None))
        self.peak_flops: float | None = None
        if self.device.type == "cuda":
            precision = str(getattr(getattr(trainer, "config", None), "precision", "fp32"))
            self.peak_flops = peak_flops(torch.cuda.get_device_name(self.device), precision)
        self.clock = _Clock(self.device)
        self.start()

    def start(self) -> None:
        """Begin a run: the counts are zeroed and the first window starts now."""
        self.run_samples = self.run_tokens = 0
        self._host_samples = self._host_tokens = 0
        self._samples: list[Reading] = []
        self._tokens: list[Reading] = []
        self._masks: list[torch.Tensor] = []
        self._mask_sums: list[torch.Tensor] = []
        self._pauses: list[tuple[tuple[int, Any], tuple[int, Any]]] = []
        self._window_start = self._latest = self.clock.stamp()

    def count(self, batch: Any) -> None:
        """Add one micro-batch (on the device or not: its tokens are summed where it is)."""
        if not isinstance(batch, dict) or not isinstance(batch.get("input_ids"), torch.Tensor):
            return
        ids = batch["input_ids"]
        self._host_samples += int(ids.shape[0]) if ids.dim() > 0 else 1
        mask = batch.get("attention_mask")
        if isinstance(mask, torch.Tensor) and mask.shape == ids.shape:
            self._masks.append(mask)  # summed with the others at the next mark: no device op per batch
            if len(self._masks) >= MASKS_SUMMED_AT:
                self._mask_sums.append(self._summed_masks())
        else:
            self._host_tokens += ids.numel()

    def _summed_masks(self) -> torch.Tensor:
        masks, self._masks = self._masks, []
        return torch.cat([mask.reshape(-1) for mask in masks]).sum(dtype=torch.float64)

    def mark(self) -> None:
        """A read-back is about to copy its values to the host: the counts so far go with it (so that they
        are summed over processes) and the time is stamped; the next log's window ends here unless another
        read-back comes first."""
        put = self.readback.put
        device = self.readback.device
        self._samples.append(put(torch.full((), self._host_samples, dtype=torch.float64, device=device)))
        self._tokens.append(put(torch.full((), self._host_tokens, dtype=torch.float64, device=device)))
        if self._masks:
            self._mask_sums.append(self._summed_masks())
        sums, self._mask_sums = self._mask_sums, []
        masked = torch.stack(sums).sum() if sums else torch.zeros((), dtype=torch.float64, device=device)
        self._tokens.append(put(masked))  # put at every mark, so that every process puts the same values
        self._host_samples = self._host_tokens = 0
        self._latest = self.clock.stamp()

    def run_tokens_all(self) -> int:
        """Tokens of the whole run over all processes, up to the latest read-back."""
        self._take_counts()
        return self.run_tokens

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Leave the time spent inside out of the training rates (evaluation, checkpoints)."""
        start = self.clock.stamp()
        try:
            yield
        finally:
            self._pauses.append((start, self.clock.stamp()))

    def window(self, steps: int) -> dict[str, float]:
        """``tokens_per_second``, ``samples_per_second``, ``step_time`` (s), ``peak_memory_gib`` and, where
        known, ``mfu`` over the ``steps`` optimizer steps since the last call; starts the next window.

        The window ends at the latest ``mark()``: the trainer marks right before the read-back of the logged
        values, so counts and time come with that transfer, without a sync of their own. Used on its own,
        ``window`` marks and reads back itself."""
        if self._latest is self._window_start:
            self.mark()
            self.readback.read()
        samples, tokens = self._take_counts()
        end = self._latest
        done = [p for p in self._pauses if p[1][0] <= end[0]]
        self._pauses = [p for p in self._pauses if p[1][0] > end[0]]
        excluded = sum(self.clock.seconds(a, b) for a, b in done)
        seconds = max(self.clock.seconds(self._window_start, end) - excluded, 1e-9)
        self._window_start = end
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

    def _take_counts(self) -> tuple[int, int]:
        """Samples and tokens (over all processes) read back since the last call, added to the run's."""
        ready = [r for r in self._samples if r.ready], [r for r in self._tokens if r.ready]
        self._samples = [r for r in self._samples if not r.ready]
        self._tokens = [r for r in self._tokens if not r.ready]
        samples, tokens = (round(sum(r.total for r in readings)) for readings in ready)
        self.run_samples += samples
        self.run_tokens += tokens
        return samples, tokens
