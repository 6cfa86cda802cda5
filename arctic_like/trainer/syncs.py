"""Counting the host syncs a piece of code makes: every read of a device value back to the host.

On a GPU, ``t.item()``, ``float(t)``, ``int(t)``, ``bool(t)`` (an ``if`` on a tensor), ``t.tolist()``,
``t.cpu()``, ``t.numpy()`` and ``np.asarray(t)`` wait for the device to finish everything queued before.
``HostSyncCounter`` patches those methods of ``torch.Tensor`` while it is active and records each call with
the line of code that made it, so that a loop's syncs can be counted on any machine, CPU included (where the
calls cost nothing but are the same calls). Calls that read tensors which stay on the host in a GPU run too
are left out: the optimizers' step counters (``torch/optim``) and data loading (``torch/utils/data``,
``arctic_like/data``). On CUDA it also switches on ``torch.cuda.set_sync_debug_mode("warn")`` and counts
the synchronising CUDA calls it reports, which include those made inside C++ code (``cuda_syncs``)::

    with HostSyncCounter() as syncs:
        trainer.train()
    print(len(syncs.calls), syncs.by_place())
"""

from __future__ import annotations

import collections
import os
import sys
import warnings
from types import FrameType
from typing import Any

import torch

__all__ = ["HOST_SIDE", "SYNCING_METHODS", "HostSyncCounter"]

SYNCING_METHODS = (
    "item",
    "tolist",
    "cpu",
    "numpy",
    "__bool__",
    "__float__",
    "__int__",
    "__index__",
    "__array__",
)
"""The ``torch.Tensor`` methods that copy a value to the host."""

HOST_SIDE = (
    f"torch{os.sep}optim{os.sep}",
    f"torch{os.sep}utils{os.sep}data{os.sep}",
    f"arctic_like{os.sep}data{os.sep}",
)
"""Code whose tensor reads are of host tensors in a GPU run as well (not counted)."""

_TORCH_INTERNALS = (f"torch{os.sep}_tensor.py", f"torch{os.sep}_tensor_str.py")


def _caller(frame: FrameType | None) -> FrameType | None:
    """The first frame outside torch's own Tensor methods (``float(t)`` runs through ``torch/_tensor.py``)."""
    while frame is not None and frame.f_code.co_filename.endswith(_TORCH_INTERNALS):
        frame = frame.f_back
    return frame


def _place(frame: FrameType) -> str:
    """``dir/dir/file.py:line`` of ``frame``."""
    parts = frame.f_code.co_filename.split(os.sep)
    return f"{os.sep.join(parts[-3:])}:{frame.f_lineno}"


class HostSyncCounter:
    """A context manager recording every call of ``SYNCING_METHODS`` (outside ``HOST_SIDE`` code) as
    ``(method, place)`` in ``calls``; not reentrant, and it changes ``torch.Tensor`` for every thread while
    active."""

    def __init__(self, host_side: tuple[str, ...] = HOST_SIDE) -> None:
        self.host_side = host_side
        self.calls: list[tuple[str, str]] = []
        self.cuda_syncs = 0
        self._saved: dict[str, Any] = {}
        self._active = False
        self._warnings: Any = None
        self._sync_mode: int | None = None

    def __enter__(self) -> HostSyncCounter:
        for name in SYNCING_METHODS:
            self._saved[name] = torch.Tensor.__dict__.get(name)
            setattr(torch.Tensor, name, self._counting(name, getattr(torch.Tensor, name)))
        if torch.cuda.is_available():
            self._sync_mode = torch.cuda.get_sync_debug_mode()
            self._warnings = warnings.catch_warnings(record=True)
            self._recorded = self._warnings.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, *exc: object) -> None:
        for name, saved in self._saved.items():
            if saved is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, saved)
        self._saved = {}
        if self._warnings is not None:
            torch.cuda.set_sync_debug_mode(self._sync_mode or 0)
            self.cuda_syncs = sum("synchroniz" in str(w.message) for w in self._recorded)
            self._warnings.__exit__(*exc)
            self._warnings = None

    def _counting(self, name: str, method: Any) -> Any:
        counter = self

        def counted(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if counter._active:  # a read made by the one being recorded (``__array__`` calls ``numpy``)
                return method(tensor, *args, **kwargs)
            counter._active = True
            try:
                frame = _caller(sys._getframe(1))
                if frame is None:
                    counter.calls.append((name, "?"))
                elif not any(part in frame.f_code.co_filename for part in counter.host_side):
                    counter.calls.append((name, _place(frame)))
                return method(tensor, *args, **kwargs)
            finally:
                counter._active = False

        counted.__name__ = name
        return counted

    def by_place(self) -> dict[str, int]:
        """How many reads each line of code made, most first."""
        return dict(collections.Counter(f"{name} at {place}" for name, place in self.calls).most_common())
