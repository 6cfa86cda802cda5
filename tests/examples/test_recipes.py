"""The example recipes load, and train for a few steps through the CLI (torch and DeepSpeed engines)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arctic_like.config import load_recipe
from arctic_like.config.trainer import import_code_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RECIPES = EXAMPLES / "recipes"
generate = import_code_file(EXAMPLES / "generate.py")
ALL = sorted(RECIPES.glob("*.yaml"))


def test_there_are_recipes():
    names = {p.name for p in ALL}
    assert {"tiny-addition.yaml", "tiny-addition-deepspeed.yaml", "tiny-reverse.yaml"} <= names


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    """An untrained stand-in for the recipes that start from examples/fine-tuning/pretrained."""
    make_pretrained = import_code_file(EXAMPLES / "fine-tuning" / "make_pretrained.py")
    out = tmp_path_factory.mktemp("stand-in") / "pretrained"
    make_pretrained.make(out, steps=0)
    return out


@pytest.mark.parametrize("recipe", ALL, ids=lambda p: p.name)
def test_recipe_loads(recipe, request):
    pretrained = "../fine-tuning/pretrained" in recipe.read_text()
    overrides = [f"model.name_or_path={request.getfixturevalue('stand_in')}"] if pretrained else []
    config = load_recipe(recipe, overrides=overrides)
    assert config.type in ("causal", "sft", "dpo") and config.engine in ("torch", "deepspeed")


def _short_run(tmp_path: Path, steps: int = 6) -> list[str]:
    return [
        f"--set=output_dir={tmp_path / 'out'}",
        f"--set=max_steps={steps}",
        f"--set=eval_steps={steps}",
        "--set=logging_steps=1",
    ]


def test_tiny_addition_trains_through_cli(tmp_path, capsys):
    from arctic_like.cli import main

    recipe = RECIPES / "tiny-addition.yaml"
    assert main(["train", str(recipe), *_short_run(tmp_path)]) == 0
    out = tmp_path / "out"
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["metrics"]["loss"] for r in records if "loss" in (r.get("metrics") or {})]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert (out / "checkpoints" / "checkpoint-6").is_dir()
    assert (out / "loss.png").is_file() and any((out / "tensorboard").iterdir())
    assert (out / "huggingface" / "checkpoint-6" / "config.json").is_file()

    capsys.readouterr()
    assert generate.main([str(out / "huggingface"), "12+34=", "5+6="]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"generating with transformers from {out / 'huggingface' / 'checkpoint-6'}"
    assert [line.split("=")[0] for line in lines[1:]] == ["  12+34", "  5+6"]
    assert all(line.endswith(("  ok", "  wrong")) for line in lines[1:])


@pytest.mark.slow
def test_tiny_addition_deepspeed_trains(tmp_path):
    recipe = RECIPES / "tiny-addition-deepspeed.yaml"
    launcher = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in launcher}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "arctic_like.cli", "train", str(recipe), *_short_run(tmp_path, 4)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "deepspeed engine ready: zero stage 1" in done.stderr
    assert "training done: 4 steps" in done.stderr
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-4").is_dir()
