"""`model.config` checks: every key known to the model type's config class, and the size estimate."""

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoConfig, AutoModelForCausalLM

from arctic_like.model import HFModelConfig
from arctic_like.model.architecture import (
    available_memory,
    build_config,
    count_parameters,
    format_bytes,
    training_memory,
)
from tests.tiny import TINY_MODEL


def test_a_misspelled_key_is_an_error_with_the_close_match():
    with pytest.raises(
        ValidationError,
        match=r"unknown key 'hidden_sise' for model_type 'llama' \(LlamaConfig\)\. Did you mean "
        r"'hidden_size'\? Fix: correct or remove the key",
    ):
        HFModelConfig(config={**TINY_MODEL, "hidden_sise": 16})
    with pytest.raises(ValidationError, match=r"unknown key 'sliding_window' for model_type 'llama'"):
        HFModelConfig(config={**TINY_MODEL, "sliding_window": 8})  # a key of other families only


def test_keys_the_config_class_takes_under_other_names_are_accepted():
    assert build_config({**TINY_MODEL, "rope_theta": 5e5}).rope_parameters["rope_theta"] == 5e5  # legacy name
    gpt2 = build_config({"model_type": "gpt2", "hidden_size": 32, "num_hidden_layers": 1, "n_head": 2})
    assert (gpt2.n_embd, gpt2.n_layer) == (32, 1)  # attribute_map aliases


def test_build_config_returns_a_fresh_copy_each_time():
    first = build_config(TINY_MODEL)
    first.vocab_size = 7
    assert build_config(TINY_MODEL).vocab_size != 7


@pytest.mark.parametrize(
    "options",
    [TINY_MODEL, {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 50}],
    ids=["llama", "gpt2"],
)
def test_the_parameter_count_is_the_built_models(options):
    config = AutoConfig.for_model(**options)
    assert (
        count_parameters(build_config(options)) == AutoModelForCausalLM.from_config(config).num_parameters()
    )
    assert count_parameters(build_config(options), vocab_size=10) < count_parameters(build_config(options))


def test_memory_arithmetic():
    assert training_memory(1000, torch.float32) == 16_000
    assert training_memory(1000, torch.bfloat16) == 8_000
    assert (format_bytes(512), format_bytes(1536), format_bytes(3 * 2**30)) == ("512 B", "1.5 KiB", "3.0 GiB")
    limit, where = available_memory()
    assert limit > 0 and where in ("available RAM", "the memory of GPU 0")


def test_check_memory_can_be_switched_off(monkeypatch):
    from arctic_like.model import huggingface

    monkeypatch.setattr(huggingface, "available_memory", lambda: (1000, "available RAM"))
    with pytest.raises(ValidationError, match=r"more than the 1000 B of available RAM"):
        HFModelConfig(config=TINY_MODEL)
    assert HFModelConfig(config=TINY_MODEL, check_memory=False).check_memory is False
    assert HFModelConfig(name_or_path=".").name_or_path  # a saved model's size is not estimated
