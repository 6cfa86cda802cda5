"""Exact resume: SIGKILL right after optimizer step k, `auto_resume`, and the losses from there on are
bit-identical to an uninterrupted run's (torch engine and DeepSpeed, gradient accumulation 2)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.distributed.launch import epochs, events, finish, launched, losses, run, run_env, single_command
from tests.faults.conftest import ENGINES, STEPS, fault_recipe

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

KILL_AT = 5
"""Killed right after optimizer step 5 (before that step's save): the newest checkpoint is step 4."""


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_killed_and_resumed_run_reproduces_the_uninterrupted_losses(
    tmp_path: Path, engine: str, uninterrupted: Callable[[str], Path]
) -> None:
    recipe = fault_recipe(tmp_path, engine)
    probe = tmp_path / "probe"
    kill_env = run_env(probe, PROBE_KILL="1", PROBE_KILL_STEP=str(KILL_AT))
    with launched(single_command(recipe), kill_env, tmp_path) as proc:  # two cores: run beside the reference
        whole = uninterrupted(engine)
        killed = finish(proc)
    expected = losses(whole)
    assert sorted(expected) == list(range(1, STEPS + 1))
    epoch = epochs(whole)
    assert 0 < epoch[4] < 1 <= epoch[5] < epoch[STEPS] < 2  # resumed mid-epoch, then across the epoch end

    assert killed.returncode == -signal.SIGKILL, killed.output[-4000:]
    assert max(e["step"] for e in events(probe, "step")) == KILL_AT
    assert losses(probe) == {step: expected[step] for step in range(1, KILL_AT)}

    (probe / "losses-rank0.jsonl").unlink()
    resumed = run(single_command(recipe), run_env(probe), tmp_path)
    assert resumed.returncode == 0, resumed.output[-4000:]
    assert "checkpoint-4" in resumed.output
    assert "using cached processed data" in resumed.output  # the resumed run reads the data cache
    assert events(probe, "init")[-1]["global_step"] == 4
    after = losses(probe)
    assert after == {step: expected[step] for step in range(5, STEPS + 1)}  # bit-exact: float equality
    assert events(probe, "train-end")[-1]["params"] == events(whole, "train-end")[-1]["params"]
