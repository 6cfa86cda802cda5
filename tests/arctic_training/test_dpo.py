"""An ArcticTraining DPO recipe (its `DPOTrainerConfig` and `DPODataConfig` fields, the shape of its projects'
`dpo-llama-8b.yaml`) loads unchanged and trains with ArcticTraining's loss; its LoRA variant (`peft_config`)
trains the adapter only; ArcticTraining's `DPOTrainer` class runs code written against it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from arctic_like import registry
from arctic_like.config import build_trainer, load_recipe

BETA, SMOOTHING = 0.5, 0.1


def dpo_recipe(root: Path, pretrained: Path, data_dir: Path, **extra: object) -> Path:
    """ArcticTraining's DPO recipe shape, shrunk (no `dtype`: bf16 on a GPU, fp32 on this CPU)."""
    text = f"""\
type: dpo
micro_batch_size: 2
gradient_accumulation_steps: 1
epochs: 1
train_iters: 4
seed: 42
beta: {BETA}
label_smoothing: {SMOOTHING}
ignore_label_index: -100
model:
  type: liger
  name_or_path: {pretrained}
  attn_implementation: flash_attention_2
  disable_activation_checkpoint: true
ref_model:
  type: liger
  name_or_path: {pretrained}
  attn_implementation: flash_attention_2
wandb:
  enable: false
  project: arctic-excot
data:
  sources:
    - type: huggingface
      name_or_path: {data_dir / "chat_pairs"}
      sample_count: 16
  use_data_cache: true
  cache_processed_data: true
  cache_dir: {root / "cache"}
  num_proc: 1
  max_length: 2^6
  max_prompt_length: 24
  dpo_prompt_truncation_mode: keep_start
logger:
  level: WARNING
  output_dir: {root / "logs"}
  file_output_ranks: [0]
scheduler:
  name: linear
  warmup_ratio: 0.25
optimizer:
  betas: [0.9, 0.999]
  weight_decay: 0.1
  lr: 1e-2
checkpoint:
  - type: huggingface
    save_every_n_steps: 10000
    output_dir: {root / "export"}
    save_end_of_training: true
"""
    path = root / "dpo-recipe.yaml"
    recipe = yaml.safe_load(text)
    for key, value in extra.items():
        section, _, name = key.rpartition(".")
        (recipe[section] if section else recipe)[name] = value
    path.write_text(text if not extra else yaml.safe_dump(recipe))
    return path


