"""Atomic checkpoints under DeepSpeed: a SIGKILL while `checkpoint-4` is being written (DeepSpeed's files
are in the temporary directory, the manifest is not) leaves `checkpoint-2` complete and selected by
`auto_resume`; the partial directory is never loaded and is removed; the resumed run still matches an
uninterrupted one. (The torch engine's version of this is in tests/test_cli.py.)"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.distributed.launch import events, finish, launched, losses, run, run_env, single_command
from tests.faults.conftest import STEPS, fault_recipe

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def test_kill_while_saving_keeps_the_previous_checkpoint(
    tmp_path: Path, uninterrupted: Callable[[str], Path]
) -> None:
    recipe = fault_recipe(tmp_path, "deepspeed")
    probe = tmp_path / "probe"
    checkpoints = tmp_path / "out" / "checkpoints"
    kill_env = run_env(probe, PROBE_KILL="1", PROBE_KILL_IN_SAVE_STEP="4")
    with launched(single_command(recipe), kill_env, tmp_path) as proc:  # two cores: run beside the reference
        expected = losses(uninterrupted("deepspeed"))
        killed = finish(proc)
    assert killed.returncode == -signal.SIGKILL, killed.output[-4000:]

    (kill,) = events(probe, "kill-in-save")
    partial = Path(kill["tmp"])
    assert partial.parent == checkpoints and partial.name.startswith(".tmp-checkpoint-4-")
    assert (partial / "state" / "mp_rank_00_model_states.pt").is_file()
    assert not (partial / "manifest.json").exists()
    assert sorted(p.name for p in checkpoints.glob("checkpoint-*")) == ["checkpoint-2"]
    assert (checkpoints / "checkpoint-2" / "manifest.json").is_file()
    assert (checkpoints / "latest").read_text().strip() == "checkpoint-2"
    # A directory with a checkpoint's name but no manifest (e.g. half copied by hand) is not a checkpoint.
    impostor = checkpoints / "checkpoint-7"
    impostor.mkdir()
    (impostor / "state").mkdir()

    resumed = run(single_command(recipe), run_env(probe), tmp_path)
    assert resumed.returncode == 0, resumed.output[-4000:]
    assert "checkpoint-7" in resumed.output and "no complete" in resumed.output  # warned and skipped
    assert events(probe, "init")[-1]["global_step"] == 2
    assert not partial.exists()
    assert not list(checkpoints.glob(".tmp-*"))
    for step in (4, 6, 8):
        assert (checkpoints / f"checkpoint-{step}" / "manifest.json").is_file()
    assert {s: v for s, v in losses(probe).items() if s > 2} == {s: expected[s] for s in range(3, STEPS + 1)}
