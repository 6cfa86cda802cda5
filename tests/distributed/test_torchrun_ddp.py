"""`torchrun --nproc-per-node 2 -m arctic_like.cli train RECIPE` with the torch engine (DDP over gloo)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.distributed.checks import (
    assert_matches_single_process,
    assert_rank_zero_writes_only,
    assert_ranks_agree,
)
from tests.distributed.launch import (
    COLLECTIVE_TIMEOUT_S,
    events,
    losses,
    run,
    run_env,
    tiny_recipe,
    torchrun_command,
    write_recipe,
)

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

FILE_CALLBACKS = [
    "arctic_like.callbacks.JsonLogger",
    "arctic_like.callbacks.LossPlot",
    "arctic_like.callbacks.TensorBoardLogger",
]


def ddp_recipe(out: Path) -> dict:
    """Two processes x one sample per step, JSONL/plot/TensorBoard loggers, a checkpoint every 3 steps."""
    return tiny_recipe(
        out,
        micro_batch_size=1,
        callbacks=FILE_CALLBACKS,
        checkpoint=[{"type": "torch", "save_every_n_steps": 3, "auto_resume": True}],
    )


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted 2-process run, with every rank's writes below ``out/`` recorded."""
    root = tmp_path_factory.mktemp("ddp")
    out = root / "out"
    path = write_recipe(root / "recipe.yaml", ddp_recipe(out))
    result = run(torchrun_command(path), run_env(root / "probe", PROBE_WATCH_DIR=str(out)), root)
    assert result.returncode == 0, result.output[-4000:]
    return root


def test_ranks_hold_identical_parameters_and_know_their_rank(ddp_run: Path) -> None:
    assert_ranks_agree(ddp_run / "probe")


def test_loss_matches_single_process_with_same_global_batch(ddp_run: Path, single_process_run) -> None:
    assert_matches_single_process(ddp_run / "probe", single_process_run.probe)


def test_only_rank_zero_writes_logs_plots_and_checkpoint_metadata(ddp_run: Path) -> None:
    written = assert_rank_zero_writes_only(ddp_run / "probe")
    assert "log.jsonl" in written
    assert any(p.startswith("tensorboard") for p in written)
    assert any(p.startswith(".loss.") for p in written)  # loss.png, written atomically via a temp name
    assert any(p.endswith("/manifest.json") for p in written)
    assert any(p.startswith("data-cache/") for p in written)  # the processed data cache, rank 0 only
    out = ddp_run / "out"
    assert (out / "loss.png").is_file()
    steps = [line for line in (out / "log.jsonl").read_text().splitlines() if '"event": "log"' in line]
    assert len(steps) == 7  # 6 steps + the final train metrics, each once: no second writer
    checkpoint = out / "checkpoints" / "checkpoint-6"
    assert (checkpoint / "manifest.json").is_file()
    assert {p.name for p in checkpoint.glob("rng_state_rank*.pt")} == {
        "rng_state_rank0.pt",
        "rng_state_rank1.pt",
    }


def test_callback_raising_on_one_rank_ends_the_whole_run(tmp_path: Path) -> None:
    """Rank 1 raises after step 2 of 60: torchrun stops rank 0 too, the error is shown, nothing hangs."""
    recipe = write_recipe(
        tmp_path / "recipe.yaml", tiny_recipe(tmp_path / "out", micro_batch_size=1, max_steps=60)
    )
    env = run_env(tmp_path / "probe", PROBE_RAISE_RANK="1", PROBE_RAISE_STEP="2")
    result = run(torchrun_command(recipe), env, tmp_path)
    ended = time.time()
    assert result.returncode != 0
    assert "RuntimeError: probe failure on rank 1 at step 2" in result.output
    raised_at = events(tmp_path / "probe", "step", rank=1)[-1]["time"]
    assert ended - raised_at < COLLECTIVE_TIMEOUT_S / 2  # the peer's death is noticed, not timed out
    assert max(e["step"] for e in events(tmp_path / "probe", "step", rank=0)) <= 3
    assert not events(tmp_path / "probe", "train-end", rank=0)


def test_sigkill_of_both_ranks_then_auto_resume_continues_bit_exactly(ddp_run: Path, tmp_path: Path) -> None:
    """Both ranks SIGKILLed right after step 4; torchrun again resumes from checkpoint-3 (per-rank RNG, the
    sampler's shard position) and steps 4-6 equal the uninterrupted run's on both ranks."""
    probe, checkpoints = tmp_path / "probe", tmp_path / "out" / "checkpoints"
    path = write_recipe(tmp_path / "recipe.yaml", ddp_recipe(tmp_path / "out"))
    killed = run(torchrun_command(path), run_env(probe, PROBE_KILL="1", PROBE_KILL_STEP="4"), tmp_path)
    assert killed.returncode != 0
    assert sorted(p.name for p in checkpoints.glob("checkpoint-*")) == ["checkpoint-3"]
    for rank in (0, 1):
        (probe / f"losses-rank{rank}.jsonl").unlink()

    resumed = run(torchrun_command(path), run_env(probe), tmp_path)
    assert resumed.returncode == 0, resumed.output[-4000:]
    expected = losses(ddp_run / "probe")
    (reference,) = events(ddp_run / "probe", "train-end")
    for rank in (0, 1):
        assert events(probe, "init", rank)[-1]["global_step"] == 3
        assert losses(probe, rank) == {step: expected[step] for step in (4, 5, 6)}
        assert events(probe, "train-end", rank)[-1]["params"] == reference["params"]
