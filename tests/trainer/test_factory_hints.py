"""ArcticTraining's way to declare factories: a type hint with no assignment makes the class the default.

The code file below is written as an ArcticTraining user writes one: some factories with a name of their own,
some inheriting the name of the built-in they extend, and a trainer that only annotates its parts.
"""

import sys
import textwrap
from pathlib import Path

import pytest

from arctic_like import build_trainer, load_recipe, registry
from tests.tiny import TINY_MODEL

CODE = """
from arctic_like import SFTTrainer
from arctic_like.checkpoint import HuggingFaceCheckpointEngine
from arctic_like.data import SFTDataFactory
from arctic_like.model import HFModelFactory
from arctic_like.optimizer import AdamWOptimizerFactory
from arctic_like.scheduler import CosineSchedulerFactory
from arctic_like.tokenizer import CharTokenizerFactory

CALLS = []


class MyModelFactory(HFModelFactory):
    name = "my-model"

    def create_model(self, model_config):
        CALLS.append("model")
        return super().create_model(model_config)


class MyTokenizerFactory(CharTokenizerFactory):  # keeps the name 'char'
    def create_tokenizer(self):
        CALLS.append("tokenizer")
        return super().create_tokenizer()


class MyDataFactory(SFTDataFactory):
    name = "my-data"

    def load(self):
        CALLS.append("data")
        return super().load()


class MyOptimizerFactory(AdamWOptimizerFactory):  # keeps the name 'adamw'
    def create_optimizer(self, *args, **kwargs):
        CALLS.append("optimizer")
        return super().create_optimizer(*args, **kwargs)


class MySchedulerFactory(CosineSchedulerFactory):
    name = "my-scheduler"

    def create_scheduler(self, *args, **kwargs):
        CALLS.append("scheduler")
        return super().create_scheduler(*args, **kwargs)


class MyCheckpointEngine(HuggingFaceCheckpointEngine):
    name = "my-export"

    def save(self):
        CALLS.append("checkpoint")
        return super().save()


class MyTrainer(SFTTrainer):
    name = "my-at-trainer"
    tokenizer_factory: MyTokenizerFactory
    data_factory: MyDataFactory
    model_factory: MyModelFactory
    optimizer_factory: MyOptimizerFactory
    scheduler_factory: MySchedulerFactory
    checkpoint_engine: MyCheckpointEngine
"""


@pytest.fixture
def recipe(tmp_path):
    (tmp_path / "at_factories.py").write_text(textwrap.dedent(CODE))
    yield {
        "type": "my-at-trainer",
        "code": str(tmp_path / "at_factories.py"),
        "model": {"config": TINY_MODEL},
        "data": {"sources": [{"type": "addition", "num_samples": 64, "eval_samples": 0}], "max_length": 16},
        "checkpoint": [{}],
        "micro_batch_size": 8,
        "max_steps": 2,
        "device": "cpu",
        "progress": False,
        "output_dir": str(tmp_path / "run"),
    }
    module = sys.modules.pop("at_factories", None)
    for value in vars(module).values() if module is not None else ():
        if isinstance(value, type) and value.__module__ == module.__name__ and "name" in value.__dict__:
            registry.unregister(value)  # leave the registry as other tests expect it


def test_hint_only_declarations_are_the_defaults(recipe):
    config = load_recipe(recipe)
    module = sys.modules["at_factories"]
    expected = {
        "tokenizer": module.MyTokenizerFactory,
        "data": module.MyDataFactory,
        "model": module.MyModelFactory,
        "optimizer": module.MyOptimizerFactory,
        "scheduler": module.MySchedulerFactory,
        "checkpoint": module.MyCheckpointEngine,
    }
    assert {part: config.factory_class(part) for part in expected} == expected
    assert [config.tokenizer.type, config.model.type, config.optimizer.type] == ["char", "my-model", "adamw"]

    trainer = build_trainer(config)
    trainer.train()
    assert set(module.CALLS) == {"data", "tokenizer", "model", "optimizer", "scheduler", "checkpoint"}
    assert (Path(recipe["output_dir"]) / "huggingface" / "checkpoint-2" / "config.json").is_file()


def test_naming_the_inherited_type_still_picks_the_hinted_class(recipe):
    config = load_recipe({**recipe, "tokenizer": {"type": "char"}, "optimizer": {"type": "adamw"}})
    module = sys.modules["at_factories"]
    assert config.factory_class("tokenizer") is module.MyTokenizerFactory
    assert config.factory_class("optimizer") is module.MyOptimizerFactory


def test_a_name_outside_the_hint_is_an_error(recipe):
    with pytest.raises(ValueError, match=r"model\.type: no MyModelFactory named 'huggingface'"):
        load_recipe({**recipe, "model": {"type": "huggingface", "config": TINY_MODEL}})
