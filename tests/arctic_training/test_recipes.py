"""Recipes written in ArcticTraining's documented shape load unchanged and train (a tiny local model and data
standing in for the Hub's)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers
import yaml

from arctic_like.cli import main
from arctic_like.config import build_trainer, load_recipe


def sft_recipe(root: Path, pretrained: Path, data_dir: Path) -> Path:
    """ArcticTraining's SFT recipe shape (its docs' field lists and the projects' recipes), shrunk."""
    text = f"""\
type: sft
micro_batch_size: 2
gradient_accumulation_steps: 2
epochs: 1
train_iters: 6
seed: 42
model:
  type: liger
  name_or_path: {pretrained}
  dtype: fp32
  attn_implementation: flash_attention_2
  disable_activation_checkpoint: true
tokenizer:
  name_or_path: {pretrained}
data:
  sources:
    - type: huggingface_instruct
      name_or_path: {data_dir / "chat"}
      sample_count: 24
      role_mapping:
        user: question
        assistant: answer
  max_length: 2^6
  use_data_cache: true
  cache_processed_data: true
  cache_dir: {root / "cache"}
  num_proc: 1
  dl_num_workers: 0
logger:
  level: WARNING
  output_dir: {root / "logs"}
  file_output_ranks: [0]
wandb:
  enable: false
  project: arctic-training
scheduler:
  name: linear
  warmup_ratio: 0.5
optimizer:
  betas: [0.9, 0.999]
  weight_decay: 0.1
  learning_rate: 1e-3
checkpoint:
  - type: huggingface
    output_dir: {root / "export"}
    save_end_of_training: true
"""
    path = root / "sft-recipe.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory, pretrained, data_dir):
    root = tmp_path_factory.mktemp("sft")
    recipe = sft_recipe(root, pretrained, data_dir)
    trainer = build_trainer(load_recipe(recipe))
    trainer.train()
    return root, trainer


def test_sft_recipe_trains_as_arctic_training_would(sft_run, pretrained):
    root, trainer = sft_run
    config = trainer.config
    assert (config.type, config.data.type, config.precision) == ("sft", "sft", "fp32")
    assert config.model.attn_implementation == "sdpa" and config.model.type == "huggingface"
    assert config.data.max_length == 64 and config.data.sources[0].limit == 24
    assert trainer.state.global_step == 6
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 6 and all(loss > 0 for loss in losses)  # a log record every step, as ArcticTraining
    export = root / "export" / "global_step_6"
    model = transformers.AutoModelForCausalLM.from_pretrained(export)
    assert model.config.num_hidden_layers == 1
    assert (root / "logs" / "rank_0.log").is_file()


def test_the_huggingface_scheduler_gives_transformers_learning_rates(sft_run):
    """The learning rate of every step is transformers' linear schedule over the run (ArcticTraining's
    default scheduler), with half the steps of warmup."""
    _, trainer = sft_run
    reference = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    schedule = transformers.get_scheduler("linear", reference, num_warmup_steps=3, num_training_steps=6)
    expected = []
    for _ in range(6):
        expected.append(schedule.get_last_lr()[0])
        reference.step()
        schedule.step()
    logged = [entry["learning_rate"] for entry in trainer.state.log_history if "loss" in entry]
    assert logged == pytest.approx(expected, abs=1e-12)


def test_sft_prompts_are_masked(sft_run):
    _, trainer = sft_run
    batch = next(iter(trainer.train_dataloader))
    labels, ids = batch["labels"][0], batch["input_ids"][0]
    targets = trainer.tokenizer.decode(ids[labels != -100])
    assert "what is" not in targets and targets.endswith("</s>")


def test_causal_recipe(tmp_path, pretrained, data_dir):
    recipe = tmp_path / "causal.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "type": "causal",
                "micro_batch_size": 1,
                "train_iters": 3,
                "model": {"name_or_path": str(pretrained), "disable_activation_checkpoint": True},
                "data": {
                    "sources": [
                        {
                            "type": "huggingface_causal",
                            "name_or_path": str(data_dir / "text"),
                            "column": "content",
                        }
                    ],
                    "max_length": 32,
                    "cache_dir": str(tmp_path / "cache"),
                },
                "scheduler": {"name": "cosine", "warmup_ratio": 0},
                "checkpoint": [
                    {"type": "huggingface", "output_dir": str(tmp_path / "out"), "save_every_n_steps": 2}
                ],
            }
        )
    )
    trainer = build_trainer(recipe)
    assert trainer.config.data.packing is True and trainer.config.data.sources[0].column_mapping == {
        "content": "text"
    }
    trainer.train()
    assert trainer.state.global_step == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["global_step_2", "latest"]
    batch = next(iter(trainer.train_dataloader))
    assert batch["input_ids"].shape[1] <= 32 and (batch["labels"] != -100).any()


def test_explain_prints_one_line_per_mapped_key(tmp_path, pretrained, data_dir, capsys):
    recipe = sft_recipe(tmp_path, pretrained, data_dir)
    assert main(["train", str(recipe), "--explain", "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = recipe.read_text().splitlines()
    line = {
        key: next(n for n, text in enumerate(lines, 1) if text.strip().startswith(key))
        for key in ("train_iters", "type: liger", "learning_rate")
    }
    assert f"{recipe}: read as an ArcticTraining recipe (the ArcticTraining key train_iters)" in out
    assert (
        f"{recipe}:{line['train_iters']}: train_iters -> max_steps=6: `max_steps` (0: epochs decide)" in out
    )
    assert f"{recipe}:{line['type: liger']}: model.type -> model.type='huggingface'" in out
    assert f"{recipe}:{line['learning_rate']}: optimizer.learning_rate -> optimizer.lr='1e-3'" in out
    assert "default logging_steps = 1: ArcticTraining's default (a log record every step)" in out
    assert main(["train", str(recipe), "--dry-run"]) == 0
    assert "read as an ArcticTraining recipe" not in capsys.readouterr().out  # only when asked
