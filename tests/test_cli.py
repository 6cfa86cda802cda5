"""The `arctic-like` command: train, process-data, callbacks, graceful interrupts, crash-safe checkpoints."""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from arctic_like.cli import main
from arctic_like.config import RecipeError
from tests.tiny import TINY_MODEL

ROOT = Path(__file__).resolve().parents[1]


# A trainer that signals itself in the middle of optimizer step STOP_AT (during its backward) and records
# that post-train ran.
SELF_SIGNAL = """
import os, signal
from pathlib import Path
from arctic_like.trainer import CausalTrainer

def stop_soon(self, loss):
    if self.state.global_step + 1 == {stop_at}:
        os.kill(os.getpid(), signal.{sig})
    return loss

def mark_post_train(self, result):
    Path("post_train_ran").write_text(str(self.state.global_step))
    return result

class SelfSignalTrainer(CausalTrainer):
    name = "self-signal"
    callbacks = [("pre-backward", stop_soon), ("post-train", mark_post_train)]
"""

# SIGKILL in the middle of writing checkpoint-4: after the weights, before the manifest.
KILL_MID_WRITE = """
import os, signal
import arctic_like.checkpoint.torch_engine as te

_write_run_state = te.write_run_state

def write_run_state(trainer, tmp, rank, *, rank_zero):
    if trainer.state.global_step == 4 and not os.environ.get("NO_KILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    _write_run_state(trainer, tmp, rank, rank_zero=rank_zero)

te.write_run_state = write_run_state
"""


def write_recipe(work: Path, **extra) -> Path:
    recipe = {
        "type": "causal",
        "tokenizer": {"type": "char"},
        "data": {
            "sources": [{"type": "addition", "digits": 1, "num_samples": 24, "eval_samples": 8}],
            "max_length": 16,
            "packing": False,
            "cache_dir": str(work / "cache"),
        },
        "model": {"config": dict(TINY_MODEL)},
        "micro_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "epochs": 1,
        "logging_steps": 1,
        "output_dir": "out",
        "device": "cpu",
        "progress": False,
        "checkpoint": [{"type": "torch"}],
    }
    recipe.update(extra)
    path = work / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_help_and_no_command(capsys):
    assert main(["--help"]) == 0
    assert "process-data" in capsys.readouterr().out
    assert main([]) == 2
    assert "usage error: the following arguments are required: command" in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("arctic-like 0.1.0 (python 3.") and "torch 2." in out and "transformers " in out


def test_global_flags_before_or_after_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in (["--traceback", "train", "nothere.yaml"], ["train", "nothere.yaml", "--traceback"]):
        with pytest.raises(RecipeError, match=r"recipe file 'nothere\.yaml' does not exist"):
            main(argv)
    write_recipe(tmp_path)
    package = logging.getLogger("arctic_like")
    monkeypatch.setattr(package, "level", package.level)
    assert main(["process-data", "recipe.yaml", "--log-level", "ERROR"]) == 0
    assert package.level == logging.ERROR
    assert main(["--log-level", "WARNING", "process-data", "recipe.yaml"]) == 0
    assert package.level == logging.WARNING  # not reset by the command's own (absent) flag


RECIPE_CALLBACKS = [
    "arctic_like.callbacks.JsonLogger",
    {"path": "transformers.EarlyStoppingCallback", "kwargs": {"early_stopping_patience": 2}},
]


