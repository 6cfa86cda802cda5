"""Tiny recipes and a recording trainer shared by the trainer tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.tiny import TINY_MODEL

EVENTS = (
    "init",
    "train",
    "epoch",
    "step",
    "loss",
    "backward",
    "optimizer-step",
    "prediction-step",
    "evaluate",
    "log",
    "checkpoint",
)


def tiny_recipe(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """A recipe that trains a 2-layer, 32-wide Llama on 16 one-digit additions, 4 micro-batches per epoch."""
    recipe: dict[str, Any] = {
        "type": "causal",
        "tokenizer": {"type": "char"},
        "data": {
            "sources": [{"type": "addition", "digits": 1, "num_samples": 16, "eval_samples": 8}],
            "max_length": 16,
            "packing": False,
            "cache_dir": str(tmp_path / "cache"),
            "eval_batch_size": 4,
        },
        "model": {"config": dict(TINY_MODEL)},
        "optimizer": {"lr": 1e-3},
        "micro_batch_size": 4,
        "epochs": 1,
        "logging_steps": 1,
        "max_grad_norm": 1.0,
        "output_dir": str(tmp_path / "out"),
        "device": "cpu",
        "progress": False,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key] = {**recipe[key], **value}
        else:
            recipe[key] = value
    return recipe


def build(tmp_path: Path, trainer_type: str | None = None, **overrides: Any) -> Any:
    """Load ``tiny_recipe`` (with overrides) and build its trainer."""
    from arctic_like.config import build_trainer, load_recipe

    recipe = tiny_recipe(tmp_path, **overrides)
    if trainer_type is not None:
        recipe["type"] = trainer_type
    return build_trainer(load_recipe(recipe))


def losses(trainer: Any) -> list[float]:
    """The per-step training losses recorded in ``log_history`` (logging_steps=1)."""
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
