"""`load_recipe` + `build_trainer` with the real trainer classes."""

import pytest

from arctic_like.config import RecipeError, build_trainer, load_recipe

TINY_MODEL = {
    "type": "huggingface",
    "config": {
        "model_type": "llama",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "max_position_embeddings": 64,
    },
}


@pytest.fixture(autouse=True)
def fake_trainer_base():
    """Overrides the directory's fixture: these tests resolve `type:` among the real trainers."""
    return None


def recipe(tmp_path, **extra):
    return {
        "model": TINY_MODEL,
        "data": {"sources": [{"type": "addition", "num_samples": 64, "eval_samples": 8}], "max_length": 32},
        "micro_batch_size": 4,
        "max_steps": 2,
        "progress": False,
        "device": "cpu",
        "output_dir": str(tmp_path / "out"),
        **extra,
    }


def test_build_and_train_the_causal_trainer(tmp_path):
    from arctic_like.trainer import Trainer

    trainer = build_trainer(load_recipe(recipe(tmp_path), ["optimizer.lr=1e-3", "scheduler.type=wsd"]))
    assert isinstance(trainer, Trainer) and trainer.name == "causal"
    assert type(trainer.data_factory).__name__ == "CausalDataFactory"
    assert trainer.model.config.vocab_size == len(trainer.tokenizer)
    assert trainer.scheduler_factory.name == "wsd"
    assert trainer.optimizer.defaults["lr"] == pytest.approx(1e-3)
    trainer.train()
    assert trainer.state.global_step == 2


def test_sft_trainer_gets_the_sft_data_factory(tmp_path):
    trainer = build_trainer(recipe(tmp_path, type="sft"))
    assert trainer.name == "sft" and type(trainer.data_factory).__name__ == "SFTDataFactory"
    batch = next(iter(trainer.train_dataloader))
    assert (batch["labels"][:, :2] == -100).all()


def test_unknown_trainer_type_lists_the_real_trainers(tmp_path):
    with pytest.raises(
        RecipeError,
        # other tests register trainers of their own, so only the built-in ones are asserted
        match=r"type: no Trainer named 'causel'; available: causal, (.+, )?sft.*Did you mean 'causal'",
    ):
        load_recipe(recipe(tmp_path, type="causel"))


def test_real_trainer_declares_every_part(tmp_path):
    config = load_recipe(recipe(tmp_path, checkpoint=[{"type": "torch"}]))
    assert (config.tokenizer.type, config.data.type, config.optimizer.type, config.scheduler.type) == (
        "char",
        "causal",
        "adamw",
        "cosine",
    )
    assert config.checkpoint[0].type == "torch"


def test_custom_trainer_from_code_file(tmp_path):
    (tmp_path / "my_train_code.py").write_text(
        "from arctic_like.trainer import CausalTrainer\n"
        "from arctic_like.optimizer import SGDOptimizerFactory\n\n\n"
        "def halve(self, loss):\n"
        "    return loss * 0.5\n\n\n"
        "class MyTrainer(CausalTrainer):\n"
        "    name = 'my-trainer'\n"
        "    optimizer_factory = SGDOptimizerFactory\n"
        "    callbacks = [('post-loss', halve)]\n"
    )
    (tmp_path / "recipe.yaml").write_text(
        "code: my_train_code.py\n"
        "type: my-trainer\n"
        "model: {config: {model_type: llama, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1,\n"
        "                 num_attention_heads: 2, num_key_value_heads: 2}}\n"
        "data: {sources: [{type: addition, num_samples: 64, eval_samples: 8}], max_length: 32}\n"
        "micro_batch_size: 4\n"
        "max_steps: 1\n"
        "progress: false\n"
        "device: cpu\n"
        f"output_dir: {tmp_path / 'out'}\n"
    )
    config = load_recipe(tmp_path / "recipe.yaml", ["optimizer.momentum=0.9"])
    assert config.optimizer.type == "sgd" and config.optimizer.momentum == 0.9
    trainer = build_trainer(config)
    assert type(trainer).__name__ == "MyTrainer"
    assert type(trainer.optimizer).__name__ == "SGD"


@pytest.mark.parametrize(
    ("engine", "entry", "expected"),
    [
        ("torch", {}, "torch"),
        ("deepspeed", {}, "deepspeed"),
        ("deepspeed", {"type": "huggingface"}, "huggingface"),
        ("deepspeed", "huggingface", "huggingface"),
    ],
)
def test_checkpoint_type_defaults_to_the_engine(engine, entry, expected):
    model = {"config": {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1}}
    config = load_recipe({"engine": engine, "model": model, "checkpoint": [entry]})
    assert config.checkpoint[0].type == expected
