import pytest
from pydantic import ValidationError

from arctic_like.config import (
    CallbackSpec,
    DataConfig,
    TrainerConfig,
    factory_choice,
    import_code_file,
    import_object,
    resolve_factory,
    trainer_config_class,
)
from arctic_like.data import CausalDataFactory, SFTDataConfig, SFTDataFactory
from arctic_like.model import HFModelConfig, ModelFactory
from arctic_like.optimizer import AdamWConfig, SGDConfig
from arctic_like.registry import RegistryError
from arctic_like.scheduler import CosineSchedulerFactory, WSDSchedulerConfig
from arctic_like.tokenizer import (
    BPETokenizerConfig,
    BPETokenizerFactory,
    CharTokenizerFactory,
    TokenizerFactory,
)
from tests.config.fakes import FakeCausal, FakeSFT, FakeSFTConfig, Restricted

TINY = {"config": {"model_type": "llama", "hidden_size": 32}}


def test_defaults_come_from_the_trainer_class_attributes():
    config = TrainerConfig(model=TINY)
    assert config.type == "causal"
    assert config.tokenizer.type == "char"
    assert config.data.type == "causal"
    assert config.model.type == "huggingface" and isinstance(config.model, HFModelConfig)
    assert isinstance(config.optimizer, AdamWConfig) and config.optimizer.type == "adamw"
    assert config.scheduler.type == "cosine"
    assert config.checkpoint == [] and config.callbacks == []


def test_type_selects_the_factory_whose_config_validates_the_part():
    config = TrainerConfig(
        model=TINY,
        tokenizer={"type": "bpe", "vocab_size": "1k"},
        optimizer={"type": "sgd", "momentum": 0.9},
        scheduler={"type": "wsd", "decay_ratio": "20%"},
    )
    assert isinstance(config.tokenizer, BPETokenizerConfig) and config.tokenizer.vocab_size == 1000
    assert isinstance(config.optimizer, SGDConfig)
    assert isinstance(config.scheduler, WSDSchedulerConfig) and config.scheduler.decay_ratio == 0.2


def test_fields_of_another_factory_are_rejected_with_path():
    with pytest.raises(ValidationError, match=r"tokenizer\.vocab_size\n  Extra inputs are not permitted"):
        TrainerConfig(model=TINY, tokenizer={"type": "char", "vocab_size": 100})


def test_unknown_part_type_names_base_and_available():
    with pytest.raises(
        ValidationError, match=r"model\.type\n  no ModelFactory named 'hf'; available: huggingface"
    ):
        TrainerConfig(model={"type": "hf"})


def test_trainer_type_picks_its_config_class_and_default_factories():
    assert trainer_config_class(FakeSFT) is FakeSFTConfig
    assert trainer_config_class(FakeCausal) is TrainerConfig
    config = FakeSFTConfig(type="sft", model=TINY, prompt_template="Q: {prompt}")
    assert isinstance(config.data, SFTDataConfig) and config.data.packing is False
    assert config.factory_class("data") is SFTDataFactory
    assert config.trainer_class() is FakeSFT


def test_unknown_trainer_type():
    with pytest.raises(ValidationError, match=r"no FakeTrainer named 'casual'.*Did you mean 'causal'"):
        TrainerConfig(type="casual")


def test_union_hint_restricts_allowed_factories():
    config = TrainerConfig(type="restricted", model=TINY)
    assert config.tokenizer.type == "bpe"
    assert TrainerConfig(type="restricted", model=TINY, tokenizer={"type": "char"}).tokenizer.type == "char"
    with pytest.raises(
        ValidationError, match=r"no BPETokenizerFactory \| CharTokenizerFactory named 'huggingface'"
    ):
        TrainerConfig(type="restricted", model=TINY, tokenizer={"type": "huggingface", "name_or_path": "x"})
    assert factory_choice(Restricted, "tokenizer") == (
        (BPETokenizerFactory, CharTokenizerFactory),
        BPETokenizerFactory,
    )


def test_hint_without_value_defaults_to_first_named_member():
    class Plain:
        tokenizer_factory: BPETokenizerFactory | CharTokenizerFactory

    assert factory_choice(Plain, "tokenizer") == (
        (BPETokenizerFactory, CharTokenizerFactory),
        BPETokenizerFactory,
    )


def test_no_hint_falls_back_to_the_part_base():
    class Bare:
        pass

    allowed, default = factory_choice(Bare, "model")
    assert allowed == (ModelFactory,) and default is None
    assert resolve_factory(Bare, "tokenizer", "bpe") is BPETokenizerFactory
    with pytest.raises(
        RegistryError,
        match=(  # other tests and doc examples may have registered model factories of their own
            r"no default ModelFactory for 'model'; available: ([\w-]+, )*huggingface[\w, -]*\. "
            r"Fix: set `model.type`"
        ),
    ):
        resolve_factory(Bare, "model", None)


def test_string_annotations_are_evaluated():
    class Annotated:
        tokenizer_factory: "TokenizerFactory"
        data_factory: "type[CausalDataFactory]" = CausalDataFactory

    assert factory_choice(Annotated, "tokenizer")[0] == (TokenizerFactory,)
    assert factory_choice(Annotated, "data") == ((CausalDataFactory,), CausalDataFactory)


