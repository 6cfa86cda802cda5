"""`compile:`: the compiled model trains like the eager one, callbacks still take effect, checkpoints and the
HF export hold the plain module's weights, resume is exact, evaluation does not recompile, and what cannot
be compiled is a recipe error.

The inductor backend compiles C++ with the installed g++ on CPU: the model is compiled once for the whole
module (one layer, 16 wide, fixed-length batches so one graph serves every step); later trainers reuse it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

from arctic_like import registry
from arctic_like.config import RecipeError, build_trainer, load_recipe
from arctic_like.model import HFModelFactory
from tests.trainer.helpers import losses, tiny_recipe

pytestmark = pytest.mark.slow

MODEL = {
    "config": {
        "model_type": "llama",
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32,
    }
}
DATA = {
    "pad_to_max_length": True,
    "sources": [{"type": "addition", "digits": 1, "num_samples": 32, "eval_samples": 8}],
}


def recipe(out: Path, **overrides: Any) -> dict[str, Any]:
    """3 optimizer steps of 2 micro-batches, an evaluation at step 2, a checkpoint at step 2, the HF export
    at the end."""
    checkpoints = [
        {"type": "torch", "save_every_n_steps": 2, "save_end_of_training": False, "auto_resume": True},
        {"type": "huggingface", "save_end_of_training": True},
    ]
    base = {
        "model": MODEL,
        "data": DATA,
        "max_steps": 3,
        "gradient_accumulation_steps": 2,
        "eval_steps": 2,
        "checkpoint": checkpoints,
    }
    return tiny_recipe(out, **{**base, **overrides})


def hide_first_targets(trainer: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pre-step: a new batch whose first three targets of each row are not trained on."""
    labels = batch["labels"].clone()
    labels[:, :3] = -100
    return {**batch, "labels": labels}


def scale_loss(trainer: Any, loss: torch.Tensor) -> torch.Tensor:
    """post-loss: the loss (and so the gradients and the logged loss) times 1.5."""
    return loss * 1.5


def run(out: Path, callbacks: bool = True, **overrides: Any) -> Any:
    trainer = build_trainer(load_recipe(recipe(out, **overrides)))
    if callbacks:
        trainer.callbacks.append(("pre-step", hide_first_targets))
        trainer.callbacks.append(("post-loss", scale_loss))
    trainer.train()
    return trainer


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from torch._dynamo.utils import counters

    root = tmp_path_factory.mktemp("compile")
    eager = run(root / "eager")
    plain = run(root / "plain", callbacks=False)
    compiled = run(root / "compiled", compile=True)
    graphs = counters["stats"]["unique_graphs"]
    shutil.copytree(root / "compiled" / "out" / "checkpoints", root / "resumed" / "out" / "checkpoints")
    resumed = build_trainer(load_recipe(recipe(root / "resumed", compile=True)))
    resumed_from = resumed.state.global_step
    resumed.callbacks.append(("pre-step", hide_first_targets))
    resumed.callbacks.append(("post-loss", scale_loss))
    resumed.train()
    return {
        "root": root,
        "eager": eager,
        "plain": plain,
        "compiled": compiled,
        "graphs": graphs,
        "resumed": resumed,
        "resumed_from": resumed_from,
        "graphs_after_resume": counters["stats"]["unique_graphs"],
    }


def evaluations(trainer: Any) -> list[float]:
    return [entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry]