def arctic_training_dpo_loss(trainer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """ArcticTraining's DPO loss, written from its `dpo_trainer.py`: summed completion log-probs (labels
    shifted by one, -100 ignored) of chosen then rejected rows, `-logsigmoid(beta x)(1 - eps) -
    logsigmoid(-beta x) eps`, mean over the pairs."""

    def logprobs(model: torch.nn.Module) -> torch.Tensor:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        labels = batch["labels"][:, 1:].clone()
        mask = labels != -100
        labels[~mask] = 0
        picked = torch.gather(logits[:, :-1].log_softmax(-1), 2, labels.unsqueeze(2)).squeeze(2)
        return (picked * mask).sum(-1)

    with torch.no_grad():
        policy, reference = logprobs(trainer.model_unwrapped), logprobs(trainer.ref_model)
    half = policy.shape[0] // 2
    x = (policy[:half] - policy[half:]) - (reference[:half] - reference[half:])
    losses = -F.logsigmoid(BETA * x) * (1 - SMOOTHING) - F.logsigmoid(-BETA * x) * SMOOTHING
    return losses.mean()


@pytest.fixture(scope="module")
def dpo_run(tmp_path_factory, pretrained, data_dir):
    root = tmp_path_factory.mktemp("dpo")
    trainer = build_trainer(load_recipe(dpo_recipe(root, pretrained, data_dir)))
    trainer.train()
    return root, trainer


def test_dpo_recipe_loads_as_arctic_training_means_it(dpo_run):
    _, trainer = dpo_run
    config = trainer.config
    assert (config.type, config.data.type, config.loss_type) == ("dpo", "dpo", "sigmoid")
    assert (config.beta, config.label_smoothing, config.precision) == (BETA, SMOOTHING, "fp32")
    assert config.ref_model.type == "huggingface" and config.ref_model.attn_implementation == "sdpa"
    data = config.data
    assert (data.max_length, data.max_prompt_length, data.prompt_truncation) == (64, 24, "keep_start")
    assert data.sources[0].limit == 16 and data.sources[0].shuffle
    assert trainer.reference == "the ref_model section"
    assert type(trainer.ref_model).__name__ == "LlamaForCausalLM"


def test_dpo_recipe_trains_with_arctic_trainings_loss(dpo_run):
    root, trainer = dpo_run
    assert trainer.state.global_step == 4
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 4  # a log record every step, as ArcticTraining
    # the policy starts as the reference: every pair's loss is ln 2 (the smoothing does not change it)
    assert logs[0]["loss"] == pytest.approx(0.693147, abs=1e-5)
    assert all("rewards/accuracies" in entry and "logps/chosen" in entry for entry in logs)
    batch = next(iter(trainer.train_dataloader))
    trainer.model.eval()
    with torch.no_grad():
        ours = trainer.loss(batch)
    expected = arctic_training_dpo_loss(trainer, batch)
    assert expected.item() != pytest.approx(0.693147, abs=1e-3)  # the policy has moved
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
    assert (root / "export" / "global_step_4" / "model.safetensors").is_file()
    assert (root / "logs" / "rank_0.log").is_file()


def test_a_long_prompt_keeps_its_start_as_arctic_training_does(dpo_run):
    _, trainer = dpo_run
    tokenizer = trainer.tokenizer
    prompts = [tokenizer.decode(row) for row in trainer.train_dataloader.dataset["prompt_ids"]]
    assert all(len(ids) <= 24 for ids in trainer.train_dataloader.dataset["prompt_ids"])
    assert all(p.startswith("<|user|>what is") for p in prompts)


def test_the_lora_variant_trains_only_the_adapter(tmp_path, pretrained, data_dir):
    lora = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}
    recipe = dpo_recipe(tmp_path, pretrained, data_dir, **{"model.peft_config": lora, "train_iters": 2})
    trainer = build_trainer(load_recipe(recipe))
    peft = trainer.config.model.peft
    assert (peft.type, peft.r, peft.lora_alpha) == ("lora", 4, 8)
    model = trainer.model_unwrapped
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapters = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer.train()
    assert trainer.state.global_step == 2
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in frozen.items())
    assert any(not torch.equal(after[n], p) for n, p in adapters.items())
    assert (tmp_path / "export" / "global_step_2" / "adapter_model.safetensors").is_file()


ARCTIC_TRAINING_DPO_CODE = """
from arctic_training import DPOTrainer


class MarginTrainer(DPOTrainer):
    name = "margin_dpo"

    def loss(self, batch):
        loss = super().loss(batch)
        self.metrics.record("completion_tokens", [float((batch["labels"] != -100).sum())])
        return loss
"""


def test_arctic_trainings_dpo_trainer_class_runs_its_code(tmp_path, pretrained, data_dir):
    """A `DPOTrainer` subclass written for ArcticTraining, its import line changed: `super().loss`,
    `self.metrics.record` (logged with the step's record)."""
    code = ARCTIC_TRAINING_DPO_CODE.replace("from arctic_training", "from arctic_like.arctic_training")
    (tmp_path / "train.py").write_text(code)
    recipe = dpo_recipe(tmp_path, pretrained, data_dir, type="margin_dpo", train_iters=2)
    try:
        trainer = build_trainer(load_recipe(recipe))  # train.py beside the recipe is imported
        assert type(trainer).__name__ == "MarginTrainer" and trainer.config.type == "margin_dpo"
        trainer.train()
    finally:
        module = sys.modules.pop("train", None)
        if module is not None:
            registry.unregister(module.MarginTrainer)
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2 and all(entry["completion_tokens"] > 0 for entry in logs)
    assert logs[0]["loss"] == pytest.approx(0.693147, abs=1e-5)
