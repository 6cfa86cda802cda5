"""The `deepspeed` checkpoint engine: DeepSpeed's own `save_checkpoint`/`load_checkpoint`, plus our run state.

DeepSpeed writes the module, its (possibly ZeRO-partitioned) optimizer and the scheduler under the `state`
tag; trainer state, data position and callback states travel as DeepSpeed client state; RNG states are saved
per rank; tokenizer and recipe as for the `torch` engine. With `export_hf: true` every checkpoint also holds
`hf/`, a plain `save_pretrained` directory with fp32 weights (gathered with `zero_to_fp32` for ZeRO 2/3).
A model trained with an adapter (`model.peft`) leaves its frozen base weights out (the model factory rebuilds
them) and exports the adapter to `hf/`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import yaml

from arctic_like.checkpoint.base import CheckpointEngine
from arctic_like.checkpoint.config import CheckpointEngineConfig
from arctic_like.checkpoint.errors import CheckpointError
from arctic_like.checkpoint.huggingface import export_gathered, export_pretrained, save_tokenizer
from arctic_like.checkpoint.state import barrier, load_torch_file, rng_state, set_rng_state
from arctic_like.checkpoint.torch_engine import (
    RECIPE_FILE,
    TOKENIZER_DIR,
    data_position,
    rng_file,
    set_data_position,
)
from arctic_like.model.peft import is_peft_model

logger = logging.getLogger("arctic_like.checkpoint")

TAG = "state"
HF_DIR = "hf"


class DeepSpeedCheckpointConfig(CheckpointEngineConfig):
    """`deepspeed` engine settings: `export_hf` adds a `save_pretrained` copy (`hf/`) to every checkpoint."""

    export_hf: bool = False


def export_deepspeed_checkpoint(
    checkpoint: Path, model: torch.nn.Module, tokenizer: Any, directory: Path, *, zero_stage: int
) -> None:
    """Write a plain HF model directory from a DeepSpeed checkpoint (`zero_to_fp32` for ZeRO 2/3, the live
    module's weights otherwise) using `model`'s class and config."""
    if zero_stage >= 2:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        state_dict = get_fp32_state_dict_from_zero_checkpoint(str(checkpoint), tag=TAG)
        model.save_pretrained(str(directory), state_dict=state_dict, safe_serialization=True)
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            save_tokenizer(tokenizer, directory)
    else:
        export_pretrained(model, tokenizer, directory)


class DeepSpeedCheckpointEngine(CheckpointEngine):
    """Checkpoints through the DeepSpeed engine (`engine: deepspeed` in the recipe)."""

    name = "deepspeed"
    config = DeepSpeedCheckpointConfig

    def __init__(self, trainer: Any, config: DeepSpeedCheckpointConfig) -> None:
        super().__init__(trainer, config)
        _ = self.ds_engine  # fail at build time, not at the first save, when DeepSpeed is not in use

    @property
    def ds_engine(self) -> Any:
        """The `deepspeed.DeepSpeedEngine` the trainer's engine wraps."""
        wrapped = getattr(getattr(self.trainer, "engine", None), "wrapped", None)
        if wrapped is None or not hasattr(wrapped, "save_checkpoint"):
            raise CheckpointError(
                f"checkpoint engine 'deepspeed' (output_dir {self.output_dir}) needs the DeepSpeed training "
                "engine, but this run does not use it. Fix: set `engine: deepspeed` in the recipe, or use "
                "`type: torch` for the checkpoint."
            )
        return wrapped

    def _write(self, tmp: Path) -> None:
        trainer = self.trainer
        engine = self.ds_engine
        client_state = {
            "trainer_state": trainer.state.to_dict() if hasattr(trainer.state, "to_dict") else None,
            "data_position": data_position(trainer),
            "callback_states": trainer.callback_states() if hasattr(trainer, "callback_states") else None,
        }
        engine.save_checkpoint(
            str(tmp),
            tag=TAG,
            client_state=client_state,
            save_latest=False,
            exclude_frozen_parameters=is_peft_model(engine.module),
        )
        torch.save(rng_state(), tmp / rng_file(self.global_rank))
        if self.is_rank_zero:
            tokenizer = getattr(trainer, "tokenizer", None)
            if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
                tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
            if hasattr(trainer.config, "model_dump"):
                recipe = trainer.config.model_dump(mode="json")
                (tmp / RECIPE_FILE).write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
        if self.config.export_hf:
            barrier()
            if is_peft_model(engine.module):  # the adapter, from the live module
                tokenizer = getattr(trainer, "tokenizer", None)
                export_gathered(engine.module, tokenizer, tmp / HF_DIR, rank_zero=self.is_rank_zero)
            elif self.is_rank_zero:
                export_deepspeed_checkpoint(
                    tmp,
                    engine.module,
                    getattr(trainer, "tokenizer", None),
                    tmp / HF_DIR,
                    zero_stage=engine.zero_optimization_stage(),
                )

    def _read_weights(self, path: Path) -> None:
        engine = self.ds_engine
        strict = not is_peft_model(engine.module)
        load_path, _ = engine.load_checkpoint(
            str(path), tag=TAG, load_module_only=True, load_module_strict=strict
        )
        if load_path is None:
            raise CheckpointError(
                f"checkpoint {path} has no DeepSpeed state under tag {TAG!r}. "
                "Fix: resume from an earlier complete checkpoint, or delete this directory."
            )

    def _read(self, path: Path, manifest: dict[str, Any]) -> None:
        trainer = self.trainer
        try:
            load_path, client_state = self.ds_engine.load_checkpoint(
                str(path), tag=TAG, load_module_strict=not is_peft_model(self.ds_engine.module)
            )
        except (RuntimeError, OSError, KeyError, ValueError) as e:
            raise CheckpointError(
                f"checkpoint {path} cannot be loaded by DeepSpeed ({type(e).__name__}: {e}). "
                "Fix: resume from an earlier complete checkpoint, or use the world size and ZeRO stage "
                "of the run that wrote it."
            ) from None
        if load_path is None:
            raise CheckpointError(
                f"checkpoint {path} has no DeepSpeed state under tag {TAG!r}. "
                "Fix: resume from an earlier complete checkpoint, or delete this directory."
            )
        rng_path = path / rng_file(self.global_rank)
        if not rng_path.is_file():
            logger.warning("%s has no RNG state for rank %d; using rank 0's", path, self.global_rank)
            rng_path = path / rng_file(0)
        set_rng_state(load_torch_file(path, rng_path))
        if client_state.get("trainer_state") is not None:
            restored = type(trainer.state).from_dict(client_state["trainer_state"])
            trainer.state.__dict__.update(restored.__dict__)
        set_data_position(trainer, client_state["data_position"])
        if client_state.get("callback_states") is not None and hasattr(trainer, "load_callback_states"):
            trainer.load_callback_states(client_state["callback_states"])
