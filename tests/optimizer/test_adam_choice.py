"""Which Adam a run gets: by engine, device and offload, as in ArcticTraining, or forced by the recipe."""

from types import SimpleNamespace

import pytest
import torch

from arctic_like.config import RecipeError, load_recipe
from arctic_like.optimizer import (
    AdamWConfig,
    AdamWOptimizerFactory,
    CPUAdamConfig,
    FusedAdamConfig,
    choose_adam,
    weight_decay_groups,
)
from tests.tiny import TINY_MODEL

CPU, GPU = torch.device("cpu"), torch.device("cuda", 0)
ZERO2 = {"zero_optimization": {"stage": 2}}
OFFLOAD = {"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}}}
NVME = {"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "nvme", "nvme_path": "/nvme"}}}
NOT_OFFLOADED = {"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "none"}}}
LENIENT = {**OFFLOAD, "zero_force_ds_cpu_optimizer": False}


@pytest.mark.parametrize(
    ("requested", "engine", "deepspeed", "device", "expected"),
    [
        ("auto", "torch", {}, CPU, "torch"),
        ("auto", "torch", {}, GPU, "torch"),
        ("auto", "deepspeed", ZERO2, CPU, "torch"),
        ("auto", "deepspeed", ZERO2, GPU, "fused_adam"),
        ("auto", "deepspeed", OFFLOAD, CPU, "cpu_adam"),
        ("auto", "deepspeed", OFFLOAD, GPU, "cpu_adam"),
        ("auto", "deepspeed", NVME, GPU, "cpu_adam"),
        ("auto", "deepspeed", NOT_OFFLOADED, GPU, "fused_adam"),
        ("torch", "deepspeed", ZERO2, GPU, "torch"),
        ("torch", "deepspeed", LENIENT, GPU, "torch"),
        ("cpu_adam", "torch", {}, CPU, "cpu_adam"),
        ("cpu_adam", "deepspeed", ZERO2, CPU, "cpu_adam"),
        ("cpu_adam", "deepspeed", OFFLOAD, GPU, "cpu_adam"),
        ("fused_adam", "deepspeed", ZERO2, GPU, "fused_adam"),
        ("fused_adam", "torch", {}, GPU, "fused_adam"),
    ],
)
def test_choice(requested, engine, deepspeed, device, expected):
    assert choose_adam(requested, engine=engine, deepspeed=deepspeed, device=device) == expected


@pytest.mark.parametrize(
    ("requested", "deepspeed", "device", "match"),
    [
        (
            "torch",
            OFFLOAD,
            CPU,
            r"optimizer.implementation is 'torch', but deepspeed.zero_optimization.offload_optimizer "
            r"\(device cpu\) runs the optimizer step on the CPU.*"
            r"Fix: set optimizer.implementation: auto or cpu_adam",
        ),
        ("fused_adam", NVME, GPU, r"optimizer.implementation is 'fused_adam', but .*\(device nvme\)"),
        (
            "fused_adam",
            ZERO2,
            CPU,
            r"fused_adam is DeepSpeed's CUDA kernel, but this run's device is cpu. "
            r"Fix: set optimizer.implementation: auto, torch or cpu_adam",
        ),
        (
            "cpu_adam",
            ZERO2,
            GPU,
            r"cpu_adam steps parameters held on the CPU, but this run keeps them on the GPU. Fix: offload",
        ),
    ],
)
def test_impossible_choices_are_errors(requested, deepspeed, device, match):
    with pytest.raises(ValueError, match=match):
        choose_adam(requested, engine="deepspeed", deepspeed=deepspeed, device=device)


def test_the_factory_asks_the_trainer_for_engine_device_and_offload():
    model = torch.nn.Linear(3, 3)
    trainer = SimpleNamespace(
        model=model, device=CPU, config=SimpleNamespace(engine="deepspeed", deepspeed=ZERO2)
    )
    assert isinstance(AdamWOptimizerFactory(trainer, AdamWConfig())(), torch.optim.AdamW)
    with pytest.raises(ValueError, match=r"fused_adam is DeepSpeed's CUDA kernel"):
        AdamWOptimizerFactory(trainer, FusedAdamConfig())()


def _recipe(optimizer, **extra):
    return {
        "tokenizer": {"type": "char"},
        "data": {"sources": [{"type": "addition", "num_samples": 40, "eval_samples": 0}]},
        "model": {"type": "huggingface", "config": TINY_MODEL},
        "optimizer": optimizer,
        **extra,
    }


def test_arctic_training_type_names_force_an_implementation():
    config = load_recipe(_recipe({"type": "cpu_adam", "lr": 1e-4}))
    assert isinstance(config.optimizer, CPUAdamConfig) and config.optimizer.implementation == "cpu_adam"
    fused = load_recipe(_recipe("fused_adam"))
    assert isinstance(fused.optimizer, FusedAdamConfig) and fused.optimizer.implementation == "fused_adam"
    assert load_recipe(_recipe({"type": "adamw"})).optimizer.implementation == "auto"
    forced = load_recipe(_recipe({"type": "adamw", "implementation": "cpu_adam"}))
    assert forced.optimizer.implementation == "cpu_adam"


@pytest.mark.parametrize(
    ("optimizer", "match"),
    [
        (
            {"type": "adamw", "implementation": "apex"},
            r"optimizer.implementation.*'auto', 'torch', 'fused_adam'",
        ),
        ({"type": "cpu_adam", "implementation": "torch"}, r"optimizer.implementation.*'cpu_adam'"),
    ],
)
def test_unknown_or_contradicting_implementation_is_a_recipe_error(optimizer, match):
    with pytest.raises(RecipeError, match=match):
        load_recipe(_recipe(optimizer))


def test_zero3_partitioned_parameters_are_grouped_by_their_full_shape():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    for param in model.parameters():  # what deepspeed.zero.Init leaves: an empty local tensor, the real shape
        param.ds_shape = param.shape
        param.data = torch.empty(0)
    decay, no_decay = weight_decay_groups(model, 0.1)
    assert [p.ds_shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert len(no_decay["params"]) == 3  # the bias and the norm's weight and bias


def test_the_cli_reports_an_impossible_choice_as_a_recipe_error(tmp_path, capsys):
    import yaml

    from arctic_like.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump({**_recipe("adamw"), "device": "cpu", "output_dir": str(tmp_path / "out")})
    )
    assert main(["train", str(recipe), "--set", "optimizer.implementation=fused_adam"]) == 2
    err = capsys.readouterr().err
    assert "arctic-like: error: " in err and "fused_adam is DeepSpeed's CUDA kernel" in err
    assert "Traceback" not in err
