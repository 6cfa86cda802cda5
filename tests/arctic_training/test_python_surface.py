"""Code written for ArcticTraining runs with only its import line changed: a custom trainer with `loss` and
`step` overrides (`self.model(**batch)`, `self.model.backward`, `self.model.step()`, `self.global_step`),
factories declared by type hints, ArcticTraining's callback signatures (`save(model)`,
`create_optimizer(model, optimizer_config)`), and a `post-load` filter on tokenized rows."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import transformers
import yaml

from arctic_like import registry
from arctic_like.config import build_trainer, load_recipe

ARCTIC_TRAINING_CODE = """
from arctic_training import (
    FusedAdamOptimizerFactory,
    HFCheckpointEngine,
    HFModelFactory,
    SFTDataFactory,
    SFTTrainer,
    logger,
)

EVENTS = []


def keep_fitting(self, dataset):
    # ArcticTraining's SFT length filter: post-load sees tokenized rows
    EVENTS.append(("post-load", len(dataset), sorted(dataset.column_names)[:2]))
    return dataset.filter(lambda row: len(row["input_ids"]) <= self.config.max_length)


class TinyDataFactory(SFTDataFactory):
    name = "tiny_data"
    callbacks = [("post-load", keep_fitting)]


class TinyModelFactory(HFModelFactory):
    name = "tiny_model"

    def post_create_model_callback(self, model):
        EVENTS.append(("post-create-model", type(model).__name__))
        return model


class TinyOptimizerFactory(FusedAdamOptimizerFactory):
    name = "tiny_optimizer"

    def pre_create_optimizer_callback(self, model, optimizer_config):
        EVENTS.append(("pre-create-optimizer", type(model).__name__, optimizer_config.learning_rate))
        return model, optimizer_config


def before_save(self, model):
    EVENTS.append(("pre-save", self.trainer.global_step, type(model.module).__name__))
    return model


class TinyCheckpointEngine(HFCheckpointEngine):
    name = "tiny_export"
    callbacks = [("pre-save", before_save)]


def after_step(self):
    EVENTS.append(("post-step", self.global_step, self.train_batch_idx, self.gas_boundary))


class TinyTrainer(SFTTrainer):
    name = "tiny_trainer"
    data_factory: TinyDataFactory
    model_factory: TinyModelFactory
    optimizer_factory: TinyOptimizerFactory
    checkpoint_engine: TinyCheckpointEngine
    callbacks = [("post-step", after_step)]

    def loss(self, batch):
        outputs = self.model(**batch, use_cache=False)
        return outputs.loss

    def step(self, batch):
        self.model.train()
        loss = self.loss(batch)
        self.model.backward(loss)
        self.model.step()
        self.checkpoint()
        self.global_step = self.model.global_steps
        logger.info("global step %d", self.global_step)
