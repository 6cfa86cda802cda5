"""The post-training example recipes (examples/recipes/lora-sft.yaml and dpo.yaml) on the pretrained stand-in
of the fine-tuning walk-through, through the CLI as a user runs them (shortened)."""

import json
import shutil
from pathlib import Path

import pytest
from peft import PeftModel
from transformers import AutoModelForCausalLM

from arctic_like.cli import main
from arctic_like.config.trainer import import_code_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
make_pretrained = import_code_file(EXAMPLES / "fine-tuning" / "make_pretrained.py")
check = import_code_file(EXAMPLES / "fine-tuning" / "check.py")


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """A copy of examples/ with the stand-in saved where the recipes expect it."""
    root = tmp_path_factory.mktemp("examples")
    for folder in ("recipes", "fine-tuning", "post-training"):
        shutil.copytree(EXAMPLES / folder, root / folder, ignore=shutil.ignore_patterns("pretrained"))
    assert make_pretrained.main([str(root / "fine-tuning" / "pretrained")]) == 0
    return root


@pytest.mark.slow
def test_lora_sft_exports_a_merged_model_that_answers(example, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["--set", f"output_dir={tmp_path / 'run'}", "--set", "max_steps=40", "--set", "progress=false"]
    assert main(["train", str(example / "recipes" / "lora-sft.yaml"), *args]) == 0
    export = tmp_path / "run" / "huggingface" / "checkpoint-40"
    assert (export / "model.safetensors").is_file() and not (export / "adapter_config.json").exists()
    capsys.readouterr()
    assert check.main([str(export), "--data", str(example / "fine-tuning" / "chat.jsonl")]) == 0
    assert "exact answers:" in capsys.readouterr().out


@pytest.mark.slow
def test_dpo_prefers_the_true_answers(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--set", f"output_dir={tmp_path / 'run'}", "--set", "progress=false"]
    assert main(["train", str(example / "recipes" / "dpo.yaml"), *args]) == 0  # the whole recipe
    logs = [json.loads(line)["metrics"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [m for m in logs if m and "rewards/margins" in m and "loss" in m]
    margins = [m["rewards/margins"] for m in steps]
    assert len(steps) == 6 and margins[-1] > margins[2] > margins[0] and margins[-1] > 1
    assert steps[-1]["rewards/accuracies"] >= 0.9
    adapter = tmp_path / "run" / "huggingface" / "checkpoint-60"
    base = AutoModelForCausalLM.from_pretrained(example / "fine-tuning" / "pretrained")
    assert isinstance(PeftModel.from_pretrained(base, adapter), PeftModel)
