"""`engine: deepspeed` on two processes: ZeRO 2 under torchrun, ZeRO 1 under DeepSpeed's own launcher."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.distributed.checks import (
    assert_matches_single_process,
    assert_rank_zero_writes_only,
    assert_ranks_agree,
    parameter_hash,
)
from tests.distributed.launch import (
    deepspeed_command,
    events,
    run,
    run_env,
    tiny_recipe,
    torchrun_command,
    write_recipe,
)

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def _deepspeed_run(root: Path, stage: int, launcher, **extra) -> Path:
    out = root / "out"
    recipe = tiny_recipe(
        out,
        micro_batch_size=1,
        engine="deepspeed",
        deepspeed={"zero_optimization": {"stage": stage}},
        **extra,
    )
    path = write_recipe(root / "recipe.yaml", recipe)
    result = run(launcher(path), run_env(root / "probe", PROBE_WATCH_DIR=str(out)), root)
    assert result.returncode == 0, result.output[-4000:]
    assert f"zero stage {stage}" in result.output
    return root


@pytest.fixture(scope="module")
def zero2_torchrun(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _deepspeed_run(
        tmp_path_factory.mktemp("zero2"),
        2,
        torchrun_command,
        callbacks=["arctic_like.callbacks.JsonLogger"],
        checkpoint=[{"type": "deepspeed", "save_every_n_steps": 3, "export_hf": True}],
    )


@pytest.fixture(scope="module")
def zero1_launcher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _deepspeed_run(tmp_path_factory.mktemp("zero1"), 1, deepspeed_command)


def test_zero2_ranks_agree_and_match_single_process(zero2_torchrun: Path, single_process_run) -> None:
    assert_ranks_agree(zero2_torchrun / "probe")
    assert_matches_single_process(zero2_torchrun / "probe", single_process_run.probe)


def test_zero2_only_rank_zero_writes_but_each_rank_saves_its_shard(zero2_torchrun: Path) -> None:
    written = assert_rank_zero_writes_only(zero2_torchrun / "probe")
    assert "log.jsonl" in written
    state = zero2_torchrun / "out" / "checkpoints" / "checkpoint-6" / "state"
    shards = sorted(p.name for p in state.glob("zero_pp_rank_*_optim_states.pt"))
    assert shards == [
        "zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]


def test_zero1_with_deepspeed_launcher(zero1_launcher: Path, single_process_run) -> None:
    assert_ranks_agree(zero1_launcher / "probe")
    assert_matches_single_process(zero1_launcher / "probe", single_process_run.probe)


def test_zero2_export_gathers_both_shards_into_the_trained_weights(zero2_torchrun: Path) -> None:
    """`export_hf` at the end: `zero_to_fp32` over the two ranks' shards gives exactly the trained weights."""
    from transformers import AutoModelForCausalLM

    hf = zero2_torchrun / "out" / "checkpoints" / "checkpoint-6" / "hf"
    model = AutoModelForCausalLM.from_pretrained(hf)
    (end,) = events(zero2_torchrun / "probe", "train-end", rank=0)
    assert parameter_hash(model) == end["params"]