def test_factory_class_by_part():
    config = TrainerConfig(model=TINY)
    assert config.factory_class("tokenizer") is CharTokenizerFactory
    assert config.factory_class("scheduler") is CosineSchedulerFactory
    with pytest.raises(KeyError, match="unknown part 'optimiser'"):
        config.factory_class("optimiser")


def test_part_config_instances_are_accepted_and_retyped():
    config = TrainerConfig(
        model=HFModelConfig(config={"model_type": "gpt2"}), data=DataConfig(sources=["addition"])
    )
    assert config.model.type == "huggingface"
    assert config.data.type == "causal"


def test_strategies_follow_steps_like_hf():
    assert TrainerConfig(model=TINY).eval_strategy == "no"
    config = TrainerConfig(model=TINY, eval_steps=5, save_steps="1k")
    assert (config.eval_strategy, config.save_strategy, config.save_steps) == ("steps", "steps", 1000)
    config = TrainerConfig(model=TINY, eval_strategy="steps", logging_steps=7)
    assert config.eval_steps == 7
    with pytest.raises(ValidationError, match="save_strategy is 'steps' but save_steps is not set"):
        TrainerConfig(model=TINY, save_strategy="steps")


def test_trainer_fields_and_human_numbers():
    config = TrainerConfig(
        model=TINY, max_steps="2k", micro_batch_size=8, exit_iteration="1e3", precision="bf16"
    )
    assert config.max_steps == 2000 and config.exit_iteration == 1000
    with pytest.raises(ValidationError, match="device"):
        TrainerConfig(model=TINY, device="tpu")
    with pytest.raises(ValidationError, match="engine"):
        TrainerConfig(model=TINY, engine="jax")
    with pytest.raises(ValidationError, match="micro_batch_size"):
        TrainerConfig(model=TINY, micro_batch_size=0)


def test_callback_specs():
    config = TrainerConfig(
        model=TINY, callbacks=["pkg.mod.Printer", {"path": "pkg.mod:Logger", "kwargs": {"every": 2}}]
    )
    assert config.callbacks == [
        CallbackSpec(path="pkg.mod.Printer"),
        CallbackSpec(path="pkg.mod:Logger", kwargs={"every": 2}),
    ]
    with pytest.raises(ValidationError, match="'not a path' is not an import path"):
        TrainerConfig(model=TINY, callbacks=["not a path"])


def test_checkpoint_entries_use_the_checkpoint_engine_hint(monkeypatch):
    from arctic_like.checkpoint import CheckpointEngine

    config = TrainerConfig(model=TINY, checkpoint=[{"type": "torch", "save_total_limit": 2}, "huggingface"])
    assert [c.type for c in config.checkpoint] == ["torch", "huggingface"]
    assert issubclass(config.factory_class("checkpoint", 1), CheckpointEngine)
    with pytest.raises(ValidationError, match=r"checkpoint\.0\.save_total_limit"):
        TrainerConfig(model=TINY, checkpoint=[{"type": "torch", "save_total_limit": 0}])
    with pytest.raises(ValidationError, match=r"checkpoint\.0\.type\n  no CheckpointEngine named 'pickle'"):
        TrainerConfig(model=TINY, checkpoint=[{"type": "pickle"}])


def test_model_dump_keeps_subclass_fields():
    config = TrainerConfig(model=TINY, tokenizer={"type": "bpe"})
    dumped = config.model_dump()
    assert dumped["tokenizer"]["vocab_size"] == 512
    assert dumped["model"]["config"] == TINY["config"]
    assert TrainerConfig.model_validate(dumped) == config


def test_import_object():
    assert import_object("arctic_like.config:TrainerConfig") is TrainerConfig
    assert import_object("arctic_like.config.TrainerConfig") is TrainerConfig
    with pytest.raises(ImportError, match="has no attribute 'Nope'"):
        import_object("arctic_like.config:Nope")
    with pytest.raises(ImportError, match="is not an import path"):
        import_object("nodots")


def test_import_code_file_registers_and_is_idempotent(tmp_path):
    code = tmp_path / "mycode_abc.py"
    code.write_text(
        "from tests.config.fakes import FakeTrainer\nclass T(FakeTrainer):\n    name = 'from-file'\n"
    )
    module = import_code_file(code)
    assert import_code_file(code) is module
    assert TrainerConfig(type="from-file", model=TINY).trainer_class() is module.T
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_code_file(tmp_path / "missing.py")


def test_factory_config_must_subclass_the_part_config():
    from arctic_like.config import BaseConfig

    class Loose(BaseConfig):
        lr: float = 0.1

    from arctic_like.optimizer import OptimizerFactory

    class BadFactory(OptimizerFactory):
        name = "bad-config-factory"
        config = Loose

    with pytest.raises(
        ValidationError, match=r"BadFactory\.config must be a OptimizerConfig subclass.*Fix: set `config = "
    ):
        TrainerConfig(model=TINY, optimizer={"type": "bad-config-factory"})


def test_part_type_must_be_a_string():
    with pytest.raises(ValidationError, match=r"optimizer\.type\n  type must be a string, got 3"):
        TrainerConfig(model=TINY, optimizer={"type": 3})


def test_part_given_as_a_type_name():
    config = TrainerConfig(model=TINY, optimizer="sgd", scheduler="wsd")
    assert isinstance(config.optimizer, SGDConfig) and config.scheduler.type == "wsd"
    with pytest.raises(ValidationError, match=r"optimizer\n  Input should be a valid dictionary"):
        TrainerConfig(model=TINY, optimizer=["adamw"])
