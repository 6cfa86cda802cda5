"""The DeepSpeed config from the recipe: activation checkpointing, bf16 spellings, offload and its ZeRO stage,
and the engine's checks that need the device or the optimizer (no process group: nothing is initialised)."""

import gc
from types import SimpleNamespace

import pytest
import torch
from transformers.integrations import is_deepspeed_zero3_enabled

from arctic_like.engine import DeepSpeedEngine, build_deepspeed_config

OFFLOAD_OPTIMIZER = {"offload_optimizer": {"device": "cpu"}}


def _config(deepspeed=None, precision="fp32", gradient_checkpointing=False):
    return SimpleNamespace(
        micro_batch_size=2,
        gradient_accumulation_steps=1,
        max_grad_norm=1.0,
        precision=precision,
        deepspeed=deepspeed or {},
        model=SimpleNamespace(gradient_checkpointing=gradient_checkpointing),
        device="cpu",
    )


def _engine(**config):
    return DeepSpeedEngine(SimpleNamespace(config=_config(**config), device=torch.device("cpu")))


def test_activation_checkpointing_follows_model_gradient_checkpointing():
    assert "activation_checkpointing" not in build_deepspeed_config(_config(), 1)
    filled = build_deepspeed_config(_config(gradient_checkpointing=True), 1)
    assert filled["activation_checkpointing"] == {}  # DeepSpeed's defaults
    settings = {"activation_checkpointing": {"partition_activations": True, "profile": True}}
    kept = build_deepspeed_config(_config(settings, gradient_checkpointing=True), 1)
    assert kept["activation_checkpointing"] == {"partition_activations": True, "profile": True}


def test_activation_checkpointing_without_gradient_checkpointing_is_an_error():
    settings = {"activation_checkpointing": {"partition_activations": True}}
    with pytest.raises(
        ValueError,
        match=r"deepspeed.activation_checkpointing is set, but model.gradient_checkpointing is false.*"
        r"Fix: set model.gradient_checkpointing: true",
    ):
        build_deepspeed_config(_config(settings), 1)


def test_bfloat16_spelling_is_read_as_bf16():
    ds = build_deepspeed_config(_config({"bfloat16": {"enabled": True}}, precision="bf16"), 1)
    assert ds["bf16"] == {"enabled": True} and "bfloat16" not in ds
    with pytest.raises(
        ValueError, match=r"deepspeed.bf16.enabled is True but the recipe's precision is 'fp32'"
    ):
        build_deepspeed_config(_config({"bfloat16": {"enabled": True}}), 1)


@pytest.mark.parametrize(
    ("zero", "match"),
    [
        (
            {"stage": 0, **OFFLOAD_OPTIMIZER},
            r"offload_optimizer \(device cpu\) needs ZeRO stage 1, 2 or 3, but the stage is 0",
        ),
        (
            {"stage": 2, "offload_param": {"device": "nvme"}},
            r"offload_param \(device nvme\) needs ZeRO stage 3 .* the stage is 2. Fix: set "
            r"deepspeed.zero_optimization.stage: 3",
        ),
    ],
)
def test_offload_needs_its_zero_stage(zero, match):
    with pytest.raises(ValueError, match=match):
        build_deepspeed_config(_config({"zero_optimization": zero}), 1)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_offload_accepted_where_deepspeed_supports_it(stage):
    zero = {"stage": stage, **OFFLOAD_OPTIMIZER}
    if stage == 3:
        zero["offload_param"] = {"device": "cpu"}
    ds = build_deepspeed_config(_config({"zero_optimization": zero}), 1)
    assert ds["zero_optimization"] == zero
    off = build_deepspeed_config(_config({"zero_optimization": {"offload_param": {"device": "none"}}}), 1)
    assert off["zero_optimization"] == {"offload_param": {"device": "none"}}


def test_cpu_checkpointing_on_a_cpu_device_is_an_error():
    settings = {"activation_checkpointing": {"cpu_checkpointing": True}}
    with pytest.raises(
        ValueError, match=r"cpu_checkpointing moves checkpointed activations from the GPU to the CPU"
    ):
        _engine(deepspeed=settings, gradient_checkpointing=True)


def test_offloaded_optimizer_must_be_a_deepspeed_cpu_optimizer():
    engine = _engine(deepspeed={"zero_optimization": {"stage": 2, **OFFLOAD_OPTIMIZER}})
    model = torch.nn.Linear(2, 2)
    with pytest.raises(
        ValueError,
        match=r"offload_optimizer \(device cpu\) steps the optimizer on the CPU with DeepSpeed's CPU "
        r"optimizers, but the recipe's optimizer is SGD. Fix: use optimizer type adamw",
    ):
        engine.prepare(model, torch.optim.SGD(model.parameters(), lr=0.1), None)


def test_zero3_builds_models_partitioned_and_keeps_transformers_informed():
    zero3 = {"zero_optimization": {"stage": 3}}
    with DeepSpeedEngine.model_init_context(_config(zero3)):
        assert is_deepspeed_zero3_enabled()
    assert not is_deepspeed_zero3_enabled()
    with DeepSpeedEngine.model_init_context(_config({"zero_optimization": {"stage": 2}})):
        assert not is_deepspeed_zero3_enabled()
    engine = _engine(deepspeed=zero3)
    assert is_deepspeed_zero3_enabled()  # while the engine lives, as under HF's Trainer
    del engine
    gc.collect()
    assert not is_deepspeed_zero3_enabled()
