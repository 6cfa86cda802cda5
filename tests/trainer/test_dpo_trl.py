"""arctic_like's DPO and SFT against TRL's ``DPOTrainer`` and ``SFTTrainer``, side by side.

One tiny saved model and one small data set; both frameworks train it for the same steps with the same seed,
batch and hyperparameters (no shuffling, fp32 on CPU), and every per-step number TRL logs for the loss and
the rewards must agree to 1e-4 relative. TRL's side is ``tests/reference/trl_runs.py``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.reference import arctic_runs, tiny, trl_runs

pytest.importorskip("trl")

REL = 1e-4
PAIRS = "tests.reference.tiny:preference_rows"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny.save_pretrained_model(tmp_path_factory.mktemp("tiny") / "model")


def assert_agree(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], keys: tuple[str, ...]) -> None:
    """Same steps; every value within ``REL`` relative (exact zeros, e.g. the first step's rewards, match)."""
    assert [e["step"] for e in ours] == [e["step"] for e in theirs]
    for mine, trl in zip(ours, theirs, strict=True):
        for key in keys:
            close = math.isclose(mine[key], trl[key], rel_tol=REL, abs_tol=1e-7)
            assert close, (mine["step"], key, mine, trl)


DPO_CASES = {
    "sigmoid": ({}, {}),
    "ipo": ({"loss_type": "ipo", "beta": 0.5}, {"loss_type": "ipo", "beta": 0.5}),
    "hinge": ({"loss_type": "hinge"}, {"loss_type": "hinge"}),
    "robust": (
        {"loss_type": "robust", "label_smoothing": 0.1},
        {"loss_type": "robust", "label_smoothing": 0.1},
    ),
    "accumulation": (
        {"micro_batch_size": 2, "gradient_accumulation_steps": 2},
        {"batch_size": 2, "gradient_accumulation_steps": 2},
    ),
    "truncation": ({"data": {"max_length": 12}}, {"max_length": 12}),
    "precomputed": ({"precompute_ref_log_probs": True}, {"precompute_ref_log_probs": True}),
}


@pytest.mark.parametrize("case", list(DPO_CASES))
def test_dpo_matches_trl(case, model_dir, tmp_path):
    ours_settings, trl_settings = DPO_CASES[case]
    theirs = trl_runs.trl_dpo(model_dir, tiny.preference_rows(), tmp_path / "trl", **trl_settings)
    _, ours = arctic_runs.train(arctic_runs.recipe(model_dir, tmp_path / "ours", PAIRS, **ours_settings))
    assert len(ours) == 4
    assert ours[0]["loss"] == pytest.approx(math.log(2)) or case in ("ipo", "hinge", "robust")
    assert ours[-1]["rewards/margins"] > 0  # the policy moved towards the chosen answers
    assert_agree(ours, theirs, trl_runs.DPO_KEYS)


def test_chat_dpo_matches_trl(model_dir, tmp_path):
    theirs = trl_runs.trl_dpo(model_dir, tiny.chat_preference_rows(), tmp_path / "trl")
    rows = "tests.reference.tiny:chat_preference_rows"
    _, ours = arctic_runs.train(arctic_runs.recipe(model_dir, tmp_path / "ours", rows))
    assert_agree(ours, theirs, trl_runs.DPO_KEYS)


def test_lora_dpo_matches_trl(model_dir, tmp_path):
    """LoRA: the reference is the policy with its adapter disabled in both; the same first adapter."""
    from peft import LoraConfig, get_peft_model_state_dict

    from arctic_like.config import build_trainer, load_recipe

    lora = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}
    recipe = arctic_runs.recipe(
        model_dir, tmp_path / "ours", PAIRS, model={"peft": {"type": "lora", **lora}}, optimizer={"lr": 2e-2}
    )
    trainer = build_trainer(load_recipe(recipe))
    assert trainer.ref_model is None and "adapters disabled" in trainer.reference
    first_adapter = {k: v.clone() for k, v in get_peft_model_state_dict(trainer.model).items()}
    trainer.train()
    ours = [e for e in trainer.state.log_history if "loss" in e]
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    theirs = trl_runs.trl_dpo(
        model_dir,
        tiny.preference_rows(),
        tmp_path / "trl",
        learning_rate=2e-2,
        peft_config=config,
        adapter_state=first_adapter,
    )
    assert ours[-1]["rewards/margins"] > 0
    assert_agree(ours, theirs, trl_runs.DPO_KEYS)


def test_sft_matches_trl_completion_only(model_dir, tmp_path):
    theirs = trl_runs.trl_sft(model_dir, tiny.completion_rows(), tmp_path / "trl")
    rows = "tests.reference.tiny:prompt_response_rows"
    recipe = arctic_runs.recipe(model_dir, tmp_path / "ours", rows, type="sft", data={"type": "sft-in-order"})
    _, ours = arctic_runs.train(recipe)
    assert len(ours) == 4 and ours[-1]["loss"] < ours[0]["loss"]
    assert_agree(ours, theirs, ("loss", "grad_norm"))
