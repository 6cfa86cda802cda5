"""Config of the built-in checkpoint engines (one entry of a recipe's `checkpoint:` list)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from arctic_like.config.base import HumanInt
from arctic_like.config.parts import CheckpointConfig


class CheckpointEngineConfig(CheckpointConfig):
    """When and where an engine saves, and what it loads at start.

    `output_dir` defaults to `<trainer output_dir>/checkpoints` (`.../huggingface` for the export engine).
    `auto_resume` loads the newest complete checkpoint found there; `resume_from` names one explicitly.
    `save_end_of_training` (ArcticTraining's extra save when training ends) defaults to on, except when the
    recipe saves HF-style (`save_steps`/`save_strategy`): then it is off, as in HF's Trainer.
    """

    save_every_n_steps: HumanInt | None = Field(default=None, ge=1)
    save_every_n_epochs: HumanInt | None = Field(default=None, ge=1)
    save_end_of_training: bool | None = None
    resume_from: Path | None = None