def test_compiled_losses_match_eager_with_callbacks_taking_effect(runs: dict[str, Any]) -> None:
    eager, compiled, plain = losses(runs["eager"]), losses(runs["compiled"]), losses(runs["plain"])
    assert len(eager) == len(compiled) == 3
    assert compiled == pytest.approx(eager, rel=1e-5)
    assert all(abs(a - b) > 1e-3 for a, b in zip(eager, plain, strict=True))  # the callbacks changed them
    assert evaluations(runs["compiled"]) == pytest.approx(evaluations(runs["eager"]), rel=1e-5)
    for (name, a), b in zip(
        runs["eager"].model.named_parameters(), runs["compiled"].model.parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def test_the_model_is_compiled_once_and_evaluation_runs_it_eagerly(runs: dict[str, Any]) -> None:
    model = runs["compiled"].model
    assert isinstance(model, LlamaForCausalLM) and model._compiled_call_impl is not None
    assert runs["graphs"] == 1  # one graph for training; the evaluation at step 2 did not add one
    assert runs["graphs_after_resume"] == 1  # a new trainer of the same model reuses it


def test_checkpoints_and_the_hf_export_hold_the_plain_weights(runs: dict[str, Any]) -> None:
    out = runs["root"] / "compiled" / "out"
    expected = set(runs["eager"].model.state_dict())
    saved = set(load_file(out / "checkpoints" / "checkpoint-2" / "model.safetensors"))
    assert saved <= expected and "model.embed_tokens.weight" in saved
    assert not any("_orig_mod" in key for key in saved)
    exported = LlamaForCausalLM.from_pretrained(out / "huggingface" / "checkpoint-3")
    for name, value in runs["compiled"].model.state_dict().items():
        assert torch.equal(exported.state_dict()[name], value), name


def test_resume_of_a_compiled_run_is_exact(runs: dict[str, Any]) -> None:
    assert runs["resumed_from"] == 2
    assert losses(runs["resumed"]) == losses(runs["compiled"])  # steps 1-2 restored, step 3 recomputed
    for a, b in zip(runs["resumed"].model.parameters(), runs["compiled"].model.parameters(), strict=True):
        assert torch.equal(a, b)


class GraphBreakingLlama(LlamaForCausalLM):
    """A model torch.compile cannot capture in one graph."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        torch._dynamo.graph_break()
        return super().forward(*args, **kwargs)


class GraphBreakingFactory(HFModelFactory):
    name = "graph-breaking-llama"

    def create_model(self, model_config: Any) -> torch.nn.Module:
        return GraphBreakingLlama(model_config)


registry.unregister(GraphBreakingFactory)  # registered only while this module's tests run


@pytest.fixture(autouse=True, scope="module")
def _graph_breaking_factory() -> Iterator[None]:
    registry.register(GraphBreakingFactory)
    yield
    registry.unregister(GraphBreakingFactory)


def test_a_model_that_cannot_be_compiled_is_a_recipe_error(tmp_path: Path) -> None:
    model = {**MODEL, "type": GraphBreakingFactory.name}
    trainer = build_trainer(load_recipe(recipe(tmp_path, model=model, compile={"fullgraph": True})))
    message = (
        r"compile: torch.compile could not compile GraphBreakingLlama \(backend: inductor, fullgraph: True, "
        r"dynamic: None\): Unsupported: .*Fix: set compile: false to train it eagerly, or fullgraph: false"
    )
    with pytest.raises(RecipeError, match=message):
        trainer.train()
    assert trainer.state.global_step == 0


def test_compile_settings_that_cannot_work_are_refused_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(
        RecipeError, match=r"compile.backend: 'tvmx' is not a torch.compile backend; .*inductor"
    ):
        build_trainer(load_recipe(recipe(tmp_path, compile={"backend": "tvmx"})))
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RecipeError, match=r"inductor backend compiles C\+\+ on CPU.*Fix: install g\+\+"):
        build_trainer(load_recipe(recipe(tmp_path, compile=True)))
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_the_plan_says_the_model_will_be_compiled(tmp_path: Path) -> None:
    from arctic_like.plan import describe_plan

    config = load_recipe(recipe(tmp_path, compile={"mode": "max-autotune", "fullgraph": True}))
    plan = describe_plan(build_trainer(config), "recipe.yaml")
    compiled = "torch.compile (backend: inductor, mode: max-autotune, fullgraph: True)"
    assert f"fp32, 1 process(es), {compiled}" in plan
