from types import SimpleNamespace

import pytest
import torch
from pydantic import ValidationError
from transformers import LlamaForCausalLM

from arctic_like.model import HFModelConfig, HFModelFactory, ModelFactory
from arctic_like.tokenizer import CharTokenizerFactory, TrainedTokenizerConfig

LLAMA = {
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
}


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig(texts=["0123456789+="]))()


def test_model_from_config_dict_takes_vocab_and_special_ids_from_tokenizer(tokenizer):
    factory = HFModelFactory(SimpleNamespace(tokenizer=tokenizer), HFModelConfig(config=LLAMA))
    model = factory()
    assert isinstance(model, LlamaForCausalLM)
    assert model.config.vocab_size == len(tokenizer) == 16
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 2
    assert (model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id) == (0, 2, 3)
    assert next(model.parameters()).dtype == torch.float32
    out = model(input_ids=torch.tensor([[2, 5, 6]]), labels=torch.tensor([[2, 5, 6]]))
    assert out.loss.ndim == 0


def test_vocab_from_tokenizer_can_be_disabled(tokenizer):
    config = HFModelConfig(config={**LLAMA, "vocab_size": 40}, vocab_from_tokenizer=False)
    assert HFModelFactory(SimpleNamespace(tokenizer=tokenizer), config).create_config().vocab_size == 40


def test_gpt2_and_dtype(tokenizer):
    config = HFModelConfig(
        config={"model_type": "gpt2", "n_embd": 32, "n_layer": 1, "n_head": 2}, dtype="bfloat16"
    )
    model = HFModelFactory(SimpleNamespace(tokenizer=tokenizer), config)()
    assert next(model.parameters()).dtype == torch.bfloat16


def test_model_from_saved_path_with_gradient_checkpointing(tmp_path, tokenizer):
    model = HFModelFactory(SimpleNamespace(tokenizer=tokenizer), HFModelConfig(config=LLAMA))()
    model.save_pretrained(tmp_path / "m")
    config = HFModelConfig(name_or_path=str(tmp_path / "m"), gradient_checkpointing=True)
    loaded = HFModelFactory(SimpleNamespace(tokenizer=tokenizer), config)()
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    flag = (
        "is_activation_checkpointing"
        if hasattr(loaded, "is_activation_checkpointing")
        else "is_gradient_checkpointing"
    )
    assert getattr(loaded, flag)
    assert loaded.config.use_cache is False


def test_saved_model_is_resized_for_a_bigger_tokenizer(tmp_path, tokenizer):
    model = HFModelFactory(SimpleNamespace(tokenizer=tokenizer), HFModelConfig(config=LLAMA))()
    model.save_pretrained(tmp_path / "m")
    bigger = CharTokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig(texts=["0123456789+=abcdef"]))()
    loaded = HFModelFactory(
        SimpleNamespace(tokenizer=bigger), HFModelConfig(name_or_path=str(tmp_path / "m"))
    )()
    assert loaded.get_input_embeddings().num_embeddings == len(bigger) == 22


def test_events_create_config_then_create_model(tokenizer):
    seen = []

    class Recording(HFModelFactory):
        name = "recording-hf"

        def post_create_config_callback(self, model_config):
            seen.append("config")
            model_config.num_hidden_layers = 1
            return model_config

        def post_create_model_callback(self, model):
            seen.append("model")
            return model

    model = Recording(SimpleNamespace(tokenizer=tokenizer), HFModelConfig(config=LLAMA))()
    assert seen == ["config", "model"] and model.config.num_hidden_layers == 1


def test_config_needs_exactly_one_source():
    with pytest.raises(ValidationError, match="give exactly one of name_or_path"):
        HFModelConfig()
    with pytest.raises(ValidationError, match="give exactly one of name_or_path"):
        HFModelConfig(name_or_path="x", config=LLAMA)
    with pytest.raises(ValidationError, match=r"model\.config needs model_type"):
        HFModelConfig(config={"hidden_size": 3})


def test_unknown_model_type_and_missing_path(tmp_path):
    with pytest.raises(ValueError, match=r"model\.config: .*not_a_model"):
        HFModelFactory(SimpleNamespace(), HFModelConfig(config={"model_type": "not_a_model"}))()
    with pytest.raises(
        ValueError, match=r"cannot load a model config from '.*missing'.*Fix: point model\.name_or_path"
    ):
        HFModelFactory(SimpleNamespace(), HFModelConfig(name_or_path=str(tmp_path / "missing")))()


def test_base_factory_requires_implementation():
    with pytest.raises(NotImplementedError, match="must implement create_config"):
        ModelFactory(SimpleNamespace(), HFModelConfig(config=LLAMA))()
