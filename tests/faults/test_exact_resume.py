"""Exact resume: SIGKILL after optimizer step k, `auto_resume`, and the losses from there on are
bit-identical to an uninterrupted run's (torch engine and DeepSpeed, gradient accumulation 2)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.distributed.launch import (
    epochs,
    events,
    losses,
    run,
    run_env,
    single_command,
    tiny_recipe,
    write_recipe,
)

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

KILL_AT = 5
"""The run is killed right after optimizer step 5 (before that step's save); the last checkpoint is step 4."""

ENGINES = {
    "torch": {
        "engine": "torch",
        "checkpoint": [{"type": "torch", "save_every_n_steps": 2, "auto_resume": True}],
    },
    "deepspeed": {
        "engine": "deepspeed",
        "deepspeed": {"zero_optimization": {"stage": 1}},
        "checkpoint": [{"type": "deepspeed", "save_every_n_steps": 2, "auto_resume": True}],
    },
}


def _recipe(root: Path, engine: str) -> Path:
    # 60 problems pack into ~21 sequences: 5 optimizer steps per epoch at 2 x 2 micro-batches, so the resume
    # point (step 4) is mid-epoch (seen batches skipped) and the resumed run crosses into epoch 1 (new order).
    recipe = tiny_recipe(
        root / "out",
        micro_batch_size=2,
        gradient_accumulation_steps=2,
        max_steps=8,
        data={
            "sources": [{"type": "addition", "num_samples": 60, "eval_samples": 0}],
            "max_length": 32,
            "use_cache": False,
        },
        **ENGINES[engine],
    )
    return write_recipe(root / "recipe.yaml", recipe)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_killed_and_resumed_run_reproduces_the_uninterrupted_losses(tmp_path: Path, engine: str) -> None:
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    done = run(single_command(_recipe(whole, engine)), run_env(whole / "probe"), whole)
    assert done.returncode == 0, done.output[-4000:]
    expected = losses(whole / "probe")
    assert sorted(expected) == list(range(1, 9))
    epoch = epochs(whole / "probe")
    assert 0 < epoch[4] < 1 <= epoch[5] < epoch[8] < 2  # resumed mid-epoch, then across the epoch end

    recipe = _recipe(broken, engine)
    killed = run(
        single_command(recipe),
        run_env(broken / "probe", PROBE_KILL="1", PROBE_KILL_STEP=str(KILL_AT)),
        broken,
    )
    assert killed.returncode == -signal.SIGKILL, killed.output[-4000:]
    assert max(e["step"] for e in events(broken / "probe", "step")) == KILL_AT
    before = losses(broken / "probe")
    assert before == {step: expected[step] for step in range(1, KILL_AT)}

    (broken / "probe" / "losses-rank0.jsonl").unlink()
    resumed = run(single_command(recipe), run_env(broken / "probe"), broken)
    assert resumed.returncode == 0, resumed.output[-4000:]
    assert "checkpoint-4" in resumed.output
    init = events(broken / "probe", "init")[-1]
    assert init["global_step"] == 4
    after = losses(broken / "probe")
    assert sorted(after) == list(range(5, 9))
    assert after == {step: expected[step] for step in range(5, 9)}  # bit-exact: float equality
    hashes = {
        e["params"] for e in events(whole / "probe", "train-end") + events(broken / "probe", "train-end")
    }
    assert len(hashes) == 1
