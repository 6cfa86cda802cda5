"""Batches moved to the GPU one step ahead: the copy of the next batch overlaps the current step.

``Prefetcher(batches, device)`` iterates ``batches`` one ahead. Before it hands out batch ``k`` it has
already taken batch ``k + 1`` from the loader and started its copy: on CUDA, from pinned host memory
(pinned here unless the loader pinned it) with ``non_blocking=True`` on a side stream, so the copy runs
while the GPU computes step ``k``; the compute stream waits for it (an event, not a host sync) only when
batch ``k + 1`` is used. Elsewhere the batch is moved with a plain ``.to(device)`` (a no-op on CPU).

The loader's iterator is created when the prefetcher is (as ``iter(loader)`` would be), so the random
state it draws from is the same as without prefetching; loading ahead draws nothing from the global RNG.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

__all__ = ["Prefetcher", "move_batch"]

_END = object()


def move_batch(batch: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """``batch`` with its tensors (in a dict, list or tuple) on ``device``."""
    if isinstance(batch, torch.Tensor):
        if device.type == "cuda" and batch.device.type == "cpu" and not batch.is_pinned():
            batch = batch.pin_memory()
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return {k: move_batch(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(move_batch(v, device, non_blocking) for v in batch)
    return batch


def _tensors(batch: Any) -> Iterator[torch.Tensor]:
    if isinstance(batch, torch.Tensor):
        yield batch
    elif isinstance(batch, dict):
        for value in batch.values():
            yield from _tensors(value)
    elif isinstance(batch, list | tuple):
        for value in batch:
            yield from _tensors(value)


class Prefetcher(Iterator[Any]):
    """An iterator over ``batches`` on ``device``, loading and copying one batch ahead."""

    def __init__(self, batches: Iterable[Any], device: torch.device) -> None:
        self.device = torch.device(device)
        self._source = iter(batches)
        cuda = self.device.type == "cuda"
        self._stream = torch.cuda.Stream(self.device) if cuda else None
        self._next: Any = _END
        self._ready: Any = None
        self._started = False

    def __iter__(self) -> Prefetcher:
        return self

    def __next__(self) -> Any:
        if not self._started:
            self._started = True
            self._load()
        batch, ready = self._next, self._ready
        if batch is _END:
            raise StopIteration
        self._load()
        if ready is not None:
            stream = torch.cuda.current_stream(self.device)
            stream.wait_event(ready)
            for tensor in _tensors(batch):
                tensor.record_stream(stream)
        return batch

    def _load(self) -> None:
        """Take the next batch from the loader and start moving it."""
        batch = next(self._source, _END)
        self._ready = None
        if batch is _END or self._stream is None:
            self._next = batch if batch is _END else move_batch(batch, self.device)
            return
        with torch.cuda.stream(self._stream):
            self._next = move_batch(batch, self.device)
            self._ready = torch.cuda.Event()
            self._ready.record(self._stream)
