"""Uninterrupted reference runs shared by the fault tests (one per engine, run once per session)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.distributed.conftest import deepspeed_ops
from tests.distributed.launch import run, run_env, single_command, tiny_recipe, write_recipe

__all__ = ["deepspeed_ops"]  # a fixture, shared with tests/distributed

ENGINES: dict[str, dict[str, Any]] = {
    "torch": {
        "engine": "torch",
        "checkpoint": [{"type": "torch", "save_every_n_steps": 2, "auto_resume": True}],
    },
    "deepspeed": {
        "engine": "deepspeed",
        "deepspeed": {"zero_optimization": {"stage": 1}},
        "checkpoint": [{"type": "deepspeed", "save_every_n_steps": 2, "auto_resume": True}],
    },
    "deepspeed-zero3-offload": {
        "engine": "deepspeed",
        "deepspeed": {
            "zero_optimization": {
                "stage": 3,
                "offload_optimizer": {"device": "cpu"},
                "offload_param": {"device": "cpu"},
            }
        },
        "checkpoint": [{"type": "deepspeed", "save_every_n_steps": 2, "auto_resume": True}],
    },
}
"""Per engine: checkpoints every 2 optimizer steps, resumed automatically from the newest complete one. The
ZeRO-3 case offloads the optimizer state (DeepSpeedCPUAdam) and the parameters to the CPU."""

STEPS = 8


def fault_recipe(root: Path, engine: str) -> Path:
    """8 optimizer steps of 2 x 2 micro-batches (gradient accumulation 2) over a small data set.

    60 problems pack into ~21 sequences: 5 optimizer steps per epoch, so a resume from step 2 or 4 starts
    mid-epoch (the seen batches are skipped) and the resumed run crosses into epoch 1 (a new order)."""
    recipe = tiny_recipe(
        root / "out",
        micro_batch_size=2,
        gradient_accumulation_steps=2,
        max_steps=STEPS,
        data={
            "sources": [{"type": "addition", "num_samples": 60, "eval_samples": 0}],
            "max_length": 32,
        },
        **ENGINES[engine],
    )
    return write_recipe(root / "recipe.yaml", recipe)


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, deepspeed_ops: None) -> Callable[[str], Path]:
    """``uninterrupted(engine)``: the probe directory of a finished uninterrupted run (cached per engine)."""
    done: dict[str, Path] = {}

    def get(engine: str) -> Path:
        if engine not in done:
            root = tmp_path_factory.mktemp(f"whole-{engine}")
            result = run(single_command(fault_recipe(root, engine)), run_env(root / "probe"), root)
            assert result.returncode == 0, result.output[-4000:]
            done[engine] = root / "probe"
        return done[engine]

    return get
