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


def test_vocab_from_tokenizer_can_be_disabled_but_special_ids_still_follow_the_tokenizer(tokenizer):
    config = HFModelConfig(config={**LLAMA, "vocab_size": 40}, vocab_from_tokenizer=False)
    model_config = HFModelFactory(SimpleNamespace(tokenizer=tokenizer), config).create_config()
    assert model_config.vocab_size == 40
    assert (model_config.pad_token_id, model_config.bos_token_id, model_config.eos_token_id) == (0, 2, 3)


def test_special_ids_set_in_the_config_must_match_the_tokenizer(tokenizer):
    config = HFModelConfig(config={**LLAMA, "eos_token_id": 7})
    with pytest.raises(
        ValueError,
        match=r"tokenizer the run's tokenizer does not match model built from model\.config: the tokenizer's "
        r"eos_token_id is 3 but the model's config says 7\. Fix: .* or remove vocab_size and the pad/bos/eos",
    ):
        HFModelFactory(SimpleNamespace(tokenizer=tokenizer), config).create_config()


def test_a_vocab_smaller_than_the_tokenizer_is_an_error(tokenizer):
    config = HFModelConfig(config={**LLAMA, "vocab_size": 10}, vocab_from_tokenizer=False)
    with pytest.raises(ValueError, match=r"the tokenizer has 16 tokens but the model has embeddings for 10"):
        HFModelFactory(SimpleNamespace(tokenizer=tokenizer), config).create_config()


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_attn_implementation(tokenizer, implementation):
    config = HFModelConfig(config=LLAMA, attn_implementation=implementation)
    model = HFModelFactory(SimpleNamespace(tokenizer=tokenizer), config)()
    assert model.config._attn_implementation == implementation


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


def test_a_bigger_tokenizer_is_an_error_unless_resizing_is_asked_for(tmp_path, tokenizer):
    model = HFModelFactory(SimpleNamespace(tokenizer=tokenizer), HFModelConfig(config=LLAMA))()
    model.save_pretrained(tmp_path / "m")
    bigger = CharTokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig(texts=["0123456789+=abcdef"]))()
    path = str(tmp_path / "m")
    with pytest.raises(
        ValueError,
        match=r"tokenizer the run's tokenizer does not match model '.*m': the tokenizer has 22 tokens but "
        r"the model has embeddings for 16\. Fix: use the model's own tokenizer .*resize_token_embeddings",
    ):
        HFModelFactory(SimpleNamespace(tokenizer=bigger), HFModelConfig(name_or_path=path))()
    resized = HFModelFactory(
        SimpleNamespace(tokenizer=bigger), HFModelConfig(name_or_path=path, resize_token_embeddings=True)
    )()
    assert resized.get_input_embeddings().num_embeddings == len(bigger) == 22


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


def test_unknown_model_type_is_a_short_message_with_close_matches():
    with pytest.raises(
        ValidationError,
        match=r"model_type 'lama' is not a model type transformers knows\. Did you mean 'llama'",
    ) as error:
        HFModelConfig(config={"model_type": "lama"})
    assert len(str(error.value)) < 500
    with pytest.raises(
        ValidationError, match=r"model_type 't5' has no causal language model in transformers"
    ):
        HFModelConfig(config={"model_type": "t5"})


def test_missing_model_directory(tmp_path):
    with pytest.raises(
        ValidationError,
        match=r"directory '.*missing' does not exist\. Fix: correct model\.name_or_path",
    ):
        HFModelConfig(name_or_path=str(tmp_path / "missing"))


def test_base_factory_requires_implementation():
    with pytest.raises(NotImplementedError, match="must implement create_config"):
        ModelFactory(SimpleNamespace(), HFModelConfig(config=LLAMA))()