def test_callbacks_names_the_recipe_callbacks_builds_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_recipe(tmp_path, callbacks=RECIPE_CALLBACKS, data={"sources": ["missing.jsonl"]})
    importlib.import_module("arctic_like.chains")  # time the command, not the first import of torch
    importlib.import_module("arctic_like.trainer")
    start = time.perf_counter()
    assert main(["callbacks", "recipe.yaml"]) == 0  # the data (a missing file) is not even read
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if "HF bridge (recipe callbacks)" in line]
    assert [row[0] for row in rows] == [
        "pre-train",
        "post-train",
        "post-epoch",
        "post-evaluate",
        "post-log",
        "post-checkpoint",
    ]
    assert "JsonLogger.on_train_begin, EarlyStoppingCallback.on_train_begin" in out
    assert "EarlyStoppingCallback.on_evaluate" in out and "JsonLogger.on_log" in out
    assert "HFBridge" not in out and "pre-step" not in out  # no bridge entry that calls nothing
    assert "recipe callbacks: 0: arctic_like.callbacks.loggers.JsonLogger; 1: transformers." in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.yaml"]
    assert seconds < 3, seconds
    print(f"arctic-like callbacks, imports done: {seconds:.2f} s")

    assert main(["callbacks", "recipe.yaml", "--all"]) == 0
    out = capsys.readouterr().out
    assert (
        "arctic_like.integrations.hf.HFBridge.on_step_begin" in out
        and "HF-style callbacks (run order):" in out
    )


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_recipe(
        tmp_path, checkpoint=[{"type": "torch", "save_every_n_steps": 2}], callbacks=RECIPE_CALLBACKS
    )
    assert main(["train", "recipe.yaml", "--dry-run", "--set", "scheduler.warmup_steps=2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("plan of recipe.yaml (dry run: nothing was trained or written)")
    for expected in (
        "trainer        causal (CausalTrainer)",
        "data           causal: train 24 examples, 6 micro-batches per epoch; eval 8 examples; cache ",
        "(written when training starts)",
        "model          huggingface: LlamaForCausalLM, ",
        "optimizer      adamw: AdamW, lr 0.001",
        "scheduler      cosine, 2 warmup step(s); lr 0 at step 0, 0.001 at step 2, ",
        "steps          6 optimizer steps: 6 per epoch x 1 epoch(s); 4 samples per step = micro_batch_size 4",
        "checkpoint[0]  torch -> out/checkpoints (every 2 steps, at the end)",
        "callbacks      JsonLogger, EarlyStoppingCallback",
    ):
        assert expected in out, expected
    parameters = int(re.search(r"LlamaForCausalLM, ([\d,]+) parameters", out).group(1).replace(",", ""))
    assert parameters > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.yaml"]


def test_train_writes_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_recipe(tmp_path)
    assert main(["train", "recipe.yaml", "--set", "max_steps=2"]) == 0
    ckpt = tmp_path / "out" / "checkpoints"
    assert (ckpt / "latest").read_text().strip() == "checkpoint-2"
    assert json.loads((ckpt / "checkpoint-2" / "manifest.json").read_text())["complete"] is True


def test_process_data_reports_sizes_and_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_recipe(tmp_path)
    assert main(["process-data", "recipe.yaml"]) == 0
    out = capsys.readouterr().out
    assert "train: 24 examples" in out and "6 batches per epoch" in out
    assert "eval: 8 examples" in out
    assert f"cache: {tmp_path / 'cache'}" in out and "(written)" in out
    assert not (tmp_path / "out").exists()
    assert main(["process-data", "recipe.yaml"]) == 0
    assert "(reused)" in capsys.readouterr().out


def test_callbacks_lists_every_chain(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(
        "from arctic_like.trainer import CausalTrainer\n"
        "def shout(self, loss):\n    return loss\n"
        "class Mine(CausalTrainer):\n    name = 'mine'\n    callbacks = [('post-loss', shout)]\n"
    )
    write_recipe(tmp_path, code="mine.py", type="mine", checkpoint=[{"type": "torch", "auto_resume": True}])
    assert main(["callbacks", "recipe.yaml"]) == 0
    out = capsys.readouterr().out
    assert "[trainer] Mine" in out
    assert "post-loss" in out and "mine.shout" in out and "Mine.callbacks" in out
    assert "pre-train" in out and "_begin_training" in out
    for label in (
        "[data_factory]",
        "[tokenizer_factory]",
        "[model_factory]",
        "[optimizer_factory]",
        "[scheduler_factory]",
        "[checkpoint_engines[0]] TorchCheckpointEngine",
    ):
        assert label in out, label


@pytest.mark.slow
def test_sigint_checkpoints_then_resume_matches_uninterrupted(tmp_path, monkeypatch, capsys):
    # Uninterrupted reference run.
    ref = tmp_path / "ref"
    ref.mkdir()
    monkeypatch.chdir(ref)
    write_recipe(ref)
    assert main(["train", "recipe.yaml"]) == 0
    reference = load_file(ref / "out" / "checkpoints" / "checkpoint-6" / "model.safetensors")

    work = tmp_path / "run"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "sig.py").write_text(SELF_SIGNAL.format(stop_at=3, sig="SIGINT"))
    write_recipe(work, code="sig.py", type="self-signal")
    capsys.readouterr()
    assert main(["train", "recipe.yaml"]) == 130
    err = capsys.readouterr().err
    assert (
        "training interrupted by SIGINT at step 3; checkpoint written to out/checkpoints/checkpoint-3" in err
    )
    assert "Resume with: arctic-like train recipe.yaml --set checkpoint.0.auto_resume=true" in err
    assert (work / "post_train_ran").read_text() == "3"
    assert (work / "out" / "checkpoints" / "latest").read_text().strip() == "checkpoint-3"

    (work / "sig.py").write_text(SELF_SIGNAL.format(stop_at=-1, sig="SIGINT"))
    assert main(["train", "recipe.yaml", "--set", "checkpoint.0.auto_resume=true"]) == 0
    resumed = load_file(work / "out" / "checkpoints" / "checkpoint-6" / "model.safetensors")
    assert all((resumed[k] == reference[k]).all() for k in reference)


def run_cli(work: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "arctic_like.cli", *args],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow
def test_sigterm_in_subprocess_exits_143(tmp_path):
    (tmp_path / "sig.py").write_text(SELF_SIGNAL.format(stop_at=2, sig="SIGTERM"))
    write_recipe(
        tmp_path, code="sig.py", type="self-signal", checkpoint=[{"type": "torch", "auto_resume": True}]
    )
    proc = run_cli(tmp_path, "train", "recipe.yaml")
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert "SIGTERM received: finishing the current step, then saving a checkpoint" in proc.stderr
    assert "training interrupted by SIGTERM at step 2" in proc.stderr
    assert "Resume with: arctic-like train recipe.yaml\n" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-2" / "manifest.json").is_file()


@pytest.mark.slow
def test_sigkill_mid_write_keeps_previous_checkpoint(tmp_path):
    (tmp_path / "kill.py").write_text(KILL_MID_WRITE)
    write_recipe(
        tmp_path, code="kill.py", checkpoint=[{"type": "torch", "auto_resume": True, "save_every_n_steps": 2}]
    )
    proc = run_cli(tmp_path, "train", "recipe.yaml")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    ckpts = tmp_path / "out" / "checkpoints"
    partial = [p for p in ckpts.iterdir() if p.name.startswith(".tmp-checkpoint-4-")]
    assert len(partial) == 1 and (partial[0] / "model.safetensors").is_file()
    assert not (ckpts / "checkpoint-4").exists()
    assert (ckpts / "latest").read_text().strip() == "checkpoint-2"

    proc = run_cli(tmp_path, "train", "recipe.yaml", env={"NO_KILL": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "loaded checkpoint out/checkpoints/checkpoint-2 (step 2)" in proc.stderr
    assert not [p for p in ckpts.iterdir() if p.name.startswith(".tmp")]
    assert sorted(p.name for p in ckpts.iterdir()) == [
        "checkpoint-2",
        "checkpoint-4",
        "checkpoint-6",
        "latest",
    ]


def test_deepspeed_launcher_local_rank_flag(monkeypatch, capsys):
    monkeypatch.setenv("LOCAL_RANK", "")  # so the teardown restores the original (possibly unset) value
    monkeypatch.delenv("LOCAL_RANK")
    assert main(["--local_rank=1", "train", "no-such.yaml"]) == 2
    assert os.environ["LOCAL_RANK"] == "1"
    assert "recipe file 'no-such.yaml' does not exist" in capsys.readouterr().err


# Only rank 1 is signalled, in the middle of step 2: every rank must stop after step 2 and save it.
RANK1_SIGNAL = """
import os, signal
from arctic_like.trainer import CausalTrainer

def stop_rank1(self, loss):
    if self.global_rank == 1 and self.state.global_step + 1 == 2:
        os.kill(os.getpid(), signal.SIGINT)
    return loss

class RankSignalTrainer(CausalTrainer):
    name = "rank-signal"
    callbacks = [("pre-backward", stop_rank1)]
"""


@pytest.mark.slow
@pytest.mark.distributed
def test_torchrun_interrupt_on_one_rank_stops_all_at_same_step(tmp_path):
    (tmp_path / "sig.py").write_text(RANK1_SIGNAL)
    write_recipe(tmp_path, code="sig.py", type="rank-signal", micro_batch_size=2)
    env = {
        k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")
    }
    env.update({"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "ARCTIC_LIKE_DIST_TIMEOUT_S": "60"})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = Path(sys.executable).parent / "torchrun"
    proc = subprocess.run(
        [
            str(torchrun),
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(port),
            "-m",
            "arctic_like.cli",
            "train",
            "recipe.yaml",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    for rank in (0, 1):
        assert f"[rank {rank}] arctic-like: training interrupted by SIGINT at step 2" in output, output[
            -3000:
        ]
    ckpts = tmp_path / "out" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["checkpoint-2", "latest"]
    assert {p.name for p in (ckpts / "checkpoint-2").glob("rng_state_rank*.pt")} == {
        "rng_state_rank0.pt",
        "rng_state_rank1.pt",
    }


def test_hard_interrupt_exits_130_without_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "slow.py").write_text("raise KeyboardInterrupt\n")
    write_recipe(tmp_path, code="slow.py")
    assert main(["train", "recipe.yaml"]) == 130
    err = capsys.readouterr().err
    assert "interrupted; stopped at once without writing a checkpoint" in err and "Traceback" not in err
