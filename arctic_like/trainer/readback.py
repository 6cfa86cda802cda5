"""Device values that stay on the device until a log needs them, then come back in one transfer.

On a GPU every read of a tensor's value (``.item()``, ``float(t)``, ``if t:``, ``.tolist()``, ``.cpu()``)
waits for all the work queued before it: the host stops running ahead, and the step time becomes the sum of
the host's and the device's time instead of the larger of the two. The training loop therefore reads
nothing per micro-batch. It ``put``s each value it will need later (a micro-batch's loss, its token count,
a subclass's metrics) into the trainer's ``ReadBack`` and gets a ``Reading``; at a log point ``read()``
stacks every pending value into one tensor and copies it to the host at once (in a multi-process run, after
one all-gather), filling in every ``Reading``.

``DeviceMetrics`` builds on it for a trainer's own metrics (``trainer.metrics``): values added during
training are logged with the next training log as their mean over the micro-batches since the previous
log and over processes, with no read of their own.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

import torch

__all__ = ["DeviceMetrics", "ReadBack", "Reading"]

COMPACT_AT = 1024
"""Pending scalars are stacked into one tensor every this many, so a long interval between reads keeps a
handful of tensors alive instead of one per micro-batch."""


class Reading:
    """One scalar put into a ``ReadBack``: ``values`` (one per process) once it has been read."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: list[float] | None = None

    @property
    def ready(self) -> bool:
        return self.values is not None

    @property
    def mean(self) -> float:
        """The mean over processes (the value itself in a single process)."""
        values = self._values()
        return math.fsum(values) / len(values)

    @property
    def total(self) -> float:
        """The sum over processes."""
        return math.fsum(self._values())

    def _values(self) -> list[float]:
        if self.values is None:
            raise RuntimeError("this value has not been read back yet; call ReadBack.read() first")
        return self.values


class _Group:
    """The pending values of one dtype: loose tensors, already stacked chunks, and their readings."""

    __slots__ = ("loose", "packed", "readings")

    def __init__(self) -> None:
        self.loose: list[torch.Tensor] = []
        self.packed: list[torch.Tensor] = []
        self.readings: list[Reading] = []

    def vector(self) -> torch.Tensor:
        if self.loose:
            self.packed.append(torch.stack(self.loose))
            self.loose = []
        return torch.cat(self.packed) if len(self.packed) > 1 else self.packed[0]


class ReadBack:
    """Scalars queued on the device (``put``), read back together (``read``): one device-to-host copy,
    and one all-gather when ``world_size > 1`` (then every process must ``put`` the same kinds of values
    in the same order and ``read`` at the same points)."""

    def __init__(self, device: torch.device | str, world_size: int = 1) -> None:
        self.device = torch.device(device)
        self.world_size = int(world_size)
        self._groups: dict[torch.dtype, _Group] = {}
        self.reads = 0
        """How many transfers this queue has made (each costs one device synchronisation)."""

    def __len__(self) -> int:
        """Values waiting for the next read."""
        return sum(len(g.readings) for g in self._groups.values())

    def put(self, value: torch.Tensor) -> Reading:
        """Queue a one-element tensor on the device; costs no device work until the read."""
        value = value.detach()
        if value.dim():
            value = value.reshape(())
        if value.device != self.device:
            value = value.to(self.device, non_blocking=True)
        group = self._groups.get(value.dtype)
        if group is None:
            group = self._groups[value.dtype] = _Group()
        reading = Reading()
        group.loose.append(value)
        group.readings.append(reading)
        if len(group.loose) >= COMPACT_AT:
            group.packed.append(torch.stack(group.loose))
            group.loose = []
        return reading

    def read(self) -> list[Reading]:
        """Copy every pending value to the host at once and fill in their ``Reading``s (which it returns);
        nothing happens when none is pending."""
        groups = list(self._groups.values())
        if not groups:
            return []
        self._groups = {}
        parts = [g.vector().to(torch.float64) for g in groups]
        flat = torch.cat(parts) if len(parts) > 1 else parts[0]
        if self.world_size > 1:
            gathered = flat.new_empty(self.world_size * flat.numel())
            torch.distributed.all_gather_into_tensor(gathered, flat)
            flat = gathered
        host = flat.tolist()
        self.reads += 1
        readings = [r for g in groups for r in g.readings]
        count = len(readings)
        for index, reading in enumerate(readings):
            reading.values = host[index::count]
        return readings


Reduce = Literal["mean", "sum"]


class DeviceMetrics:
    """Named metrics kept on the device and read back with everything else at the next read.

    ``add(name, value)`` per micro-batch (a tensor, or a number); after ``ReadBack.read()``, ``result()``
    gives each name's mean over the values added since the previous ``result()`` and over processes
    (``reduce="sum"``: their total) and starts over. Every process must add the same names in the same order.
    """

    def __init__(self, readback: ReadBack) -> None:
        self.readback = readback
        self._values: dict[str, tuple[Reduce, list[Reading]]] = {}

    def __bool__(self) -> bool:
        return bool(self._values)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def add(self, name: str, value: torch.Tensor | float, reduce: Reduce = "mean") -> None:
        """Record one value of ``name`` (a one-element tensor stays on the device; a number is read back
        with the rest, so that the processes' values are combined)."""
        if reduce not in ("mean", "sum"):
            raise ValueError(f"reduce must be 'mean' or 'sum', got {reduce!r}")
        entry = self._values.get(name)
        if entry is None:
            entry = self._values[name] = (reduce, [])
        elif entry[0] != reduce:
            raise ValueError(f"metric {name!r} was added with reduce={entry[0]!r}, now with {reduce!r}")
        if not isinstance(value, torch.Tensor):  # filled on the device: no host-to-device copy to wait for
            value = torch.full((), float(value), dtype=torch.float64, device=self.readback.device)
        entry[1].append(self.readback.put(value))

    def result(self) -> dict[str, float]:
        """Each metric over the values added since the last call (reads back if any is still pending)."""
        if any(not v.ready for _, values in self._values.values() for v in values):
            self.readback.read()
        world = self.readback.world_size
        out: dict[str, float] = {}
        for name, (reduce, values) in self._values.items():
            total = math.fsum(v.total for v in values)
            out[name] = total / (len(values) * world) if reduce == "mean" else total
        self._values = {}
        return out
