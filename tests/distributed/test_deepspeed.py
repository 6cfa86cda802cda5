"""`engine: deepspeed` on two processes: ZeRO 2 under torchrun, ZeRO 1 under DeepSpeed's own launcher."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    finish,
    launched,
    run_env,
    tiny_recipe,
    torchrun_command,
    write_recipe,
)

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def _launch(root: Path, stage: int, launcher: Callable[[Path], list[str]], **extra: Any) -> Any:
    out = root / "out"
    zero = {"zero_optimization": {"stage": stage}}
    recipe = tiny_recipe(out, micro_batch_size=1, engine="deepspeed", deepspeed=zero, **extra)
    path = write_recipe(root / "recipe.yaml", recipe)
    return launched(launcher(path), run_env(root / "probe", PROBE_WATCH_DIR=str(out)), root)


@pytest.fixture(scope="module")
def deepspeed_runs(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> dict[int, Path]:
    """ZeRO 2 under torchrun (a JSONL logger, checkpoints with HF export) and ZeRO 1 under DeepSpeed's
    launcher, run at the same time (and beside the single-process reference when it is not there yet)."""
    roots = {2: tmp_path_factory.mktemp("zero2"), 1: tmp_path_factory.mktemp("zero1")}
    zero2 = _launch(
        roots[2],
        2,
        torchrun_command,
        callbacks=["arctic_like.callbacks.JsonLogger"],
        checkpoint=[{"type": "deepspeed", "save_every_n_steps": 3, "export_hf": True}],
    )
    zero1 = _launch(roots[1], 1, deepspeed_command)
    with zero2 as proc2, zero1 as proc1:
        request.getfixturevalue("single_process_run")
        results = {2: finish(proc2), 1: finish(proc1)}
    for stage, result in results.items():
        assert result.returncode == 0, result.output[-4000:]
        assert f"zero stage {stage}" in result.output
    return roots


@pytest.fixture(scope="module")
def zero2_torchrun(deepspeed_runs: dict[int, Path]) -> Path:
    return deepspeed_runs[2]


@pytest.fixture(scope="module")
def zero1_launcher(deepspeed_runs: dict[int, Path]) -> Path:
    return deepspeed_runs[1]


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
