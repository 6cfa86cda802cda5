"""Engine selection, device and precision checks, and DeepSpeed config filling."""

from types import SimpleNamespace

import pytest
import torch

from arctic_like.engine import (
    DeepSpeedEngine,
    TorchEngine,
    build_deepspeed_config,
    engine_class,
    resolve_device,
)


def _config(**overrides):
    base = {
        "micro_batch_size": 4,
        "gradient_accumulation_steps": 2,
        "max_grad_norm": 1.0,
        "precision": "fp32",
        "deepspeed": {},
        "device": "cpu",
    }
    return SimpleNamespace(**{**base, **overrides})


def test_engine_class_lookup():
    assert engine_class("torch") is TorchEngine and engine_class("deepspeed") is DeepSpeedEngine
    with pytest.raises(ValueError, match=r"no engine named 'jax'; available: deepspeed, torch"):
        engine_class("jax")


def test_resolve_device_cpu_and_missing_cuda():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ValueError, match=r"device: cuda was requested but no CUDA GPU"):
            resolve_device("cuda")


def test_fp16_needs_cuda():
    trainer = SimpleNamespace(config=_config(precision="fp16"), device=torch.device("cpu"))
    with pytest.raises(ValueError, match=r"precision: fp16 needs a CUDA device"):
        TorchEngine(trainer)


def test_torch_engine_accumulates_and_clips():
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = SimpleNamespace(config=_config(), device=torch.device("cpu"))
    engine = TorchEngine(trainer)
    engine.prepare(model, optimizer, None)
    x = torch.ones(2, 3)
    for boundary in (False, True):
        with engine.accumulate(boundary):
            engine.backward(model(x).sum() * 10)
    grad = model.weight.grad.clone()
    torch.testing.assert_close(grad, torch.full((1, 3), 20.0))  # two halves of 2 * 10 * 2 rows
    expected = float(torch.cat([grad.flatten(), model.bias.grad]).norm())
    assert float(engine.clip_grad_norm(1.0)) == pytest.approx(expected)
    assert float(torch.cat([model.weight.grad.flatten(), model.bias.grad]).norm()) == pytest.approx(1.0)
    engine.step()
    engine.end_step()
    assert model.weight.grad is None and engine.unwrap() is model


def test_bf16_autocast_on_cpu():
    trainer = SimpleNamespace(config=_config(precision="bf16"), device=torch.device("cpu"))
    engine = TorchEngine(trainer)
    model = torch.nn.Linear(4, 4)
    engine.prepare(model, torch.optim.SGD(model.parameters(), lr=0.1), None)
    with engine.autocast():
        assert model(torch.ones(1, 4)).dtype == torch.bfloat16


def test_deepspeed_config_filled_from_recipe():
    ds = build_deepspeed_config(_config(deepspeed={"zero_optimization": {"stage": 1}}), world_size=2)
    assert ds["train_micro_batch_size_per_gpu"] == 4
    assert ds["gradient_accumulation_steps"] == 2
    assert ds["train_batch_size"] == 16
    assert ds["gradient_clipping"] == 1.0
    assert ds["bf16"] == {"enabled": False} and ds["fp16"] == {"enabled": False}
    assert ds["zero_optimization"] == {"stage": 1}
    auto = build_deepspeed_config(_config(precision="bf16", deepspeed={"train_batch_size": "auto"}), 1)
    assert auto["train_batch_size"] == 8 and auto["bf16"]["enabled"] is True


@pytest.mark.parametrize(
    ("deepspeed", "precision", "match"),
    [
        (
            {"train_micro_batch_size_per_gpu": 8},
            "fp32",
            r"train_micro_batch_size_per_gpu is 8 .*micro_batch_size",
        ),
        ({"gradient_accumulation_steps": 4}, "fp32", r"deepspeed.gradient_accumulation_steps is 4"),
        ({"train_batch_size": 3}, "fp32", r"deepspeed.train_batch_size is 3 but"),
        ({"gradient_clipping": 0.5}, "fp32", r"deepspeed.gradient_clipping is 0.5 .*max_grad_norm"),
        (
            {"bf16": {"enabled": True}},
            "fp32",
            r"deepspeed.bf16.enabled is True but .*precision is 'fp32'",
        ),
        ({"fp16": {"enabled": False}}, "fp16", r"deepspeed.fp16.enabled is False"),
        ({"optimizer": {"type": "Adam"}}, "fp32", r"deepspeed.optimizer is set, but arctic_like builds"),
        ({"scheduler": {"type": "WarmupLR"}}, "fp32", r"deepspeed.scheduler is set"),
    ],
)
def test_deepspeed_contradictions_rejected(deepspeed, precision, match):
    with pytest.raises(ValueError, match=match):
        build_deepspeed_config(_config(deepspeed=deepspeed, precision=precision), world_size=1)
