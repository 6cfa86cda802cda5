"""Checkpointing a model trained with an adapter (``model.peft``): only the adapter is saved.

The base weights are frozen and rebuilt by the model factory at resume, so a checkpoint holds the adapter
(``adapter/``, the ``peft`` format ``PeftModel.from_pretrained`` reads) and a fingerprint of the base weights
it was trained on; loading refuses a different base instead of silently training a mismatched pair. (A
checkpoint with or without an adapter loaded into a model without or with one is refused earlier, by the
manifest's parameter shapes.)
"""

from __future__ import annotations

import weakref
from pathlib import Path

import torch

from arctic_like.checkpoint.errors import CheckpointError
from arctic_like.model.peft import ADAPTER_FILE, base_fingerprint, load_adapter_state, save_adapter

__all__ = ["ADAPTER_DIR", "BASE_FINGERPRINT_FILE", "read_adapter", "write_adapter"]

ADAPTER_DIR = "adapter"
BASE_FINGERPRINT_FILE = "base_model.fingerprint"

_fingerprints: weakref.WeakKeyDictionary[torch.nn.Module, str] = weakref.WeakKeyDictionary()


def _fingerprint(model: torch.nn.Module) -> str:
    """The base fingerprint, computed once per model (its base weights are frozen)."""
    if model not in _fingerprints:
        _fingerprints[model] = base_fingerprint(model)
    return _fingerprints[model]


def write_adapter(model: torch.nn.Module, checkpoint: Path) -> None:
    """Save the adapter of a peft model under ``checkpoint/adapter`` with the base fingerprint."""
    save_adapter(model, checkpoint / ADAPTER_DIR)
    (checkpoint / BASE_FINGERPRINT_FILE).write_text(_fingerprint(model) + "\n", encoding="utf-8")


def read_adapter(model: torch.nn.Module, checkpoint: Path) -> None:
    """Load the adapter saved by :func:`write_adapter` into ``model`` (a peft model)."""
    file = checkpoint / ADAPTER_DIR / ADAPTER_FILE
    saved = (checkpoint / BASE_FINGERPRINT_FILE).read_text(encoding="utf-8").strip()
    if saved != _fingerprint(model):
        raise CheckpointError(
            f"checkpoint {checkpoint} holds an adapter trained on other base weights than this run's model. "
            "Fix: load the same base model (model.name_or_path, or the same model.config and seed) as the "
            "run that wrote it."
        )
    try:
        load_adapter_state(model, file)
    except (ValueError, OSError, RuntimeError) as error:
        raise CheckpointError(
            f"checkpoint {checkpoint} cannot be loaded: {error}. Fix: use the model.peft settings of the run "
            "that wrote it."
        ) from None
