"""The tiny recipe the integration and callbacks tests train with (real arctic_like trainer, CPU, seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.tiny import TINY_MODEL


def tiny_recipe(tmp_path: Path, *, lr: float = 1e-3, **overrides: Any) -> dict[str, Any]:
    """16 one-digit additions in micro-batches of 2 (8 per epoch), 8 held out in eval batches of 2.

    ``save_steps`` adds a torch checkpoint engine unless ``checkpoint`` is given.
    """
    recipe: dict[str, Any] = {
        "type": "causal",
        "tokenizer": {"type": "char"},
        "data": {
            "sources": [{"type": "addition", "digits": 1, "num_samples": 16, "eval_samples": 8}],
            "max_length": 16,
            "packing": False,
            "cache_dir": str(tmp_path / "cache"),
            "eval_batch_size": 2,
        },
        "model": {"config": dict(TINY_MODEL)},
        "optimizer": {"lr": lr},
        "micro_batch_size": 2,
        "epochs": 1,
        "logging_steps": 2,
        "output_dir": str(tmp_path / "out"),
        "device": "cpu",
        "progress": False,
    }
    if overrides.get("save_steps") and "checkpoint" not in overrides:
        recipe["checkpoint"] = [{"type": "torch"}]
    recipe.update(overrides)
    return recipe


def build(tmp_path: Path, **overrides: Any) -> Any:
    """Build the trainer for ``tiny_recipe(tmp_path, **overrides)``."""
    from arctic_like.config import build_trainer, load_recipe

    return build_trainer(load_recipe(tiny_recipe(tmp_path, **overrides)))
