"""`engine: deepspeed` on two processes: ZeRO 2 on two "nodes" (examples/slurm/train.sbatch with a fake
Slurm: one torchrun per node meeting at a c10d rendezvous), ZeRO 1 with optimizer offload under DeepSpeed's
own launcher, ZeRO 3 with optimizer and parameter offload under torchrun on one node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.distributed.checks import (
    LOSS_RTOL,
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
    losses,
    run_env,
    slurm_command,
    slurm_env,
    tiny_recipe,
    torchrun_command,
    write_recipe,
)

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


OFFLOAD_OPTIMIZER = {"offload_optimizer": {"device": "cpu"}}
OFFLOAD_PARAM = {"offload_param": {"device": "cpu"}}


def _launch(
    root: Path,
    zero: dict[str, Any],
    launcher: Callable[[Path], list[str]],
    environment: Callable[[dict[str, str]], dict[str, str]] = dict,
    **extra: Any,
) -> Any:
    out = root / "out"
    ds = {"zero_optimization": zero}
    recipe = tiny_recipe(out, micro_batch_size=1, engine="deepspeed", deepspeed=ds, **extra)
    path = write_recipe(root / "recipe.yaml", recipe)
    env = environment(run_env(root / "probe", PROBE_WATCH_DIR=str(out)))
    return launched(launcher(path), env, root)


@pytest.fixture(scope="module")
def deepspeed_runs(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, deepspeed_ops: None
) -> dict[str, Path]:
    """Three 2-process runs at the same time (beside the single-process references when those are not
    there yet): ZeRO 2 on two one-process nodes through the Slurm script (a JSONL logger, checkpoints with HF
    export), ZeRO 1 with optimizer offload under DeepSpeed's launcher, ZeRO 3 with optimizer and parameter
    offload under torchrun (a `huggingface` export at the end)."""
    roots = {name: tmp_path_factory.mktemp(name) for name in ("zero2", "zero1-offload", "zero3-offload")}
    zero2 = _launch(
        roots["zero2"],
        {"stage": 2},
        slurm_command,
        slurm_env,
        callbacks=["arctic_like.callbacks.JsonLogger"],
        checkpoint=[{"type": "deepspeed", "save_every_n_steps": 3, "export_hf": True}],
    )
    zero1 = _launch(roots["zero1-offload"], {"stage": 1, **OFFLOAD_OPTIMIZER}, deepspeed_command)
    zero3 = _launch(
        roots["zero3-offload"],
        {"stage": 3, **OFFLOAD_OPTIMIZER, **OFFLOAD_PARAM},
        torchrun_command,
        checkpoint=[{"type": "huggingface"}],
    )
    with zero2 as proc2, zero1 as proc1, zero3 as proc3:
        request.getfixturevalue("single_process_run")
        request.getfixturevalue("deepspeed_single_process")
        results = {"zero2": finish(proc2), "zero1-offload": finish(proc1), "zero3-offload": finish(proc3)}
    for name, result in results.items():
        assert result.returncode == 0, result.output[-4000:]
        assert f"zero stage {name[4]}" in result.output
    assert "2 nodes x 1 processes, rendezvous 127.0.0.1:" in results["zero2"].output
    assert "optimizer state offloaded to cpu" in results["zero1-offload"].output
    assert "parameters offloaded to cpu" in results["zero3-offload"].output
    return roots


@pytest.fixture(scope="module")
def zero2_two_nodes(deepspeed_runs: dict[str, Path]) -> Path:
    return deepspeed_runs["zero2"]


@pytest.fixture(scope="module")
def zero1_offload_launcher(deepspeed_runs: dict[str, Path]) -> Path:
    return deepspeed_runs["zero1-offload"]


@pytest.fixture(scope="module")
def zero3_offload_torchrun(deepspeed_runs: dict[str, Path]) -> Path:
    return deepspeed_runs["zero3-offload"]


def test_zero2_on_two_nodes_ranks_agree_and_match_single_process(
    zero2_two_nodes: Path, single_process_run
) -> None:
    """Each node's process is its node's local rank 0; together they train like one process."""
    assert_ranks_agree(zero2_two_nodes / "probe", per_node=1)
    assert_matches_single_process(zero2_two_nodes / "probe", single_process_run.probe)


def test_zero2_only_rank_zero_writes_but_each_rank_saves_its_shard(zero2_two_nodes: Path) -> None:
    written = assert_rank_zero_writes_only(zero2_two_nodes / "probe")
    assert "log.jsonl" in written
    state = zero2_two_nodes / "out" / "checkpoints" / "checkpoint-6" / "state"
    shards = sorted(p.name for p in state.glob("zero_pp_rank_*_optim_states.pt"))
    assert shards == [
        "zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]


def test_zero1_offload_with_deepspeed_launcher(zero1_offload_launcher: Path, single_process_run) -> None:
    """DeepSpeedCPUAdam on each rank's partition gives torch AdamW's losses on one process."""
    assert_ranks_agree(zero1_offload_launcher / "probe")
    assert_matches_single_process(zero1_offload_launcher / "probe", single_process_run.probe)


def test_zero2_export_gathers_both_shards_into_the_trained_weights(zero2_two_nodes: Path) -> None:
    """`export_hf` at the end: `zero_to_fp32` over the two ranks' shards gives exactly the trained weights."""
    from transformers import AutoModelForCausalLM

    hf = zero2_two_nodes / "out" / "checkpoints" / "checkpoint-6" / "hf"
    model = AutoModelForCausalLM.from_pretrained(hf)
    (end,) = events(zero2_two_nodes / "probe", "train-end", rank=0)
    assert parameter_hash(model) == end["params"]


def test_zero3_offload_ranks_agree_and_match_one_process(
    zero3_offload_torchrun: Path, deepspeed_single_process
) -> None:
    """Two ranks with 1 sample each match one ZeRO-3-offload process with 2 samples (the same weights come
    out of zero.Init on rank 0)."""
    probe = zero3_offload_torchrun / "probe"
    assert_ranks_agree(probe)
    single = deepspeed_single_process.results()["zero3-offload"]["losses"]
    ours = losses(probe)
    assert sorted(ours) == list(range(1, 7))
    assert max(abs(ours[step] - single[step - 1]) / single[step - 1] for step in ours) < LOSS_RTOL


def test_zero3_offload_export_gathers_both_ranks_partitions(zero3_offload_torchrun: Path) -> None:
    """The `huggingface` engine gathers every partitioned parameter; only rank 0 writes the export."""
    from transformers import AutoModelForCausalLM

    assert_rank_zero_writes_only(zero3_offload_torchrun / "probe")
    model = AutoModelForCausalLM.from_pretrained(
        zero3_offload_torchrun / "out" / "huggingface" / "checkpoint-6"
    )
    (end,) = events(zero3_offload_torchrun / "probe", "train-end", rank=0)
    assert parameter_hash(model) == end["params"]
