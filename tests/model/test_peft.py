"""LoRA and other peft methods through ``model.peft``: validation, wrapping, events, what trains, checkpoints,
exact resume and export (adapter or merged, generating the same text)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch
from pydantic import ValidationError

from arctic_like.checkpoint import CheckpointError
from arctic_like.model import HFModelConfig, HFModelFactory, PeftSettings
from arctic_like.tokenizer import CharTokenizerFactory, TrainedTokenizerConfig
from tests.tiny import TINY_MODEL
from tests.trainer.helpers import build, losses

peft = pytest.importorskip("peft")

LORA = {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig(texts=["0123456789+="]))()


def _factory(tokenizer, **model) -> HFModelFactory:
    config = HFModelConfig(config=dict(TINY_MODEL), **model)
    return HFModelFactory(SimpleNamespace(tokenizer=tokenizer), config)


# ---- the recipe section ----------------------------------------------------------------------------------


def test_short_names_map_to_the_peft_config_fields():
    config = PeftSettings(**LORA).build()
    assert isinstance(config, peft.LoraConfig)
    assert (config.r, config.lora_alpha, config.lora_dropout) == (4, 8, 0.1)
    assert config.target_modules == {"q_proj", "v_proj"} and config.task_type == "CAUSAL_LM"
    full_names = PeftSettings(type="LoRA", r=4, lora_alpha=8, modules_to_save=["lm_head"]).build()
    assert full_names.lora_alpha == 8 and full_names.modules_to_save == ["lm_head"]


def test_any_peft_method_by_name():
    ia3 = PeftSettings(type="ia3", target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"])
    assert isinstance(ia3.build(), peft.IA3Config)
    prefix = PeftSettings(type="prefix-tuning", num_virtual_tokens=4)
    assert isinstance(prefix.build(), peft.PrefixTuningConfig)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"type": "lora", "dropuot": 0.1}, r"no field 'dropuot'\. Did you mean 'dropout'\? Fix: use one"),
        ({"type": "lora", "r": "four"}, r"LoraConfig: r: Input should be a valid integer.*\(got 'four'\)"),
        ({"type": "lorra"}, r"unknown peft type 'lorra'\. Did you mean 'lora'\? Fix: use one of .*ia3"),
        ({"type": "lora", "peft_type": "LORA"}, r"peft_type is set by arctic_like.*Fix: remove 'peft_type'"),
        ({"type": "lora", "bias": "some"}, r"LoraConfig: bias: Input should be 'none', 'all' or 'lora_only'"),
    ],
)
def test_bad_sections_name_the_field_and_the_fix(section, message):
    with pytest.raises(ValidationError, match=message):
        HFModelConfig(config=dict(TINY_MODEL), peft=section)


def test_a_recipe_error_points_at_model_peft(tmp_path):
    from arctic_like.config import RecipeError, load_recipe
    from tests.trainer.helpers import tiny_recipe

    message = (
        r"model\.peft: LoraConfig has no field 'alpah'\. Did you mean 'alpha'\? Fix: use one of .*_config\.$"
    )
    with pytest.raises(RecipeError, match=message):
        load_recipe(tiny_recipe(tmp_path, model={"peft": {"type": "lora", "alpah": 8}}))


# ---- wrapping and events ---------------------------------------------------------------------------------


def test_only_the_adapter_trains_and_the_summary_says_so(tokenizer, caplog):
    with caplog.at_level(logging.INFO, logger="arctic_like.model"):
        model = _factory(tokenizer, peft=LORA)()
    assert isinstance(model, peft.PeftModel)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert {n.split(".")[-4] for n in trainable} == {"q_proj", "v_proj"}
    counted = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    assert f"peft LORA: {counted:,} trainable of {total:,} parameters" in caplog.text


def test_factory_events_in_order_and_callbacks_change_the_adapter(tokenizer):
    factory = _factory(tokenizer, peft=LORA)
    trace = []

    def recorder(event):
        return lambda self: trace.append(event)

    for event in ("call", "create-config", "create-model", "create-peft-config", "wrap-model"):
        factory.callbacks.append((f"pre-{event}", recorder(f"pre-{event}")))

    def bigger_rank(self, config):
        config.r = 8
        return config

    def tag(self, model):
        model.tagged = True
        return model

    factory.callbacks.append(("post-create-peft-config", bigger_rank))
    factory.callbacks.append(("post-wrap-model", tag))
    model = factory()
    assert trace == [
        "pre-call",
        "pre-create-config",
        "pre-create-model",
        "pre-create-peft-config",
        "pre-wrap-model",
    ]
    assert model.tagged and model.peft_config["default"].r == 8
    assert model.base_model.model.model.layers[0].self_attn.q_proj.lora_A["default"].weight.shape[0] == 8


def test_without_a_section_no_wrap_unless_a_callback_makes_a_config(tokenizer):
    factory = _factory(tokenizer)
    seen = []
    factory.callbacks.append(("pre-wrap-model", lambda self: seen.append("wrap")))
    assert not isinstance(factory(), peft.PeftModel) and seen == []
    factory.callbacks.append(("post-create-peft-config", lambda self, config: peft.LoraConfig(r=2)))
    assert isinstance(factory(), peft.PeftModel) and seen == ["wrap"]


def test_wrapping_twice_is_refused():
    from arctic_like.model.peft import wrap_with_peft

    layer = torch.nn.Sequential(torch.nn.Linear(4, 4))
    model = peft.get_peft_model(layer, peft.LoraConfig(target_modules=["0"]))
    with pytest.raises(ValueError, match=r"already a peft model.*Fix: remove model\.peft"):
        wrap_with_peft(model, peft.LoraConfig(target_modules=["0"]))


# ---- training --------------------------------------------------------------------------------------------


def test_only_adapter_weights_reach_the_optimizer_and_change(tmp_path):
    trainer = build(tmp_path, model={"peft": LORA}, max_steps=2)
    params = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    named = dict(trainer.model.named_parameters())
    assert {id(p) for p in params} == {id(p) for n, p in named.items() if "lora_" in n}
    before = {n: p.detach().clone() for n, p in named.items()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_B" in n or "lora_A" in n for n in changed)
    assert any("lora_B" in n for n in changed)


def test_lora_with_gradient_checkpointing_and_modules_to_save(tmp_path):
    section = {**LORA, "modules_to_save": ["lm_head"]}
    model = {"peft": section, "gradient_checkpointing": True}
    trainer = build(tmp_path, model=model, max_steps=2)
    base = trainer.model.get_base_model()
    assert getattr(base, "is_activation_checkpointing", None) or base.is_gradient_checkpointing
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert any("lm_head.modules_to_save" in n for n in trainable)
    trainer.train()
    assert all(torch.isfinite(torch.tensor(losses(trainer))))
    lora_b = [p for n, p in trainer.model.named_parameters() if "lora_B" in n]
    assert all(p.abs().sum() > 0 for p in lora_b)  # gradients flowed through the checkpointed layers


# ---- checkpoints -----------------------------------------------------------------------------------------

RESUME = {"micro_batch_size": 2, "epochs": 1, "save_steps": 3, "optimizer": {"lr": 3e-3}}
CKPT = {"checkpoint": [{"type": "torch", "auto_resume": True, "save_end_of_training": False}]}


def test_lora_checkpoint_holds_the_adapter_and_resumes_exactly(tmp_path):
    full = build(tmp_path / "full", model={"peft": LORA}, **RESUME)
    full.train()
    reference = losses(full)
    assert len(reference) == 8

    first = build(tmp_path / "run", model={"peft": LORA}, exit_iteration=3, **RESUME, **CKPT)
    first.train()
    saved = tmp_path / "run" / "out" / "checkpoints" / "checkpoint-3"
    assert not (saved / "model.safetensors").exists()
    adapter = saved / "adapter" / "adapter_model.safetensors"
    assert adapter.stat().st_size < 20_000 and (saved / "adapter" / "adapter_config.json").is_file()

    second = build(tmp_path / "run", model={"peft": LORA}, **RESUME, **CKPT)
    assert second.state.global_step == 3
    second.train()
    assert losses(second) == reference


def test_resume_refuses_another_base_or_a_model_without_adapter(tmp_path):
    first = build(tmp_path, model={"peft": LORA}, max_steps=2, **CKPT)
    first.train()
    first.checkpoint()
    with pytest.raises(CheckpointError, match=r"adapter trained on other base weights.*Fix: load the same"):
        build(tmp_path, model={"peft": LORA}, seed=7, max_steps=2, **CKPT)
    shapes = r"from another model shape \(peft\.peft_model\.PeftModelForCausalLM\).*only in the checkpoint"
    with pytest.raises(CheckpointError, match=shapes):
        build(tmp_path, max_steps=2, **CKPT)


def test_full_weights_checkpoint_is_refused_by_a_lora_run(tmp_path):
    first = build(tmp_path, max_steps=2, **CKPT)
    first.train()
    first.checkpoint()
    with pytest.raises(CheckpointError, match=r"from another model shape \(.*LlamaForCausalLM\)"):
        build(tmp_path, model={"peft": LORA}, max_steps=2, **CKPT)


def _greedy(model, ids: torch.Tensor) -> list[int]:
    model.eval()
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0)
    return out[0, ids.shape[1] :].tolist()


def test_export_adapter_or_merged_model_generate_the_same_text(tmp_path):
    import copy

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    checkpoints = [
        {"type": "huggingface", "output_dir": str(tmp_path / "adapter")},
        {"type": "huggingface", "output_dir": str(tmp_path / "merged"), "merge": True},
    ]
    lora = {**LORA, "dropout": 0.0}
    trainer = build(
        tmp_path, model={"peft": lora}, max_steps=3, optimizer={"lr": 3e-2}, checkpoint=checkpoints
    )
    base_dir = tmp_path / "base"
    copy.deepcopy(trainer.model).unload().save_pretrained(base_dir)  # the base weights, before training
    trainer.train()
    prompt = torch.tensor([[trainer.tokenizer.bos_token_id, *trainer.tokenizer("3+4=")["input_ids"]]])
    expected = _greedy(trainer.model, prompt)

    adapter_dir = tmp_path / "adapter" / "checkpoint-3"
    assert (adapter_dir / "adapter_model.safetensors").is_file()
    assert not (adapter_dir / "model.safetensors").exists()
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged" / "checkpoint-3")
    assert not any("lora" in n for n, _ in merged.named_parameters())
    assert _greedy(with_adapter, prompt) == expected == _greedy(merged, prompt)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    q_merged = merged.model.layers[0].self_attn.q_proj.weight
    assert not torch.allclose(q_merged, base.model.layers[0].self_attn.q_proj.weight)


def test_merge_without_an_adapter_is_an_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"merge: true, but the model has no adapter.*Fix: remove"):
        build(tmp_path, checkpoint=[{"type": "huggingface", "merge": True}])


def test_export_loads_back_into_a_lora_run_and_refuses_a_merged_one(tmp_path):
    first = build(
        tmp_path,
        model={"peft": LORA},
        max_steps=2,
        checkpoint=[
            {"type": "huggingface"},
            {"type": "huggingface", "output_dir": str(tmp_path / "m"), "merge": True},
        ],
    )
    first.train()
    adapter = {n: p.detach().clone() for n, p in first.model.named_parameters() if p.requires_grad}
    again = build(tmp_path, model={"peft": LORA}, max_steps=2, checkpoint=[{"type": "huggingface"}])
    again.checkpoint_engines[0].load(tmp_path / "out" / "huggingface" / "checkpoint-2")
    for name, param in again.model.named_parameters():
        if param.requires_grad:
            assert torch.equal(param, adapter[name]), name
    with pytest.raises(CheckpointError, match=r"is a full \(or merged\) model, but this run trains an"):
        again.checkpoint_engines[0].load(tmp_path / "m" / "checkpoint-2")


def test_overrides_reach_the_peft_fields(tmp_path):
    from arctic_like.config import RecipeError, load_recipe
    from tests.trainer.helpers import tiny_recipe

    recipe = tiny_recipe(tmp_path, model={"peft": LORA})
    config = load_recipe(recipe, overrides=["model.peft.r=16", "model.peft.target_modules=[q_proj]"])
    assert config.model.peft.build().r == 16 and config.model.peft.build().target_modules == {"q_proj"}
    with pytest.raises(RecipeError, match=r"model\.peft: LoraConfig has no field 'rr'\. Did you mean 'r'"):
        load_recipe(recipe, overrides=["model.peft.rr=16"])
