"""The `huggingface` checkpoint engine: a `save_pretrained` directory of the model and tokenizer, for export.

The result loads with `AutoModelForCausalLM.from_pretrained(path)` and `AutoTokenizer.from_pretrained(path)`.
It holds no optimizer or RNG state: loading one back restores the model weights only. Under DeepSpeed ZeRO-3
the partitioned parameters are gathered for the export.

A model trained with an adapter (`model.peft`) exports the adapter (`PeftModel.from_pretrained(base, path)`
loads it), or with `merge: true` the base model with the adapter merged into its weights (a plain model for
`AutoModelForCausalLM.from_pretrained(path)`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from arctic_like.checkpoint.base import CheckpointEngine
from arctic_like.checkpoint.config import CheckpointEngineConfig
from arctic_like.checkpoint.errors import CheckpointError
from arctic_like.checkpoint.state import unwrap_model
from arctic_like.model.peft import ADAPTER_FILE, is_peft_model, load_adapter_state, merged_model
from arctic_like.pretrained import no_progress_bars

_LOAD_OPTIONS = ("is_local", "local_files_only")
"""Keys transformers 5 writes about how a tokenizer was loaded rather than what it is."""


def _adds(tokenizer: Any) -> tuple[bool, bool]:
    """(bos, eos): whether ``tokenizer`` puts its bos / eos token around a text by itself."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    adds_bos = bos is not None and len(full) > len(plain) and full[0] == bos
    adds_eos = eos is not None and len(full) > len(plain) and full[-1] == eos
    return adds_bos, adds_eos


def save_tokenizer(tokenizer: Any, directory: Path) -> None:
    """``tokenizer.save_pretrained(directory)`` in the standard form every transformers version loads.

    The chat template goes into ``tokenizer_config.json`` (older versions do not read a separate
    ``chat_template.jinja``). A generic fast tokenizer is written as ``PreTrainedTokenizerFast`` (the name
    transformers 4.x knows) with ``add_bos_token``/``add_eos_token`` stating what its ``tokenizer.json``
    post-processor does, so the reloaded wrapper reports what it does.
    """
    tokenizer.save_pretrained(str(directory), save_jinja_files=False)
    config_file = directory / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    for key in _LOAD_OPTIONS:
        config.pop(key, None)
    if config.get("tokenizer_class") in ("TokenizersBackend", "PreTrainedTokenizerFast"):
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        config["add_bos_token"], config["add_eos_token"] = _adds(tokenizer)
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", "utf-8")


class HuggingFaceCheckpointConfig(CheckpointEngineConfig):
    """`merge: true` exports a model trained with an adapter as one plain model (adapter merged in)."""

    merge: bool = False


def export_pretrained(
    model: torch.nn.Module, tokenizer: Any, directory: Path, *, merge: bool = False
) -> None:
    """Write `model` (and `tokenizer`, if any) with `save_pretrained` into `directory`, ready for generation:
    the exported config has `use_cache` on even when training turned it off for gradient checkpointing. A
    peft model exports its adapter, or with `merge` the model with the adapter merged in."""
    if merge and is_peft_model(model):
        model = merged_model(model)
    config = getattr(model, "config", None)
    use_cache = getattr(config, "use_cache", None)
    if use_cache is False:
        config.use_cache = True
    try:
        with no_progress_bars():
            model.save_pretrained(str(directory), safe_serialization=True)
    finally:
        if use_cache is False:
            config.use_cache = False
    if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
        save_tokenizer(tokenizer, directory)


def export_gathered(
    model: torch.nn.Module, tokenizer: Any, directory: Path, *, rank_zero: bool, merge: bool = False
) -> None:
    """`export_pretrained` on rank 0, called on every rank: under ZeRO-3 the partitioned parameters are
    gathered first (a collective)."""
    partitioned = [p for p in model.parameters() if hasattr(p, "ds_id")]
    if not partitioned:
        if rank_zero:
            export_pretrained(model, tokenizer, directory, merge=merge)
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(partitioned, modifier_rank=None):
        if rank_zero:
            export_pretrained(model, tokenizer, directory, merge=merge)


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
    config = HuggingFaceCheckpointConfig
    default_subdir = "huggingface"

    def __init__(self, trainer: Any, config: HuggingFaceCheckpointConfig) -> None:
        super().__init__(trainer, config)
        model = getattr(trainer, "model", None)
        if config.merge and model is not None and not is_peft_model(unwrap_model(trainer)):
            raise CheckpointError(
                f"checkpoint engine 'huggingface' (output_dir {self.output_dir}) has merge: true, but the "
                "model has no adapter to merge. Fix: remove merge, or add a model.peft section."
            )

    def _write(self, tmp: Path) -> None:
        model = unwrap_model(self.trainer)
        tokenizer = getattr(self.trainer, "tokenizer", None)
        export_gathered(model, tokenizer, tmp, rank_zero=self.is_rank_zero, merge=self.config.merge)

    def _read_weights(self, path: Path) -> None:
        model = unwrap_model(self.trainer)
        if not is_peft_model(model):
            load_pretrained_weights(model, path)
        elif (path / ADAPTER_FILE).is_file():
            try:
                load_adapter_state(model, path / ADAPTER_FILE)
            except (ValueError, OSError, RuntimeError) as error:
                raise CheckpointError(
                    f"checkpoint {path} cannot be loaded: {error}. "
                    "Fix: use the model.peft settings of the run that exported it."
                ) from None
        else:
            raise CheckpointError(
                f"checkpoint {path} is a full (or merged) model, but this run trains an adapter "
                "(model.peft). Fix: point model.name_or_path at it and train a new adapter, or load the "
                "adapter export (merge: false) of the run that wrote it."
            )

    def _read(self, path: Path, manifest: dict[str, Any]) -> None:
        self._read_weights(path)
