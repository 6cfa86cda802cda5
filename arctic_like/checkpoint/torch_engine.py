"""The `torch` checkpoint engine: everything needed to continue a run exactly where it stopped.

A model trained with an adapter (`model.peft`) saves only the adapter (`arctic_like.checkpoint.adapter`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from arctic_like.checkpoint.adapter import read_adapter, write_adapter
from arctic_like.checkpoint.base import CheckpointEngine
from arctic_like.checkpoint.config import CheckpointEngineConfig
from arctic_like.checkpoint.errors import CheckpointError, CorruptCheckpointError
from arctic_like.checkpoint.state import load_torch_file, rng_state, set_rng_state, unwrap_model
from arctic_like.model.peft import is_peft_model

logger = logging.getLogger("arctic_like.checkpoint")

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
TRAINER_STATE_FILE = "trainer_state.json"
DATA_STATE_FILE = "data_state.json"
CALLBACK_STATES_FILE = "callback_states.pt"
RECIPE_FILE = "recipe.yaml"
TOKENIZER_DIR = "tokenizer"


def rng_file(rank: int) -> str:
    """Name of the per-rank RNG state file."""
    return f"rng_state_rank{rank}.pt"


def data_position(trainer: Any) -> dict[str, int]:
    """Where the trainer is in its data: the epoch and the micro-batches already consumed in it."""
    return {
        "epoch": int(getattr(trainer, "epoch_idx", 0) or 0),
        "batches_in_epoch": int(getattr(trainer, "batches_in_epoch", 0) or 0),
    }


def set_data_position(trainer: Any, position: dict[str, int]) -> None:
    """Tell the trainer where to continue: it skips `batches_in_epoch` batches of epoch `epoch`."""
    trainer.epoch_idx = int(position["epoch"])
    trainer.batches_in_epoch = int(position["batches_in_epoch"])


def write_run_state(trainer: Any, tmp: Path, rank: int, *, rank_zero: bool) -> None:
    """The parts of a run every engine saves besides model and optimizer: RNG (per rank), trainer state, data
    position, callback states, tokenizer and recipe."""
    torch.save(rng_state(), tmp / rng_file(rank))
    if not rank_zero:
        return
    trainer.state.save_to_json(tmp / TRAINER_STATE_FILE)
    (tmp / DATA_STATE_FILE).write_text(json.dumps(data_position(trainer)), encoding="utf-8")
    if hasattr(trainer, "callback_states"):
        torch.save(trainer.callback_states(), tmp / CALLBACK_STATES_FILE)
    tokenizer = getattr(trainer, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
        tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
    config = getattr(trainer, "config", None)
    if config is not None and hasattr(config, "model_dump"):
        recipe = config.model_dump(mode="json")
        (tmp / RECIPE_FILE).write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")


def read_run_state(trainer: Any, path: Path, rank: int) -> None:
    """Restore what `write_run_state` saved into `trainer`."""
    rng_path = path / rng_file(rank)
    if not rng_path.is_file():
        logger.warning(
            "%s has no RNG state for rank %d (saved with another world size); using rank 0's", path, rank
        )
        rng_path = path / rng_file(0)
    set_rng_state(load_torch_file(path, rng_path))
    state = trainer.state
    restored = type(state).load_from_json(path / TRAINER_STATE_FILE)
    state.__dict__.update(restored.__dict__)
    set_data_position(trainer, json.loads((path / DATA_STATE_FILE).read_text(encoding="utf-8")))
    cb_path = path / CALLBACK_STATES_FILE
    if cb_path.is_file() and hasattr(trainer, "load_callback_states"):
        trainer.load_callback_states(load_torch_file(path, cb_path))


class TorchCheckpointEngine(CheckpointEngine):
    """Model weights (safetensors), optimizer, scheduler, RNG states, data position, trainer state, callback
    states, tokenizer and recipe — enough for a resumed run to continue bit-exactly."""

    name = "torch"

    def __init__(self, trainer: Any, config: CheckpointEngineConfig) -> None:
        super().__init__(trainer, config)
        if hasattr(getattr(getattr(trainer, "engine", None), "wrapped", None), "save_checkpoint"):
            raise CheckpointError(
                f"checkpoint engine 'torch' (output_dir {self.output_dir}) cannot save a DeepSpeed run: "
                "DeepSpeed keeps its own (possibly partitioned) optimizer and master weights. "
                "Fix: use `type: deepspeed` for this checkpoint entry with `engine: deepspeed`."
            )

    def _write(self, tmp: Path) -> None:
        trainer = self.trainer
        if self.is_rank_zero:
            model = unwrap_model(trainer)
            if is_peft_model(model):
                write_adapter(model, tmp)
            else:
                save_model(model, str(tmp / MODEL_FILE))
            if getattr(trainer, "optimizer", None) is not None:
                torch.save(trainer.optimizer.state_dict(), tmp / OPTIMIZER_FILE)
            if getattr(trainer, "scheduler", None) is not None:
                torch.save(trainer.scheduler.state_dict(), tmp / SCHEDULER_FILE)
        write_run_state(trainer, tmp, self.global_rank, rank_zero=self.is_rank_zero)

    def _read_weights(self, path: Path) -> None:
        model = unwrap_model(self.trainer)
        device = next(model.parameters()).device
        try:
            if is_peft_model(model):
                read_adapter(model, path)
            else:
                load_model(model, str(path / MODEL_FILE), strict=True, device=str(device))
        except (SafetensorError, OSError, RuntimeError) as e:
            raise CorruptCheckpointError(
                f"checkpoint {path} is corrupted: {MODEL_FILE} cannot be loaded ({e}). "
                "Fix: resume from an earlier complete checkpoint, or delete this directory."
            ) from None

    def _read(self, path: Path, manifest: dict[str, Any]) -> None:
        trainer = self.trainer
        self._read_weights(path)
        if (path / OPTIMIZER_FILE).is_file() and getattr(trainer, "optimizer", None) is not None:
            trainer.optimizer.load_state_dict(load_torch_file(path, path / OPTIMIZER_FILE))
        if (path / SCHEDULER_FILE).is_file() and getattr(trainer, "scheduler", None) is not None:
            trainer.scheduler.load_state_dict(load_torch_file(path, path / SCHEDULER_FILE))
        read_run_state(trainer, path, self.global_rank)
