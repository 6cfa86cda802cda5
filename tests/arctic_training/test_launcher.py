"""`arctic-like train RECIPE --num-gpus N` starts the launcher itself, as `arctic_training RECIPE` does:
torchrun for engine: torch, DeepSpeed's launcher for engine: deepspeed or a hostfile; `--num-procs N` on the
CPU."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from arctic_like.cli import main
from arctic_like.launch import Launch, LaunchError, launcher_command
from tests.distributed.checks import assert_ranks_agree
from tests.distributed.launch import BIN, run, run_env, tiny_recipe, write_recipe

CHILD = ["train", "r.yaml", "--log-level", "INFO"]
PYTHON = sys.executable


@pytest.fixture(autouse=True)
def not_launched(monkeypatch):
    for name in ("WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def test_one_machine_torch_engine_uses_torchrun_standalone():
    assert launcher_command(Launch(num_procs=2), "torch", CHILD) == [
        PYTHON, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
        "-m", "arctic_like.cli", *CHILD,
    ]  # fmt: skip


def test_several_machines_without_hostfile_start_on_each_with_its_rank():
    command = launcher_command(
        Launch(num_gpus=8, num_nodes=2, node_rank=1, master_addr="10.0.0.1", master_port=1234), "torch", CHILD
    )
    assert command == [
        PYTHON, "-m", "torch.distributed.run", "--nproc-per-node", "8", "--nnodes", "2", "--node-rank", "1",
        "--master-addr", "10.0.0.1", "--master-port", "1234", "-m", "arctic_like.cli", *CHILD,
    ]  # fmt: skip


def test_deepspeed_engine_and_hostfiles_use_deepspeeds_launcher(tmp_path):
    command = launcher_command(Launch(num_gpus=2, master_port=4321), "deepspeed", CHILD)
    assert command == [
        PYTHON, "-m", "deepspeed.launcher.runner", "--num_gpus", "2", "--master_addr", "127.0.0.1",
        "--master_port", "4321", "--module", "arctic_like.cli", *CHILD,
    ]  # fmt: skip
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node1 slots=8\nnode2 slots=8\n")
    command = launcher_command(Launch(hostfile=hostfile, num_nodes=2, master_addr="node1"), "torch", CHILD)
    assert command[:9] == [
        PYTHON, "-m", "deepspeed.launcher.runner", "--hostfile", str(hostfile), "--num_nodes", "2",
        "--master_addr", "node1",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("launch", "engine", "message"),
    [
        (Launch(num_gpus=2, num_procs=2), "torch", "--num-gpus and --num-procs both given"),
        (Launch(num_procs=0), "torch", "--num-procs must be at least 1, got 0"),
        (Launch(num_nodes=2), "torch", "how many processes per machine"),
        (Launch(num_gpus=8, num_nodes=2), "torch", "give --node-rank .* and --master-addr"),
        (Launch(num_gpus=8, num_nodes=2, node_rank=0, master_addr="h"), "deepspeed", "from a hostfile"),
        (Launch(hostfile=Path("/nope/hostfile")), "torch", "--hostfile /nope/hostfile: no such file"),
    ],
)
def test_launch_options_that_cannot_work(launch, engine, message):
    with pytest.raises(LaunchError, match=message):
        launcher_command(launch, engine, CHILD)


def test_no_launch_inside_a_launched_process(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(LaunchError, match="already started by a launcher"):
        launcher_command(Launch(num_procs=2), "torch", CHILD)


def test_a_bad_launch_is_a_usage_error_before_anything_starts(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(tmp_path / "out"))
    assert main(["train", str(recipe), "--num-gpus", "2", "--num-procs", "2"]) == 2
    assert "usage error: --num-gpus and --num-procs both given" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.distributed
def test_two_cpu_processes(tmp_path):
    """`arctic-like train RECIPE --num-procs 2`: two ranks over gloo, in step, with identical weights."""
    recipe = write_recipe(tmp_path / "recipe.yaml", tiny_recipe(tmp_path / "out", max_steps=3))
    command = [str(BIN / "arctic-like"), "train", str(recipe), "--num-procs", "2"]
    result = run(command, run_env(tmp_path / "probe"), tmp_path, timeout=180)
    assert result.returncode == 0, result.output[-4000:]
    assert (
        "launching: " in result.output
        and "torch.distributed.run --nproc-per-node 2 --standalone" in result.output
    )
    assert_ranks_agree(tmp_path / "probe")
