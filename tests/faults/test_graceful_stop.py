"""Graceful stop of a 2-process torchrun run: SIGTERM to the launcher (what a scheduler sends) reaches both
ranks, which agree on the step to stop after, write one checkpoint, run `post-train` and exit non-zero saying
where to resume from. (Single-process SIGINT/SIGTERM and the resume after them are in tests/test_cli.py.)"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.distributed.launch import (
    events,
    launched,
    run_env,
    tiny_recipe,
    torchrun_command,
    wait_for,
    write_recipe,
)

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def test_sigterm_to_torchrun_stops_both_ranks_after_the_same_step_with_a_checkpoint(tmp_path: Path) -> None:
    out, probe = tmp_path / "out", tmp_path / "probe"
    recipe = tiny_recipe(
        out, micro_batch_size=1, max_steps=400, checkpoint=[{"type": "torch"}], nonfinite_loss="skip"
    )
    path = write_recipe(tmp_path / "recipe.yaml", recipe)
    # Also: a NaN loss on rank 1 only (step 1) is skipped by both ranks, which stay in step.
    env = run_env(probe, PROBE_STEP_SLEEP_S="0.1", PROBE_NAN_STEP="1", PROBE_NAN_RANK="1")
    with launched(torchrun_command(path), env, tmp_path) as proc:
        wait_for(lambda: len(events(probe, "step", rank=1)) >= 2, timeout=150, proc=proc)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=90)
    assert proc.returncode != 0, output[-4000:]

    ends = [events(probe, "train-end", rank) for rank in (0, 1)]
    assert all(len(end) == 1 for end in ends), output[-4000:]  # post-train ran on both ranks
    step = ends[0][0]["step"]
    assert 2 <= step < 400 and ends[1][0]["step"] == step
    assert ends[0][0]["params"] == ends[1][0]["params"]
    for end in ends:
        assert (end[0]["nonfinite_losses"], end[0]["skipped_optimizer_steps"]) == (1, 1)
    for rank in (0, 1):
        assert max(e["step"] for e in events(probe, "step", rank)) == step  # no step after the agreed one
    checkpoint = out / "checkpoints" / f"checkpoint-{step}"
    assert (checkpoint / "manifest.json").is_file()
    assert f"training interrupted by SIGTERM at step {step}; checkpoint written to {checkpoint}" in output
    assert "Resume with: arctic-like train" in output
