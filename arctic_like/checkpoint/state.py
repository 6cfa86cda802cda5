"""Collecting and restoring the non-tensor parts of a run: RNG states, data position, distributed helpers."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from arctic_like.checkpoint.errors import CorruptCheckpointError

logger = logging.getLogger("arctic_like.checkpoint")


def rng_state() -> dict[str, Any]:
    """The RNG states of python, numpy, torch CPU and (if present) every CUDA device of this process."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": _to_lists(random.getstate()),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "state": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])},
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured (CUDA states only when CUDA is available)."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": npst["bit_generator"],
            "state": {"key": np.asarray(npst["state"]["key"], dtype=np.uint32), "pos": npst["state"]["pos"]},
            "has_gauss": npst["has_gauss"],
            "gauss": npst["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            logger.warning(
                "checkpoint has %d CUDA RNG states for %d devices; not restored",
                len(cuda_states),
                torch.cuda.device_count(),
            )


def _to_lists(x: Any) -> Any:
    return [_to_lists(v) for v in x] if isinstance(x, tuple | list) else x


def is_distributed() -> bool:
    """Whether a torch.distributed process group is up."""
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank (identity in a single process)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def unwrap_model(trainer: Any) -> torch.nn.Module:
    """The bare model (no DDP/DeepSpeed wrapper) of a trainer."""
    engine = getattr(trainer, "engine", None)
    model = engine.unwrap() if engine is not None and hasattr(engine, "unwrap") else trainer.model
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return model


def load_torch_file(checkpoint: Path, file: Path) -> Any:
    """`torch.load` (tensors and plain containers only) of a checkpoint file; unreadable: a
    `CorruptCheckpointError`."""
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CorruptCheckpointError(
            f"checkpoint {checkpoint} is corrupted: {file.name} cannot be read ({type(e).__name__}: {e}). "
            "Fix: resume from an earlier complete checkpoint, or delete this directory."
        ) from None
