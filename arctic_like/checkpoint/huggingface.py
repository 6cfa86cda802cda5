"""The `huggingface` checkpoint engine: a `save_pretrained` directory of the model and tokenizer, for export.

The result loads with `AutoModelForCausalLM.from_pretrained(path)` and `AutoTokenizer.from_pretrained(path)`.
It holds no optimizer or RNG state: loading one back restores the model weights only. Under DeepSpeed ZeRO-3
the partitioned parameters are gathered for the export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from arctic_like.checkpoint.base import CheckpointEngine
from arctic_like.checkpoint.errors import CheckpointError
from arctic_like.checkpoint.state import unwrap_model


def export_pretrained(model: torch.nn.Module, tokenizer: Any, directory: Path) -> None:
    """Write `model` (and `tokenizer`, if any) with `save_pretrained` into `directory`."""
    model.save_pretrained(str(directory), safe_serialization=True)
    if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
        tokenizer.save_pretrained(str(directory))


def load_pretrained_weights(model: torch.nn.Module, directory: Path) -> None:
    """Load the safetensors weights of a `save_pretrained` directory into `model` (tied weights re-tied)."""
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise CheckpointError(
            f"checkpoint {directory} is corrupted: it has no *.safetensors weights. "
            "Fix: export it again, or point to another checkpoint."
        )
    state: dict[str, torch.Tensor] = {}
    try:
        for f in files:
            state.update(load_file(str(f)))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(
            f"checkpoint {directory} is corrupted: its weights cannot be read ({e}). "
            "Fix: export it again, or point to another checkpoint."
        ) from None
    _missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise CheckpointError(
            f"checkpoint {directory} is from another model: unexpected weights {unexpected[:3]}. "
            "Fix: use the model settings of the run that wrote it."
        )
    if hasattr(model, "tie_weights"):
        model.tie_weights()


class HuggingFaceCheckpointEngine(CheckpointEngine):
    """`save_pretrained` of the unwrapped model and the tokenizer under `checkpoint-<step>/`."""

    name = "huggingface"
    default_subdir = "huggingface"

    def _write(self, tmp: Path) -> None:
        model = unwrap_model(self.trainer)
        tokenizer = getattr(self.trainer, "tokenizer", None)
        partitioned = [p for p in model.parameters() if hasattr(p, "ds_id")]
        if not partitioned:
            if self.is_rank_zero:
                export_pretrained(model, tokenizer, tmp)
            return
        import deepspeed  # ZeRO-3: gather the full parameters on every rank (a collective), save on rank 0

        with deepspeed.zero.GatheredParameters(partitioned, modifier_rank=None):
            if self.is_rank_zero:
                export_pretrained(model, tokenizer, tmp)

    def _read_weights(self, path: Path) -> None:
        load_pretrained_weights(unwrap_model(self.trainer), path)

    def _read(self, path: Path, manifest: dict[str, Any]) -> None:
        self._read_weights(path)
