"""arctic_like's DPO and SFT against TRL's ``DPOTrainer`` and ``SFTTrainer``, side by side.

One tiny saved model and one small data set; both frameworks train it for the same steps with the same seed,
batch and hyperparameters (no shuffling, fp32 on CPU), and every per-step number TRL logs for the loss and
the rewards must agree to 1e-4 relative. The settings and the TRL side: ``tests/reference/``.
"""

from __future__ import annotations

import math

import pytest

from tests.reference import agreement, tiny, trl_runs

pytest.importorskip("trl")

REL = 1e-4


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny.save_pretrained_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.mark.parametrize("case", list(agreement.DPO_CASES))
def test_dpo_matches_trl(case, model_dir, tmp_path):
    ours, theirs = agreement.dpo_case(model_dir, tmp_path, case)
    assert len(ours) == 4
    if case not in ("ipo", "hinge", "robust"):
        assert ours[0]["loss"] == pytest.approx(math.log(2))  # policy == reference at the first step
    assert ours[-1]["rewards/margins"] > 0  # the policy moved towards the chosen answers
    assert agreement.agree(ours, theirs, trl_runs.DPO_KEYS, REL), agreement.relative_differences(
        ours, theirs, trl_runs.DPO_KEYS
    )


def test_chat_dpo_matches_trl(model_dir, tmp_path):
    ours, theirs = agreement.chat_case(model_dir, tmp_path)
    assert agreement.agree(ours, theirs, trl_runs.DPO_KEYS, REL)


def test_lora_dpo_matches_trl(model_dir, tmp_path):
    """LoRA: the reference is the policy with its adapter disabled in both; the same first adapter."""
    ours, theirs, trainer = agreement.lora_case(model_dir, tmp_path)
    assert trainer.ref_model is None and "adapters disabled" in trainer.reference
    assert ours[-1]["rewards/margins"] > 0
    assert agreement.agree(ours, theirs, trl_runs.DPO_KEYS, REL)


def test_sft_matches_trl_completion_only(model_dir, tmp_path):
    ours, theirs = agreement.sft_case(model_dir, tmp_path)
    assert len(ours) == 4 and ours[-1]["loss"] < ours[0]["loss"]
    assert agreement.agree(ours, theirs, ("loss", "grad_norm"), REL)


def test_a_real_difference_is_caught(model_dir, tmp_path):
    """The comparison is sharp: a beta 1% off on one side fails it."""
    ours, _ = agreement.dpo_case(model_dir, tmp_path, "sigmoid")
    theirs_off = trl_runs.trl_dpo(model_dir, tiny.preference_rows(), tmp_path / "off", beta=0.101)
    assert not agreement.agree(ours, theirs_off, trl_runs.DPO_KEYS, REL)