"""


def recipe(root: Path, pretrained: Path, data_dir: Path, trainer: str) -> dict:
    return {
        "type": trainer,
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "train_iters": 3,
        "model": {"name_or_path": str(pretrained), "disable_activation_checkpoint": True},
        "data": {
            "sources": [
                {
                    "type": "huggingface_instruct",
                    "name_or_path": str(data_dir / "chat"),
                    "sample_count": 16,
                    "role_mapping": {"user": "question", "assistant": "answer"},
                }
            ],
            "max_length": 64,
            "cache_dir": str(root / "cache"),
        },
        "optimizer": {"learning_rate": 1e-2},
        "checkpoint": [{"output_dir": str(root / "export"), "save_every_n_steps": 2}],
    }


@pytest.fixture
def at_code(tmp_path: Path):
    """The ArcticTraining code as ``train.py`` beside the recipe, its import line changed; afterwards its
    classes leave the registry (other tests list the registered names)."""
    code = ARCTIC_TRAINING_CODE.replace(
        "from arctic_training import", "from arctic_like.arctic_training import"
    )
    (tmp_path / "train.py").write_text(textwrap.dedent(code))
    yield tmp_path
    module = sys.modules.pop("train", None)
    for value in vars(module).values() if module is not None else ():
        if isinstance(value, type) and value.__module__ == "train" and "name" in value.__dict__:
            registry.unregister(value)


def test_arctic_training_code_runs_with_its_import_changed(at_code, pretrained, data_dir):
    path = at_code / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe(at_code, pretrained, data_dir, "tiny_trainer")))
    trainer = build_trainer(load_recipe(path))  # train.py beside the recipe is imported (no code: key)
    events = importlib.import_module("train").EVENTS
    assert type(trainer.data_factory).__name__ == "TinyDataFactory"
    assert isinstance(trainer.model, transformers.PreTrainedModel)  # the engine view passes for the model
    assert trainer.model.module is trainer.model_unwrapped
    trainer.train()
    assert events == [
        ("post-load", 16, ["attention_mask", "input_ids"]),
        ("post-create-model", "LlamaForCausalLM"),
        ("pre-create-optimizer", "LlamaForCausalLM", 1e-2),
        ("post-step", 0, 1, False),
        ("post-step", 1, 2, True),
        ("post-step", 1, 3, False),
        ("pre-save", 2, "LlamaForCausalLM"),
        ("post-step", 2, 4, True),
        ("post-step", 2, 5, False),
        ("post-step", 3, 6, True),
    ]
    assert sorted(p.name for p in (at_code / "export").iterdir()) == ["global_step_2", "latest"]


def test_the_arctic_training_step_trains_as_ours(at_code, pretrained, data_dir, tmp_path_factory):
    """The same losses and weights, step by step, whether the micro-batch runs through our `step` or through
    ArcticTraining's (`self.model.backward`, `self.model.step()`)."""
    runs = {}
    for name in ("tiny_trainer", "sft"):
        root = tmp_path_factory.mktemp(name)
        path = (at_code if name == "tiny_trainer" else root) / f"{name}.yaml"
        config = recipe(root, pretrained, data_dir, name)
        config["code"] = str(at_code / "train.py")
        config["data"]["sources"][0]["type"] = "huggingface_instruct"
        path.write_text(yaml.safe_dump(config))
        trainer = build_trainer(path)
        trainer.train()
        runs[name] = trainer
    ours, theirs = runs["sft"], runs["tiny_trainer"]
    losses = {name: [e["loss"] for e in t.state.log_history if "loss" in e] for name, t in runs.items()}
    assert len(losses["sft"]) == 3 and losses["tiny_trainer"] == pytest.approx(losses["sft"], rel=1e-6)
    for a, b in zip(ours.model.parameters(), theirs.model_unwrapped.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_step_before_backward_is_an_error(at_code, pretrained, data_dir):
    code = (at_code / "train.py").read_text().replace("        self.model.backward(loss)\n", "")
    (at_code / "train.py").write_text(code)
    path = at_code / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe(at_code, pretrained, data_dir, "tiny_trainer")))
    trainer = build_trainer(path)
    with pytest.raises(RuntimeError, match=r"self\.model\.step\(\) was called before self\.model\.backward"):
        trainer.train()


def test_native_names_arctic_training_code_reads(tmp_path, pretrained, data_dir):
    """ArcticTraining's attribute names on our own classes: trainer and factories."""
    path = tmp_path / "recipe.yaml"
    config = recipe(tmp_path, pretrained, data_dir, "sft")
    path.write_text(yaml.safe_dump(config))
    trainer = build_trainer(path)
    assert trainer.global_step == 0 and trainer.epoch_idx == 0 and not trainer.training_finished
    trainer.global_step = 5
    assert trainer.state.global_step == 5 and trainer.global_step_this_run == 5
    trainer.global_step = 0
    assert trainer.model_unwrapped is trainer.model and trainer.training_horizon == 3
    for part in (
        trainer.model_factory,
        trainer.tokenizer_factory,
        trainer.scheduler_factory,
        trainer.data_factory,
        trainer.checkpoint_engines[0],
    ):
        assert (part.device, part.world_size, part.global_rank, part.local_rank) == (trainer.device, 1, 0, 0)
    assert trainer.data_factory.micro_batch_size == 2
    assert trainer.data_factory.sources()[0].world_size == 1
    trainer.train()
    assert trainer.training_finished and trainer.epoch_finished
