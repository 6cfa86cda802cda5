"""The ``dpo`` trainer: losses, log-probs, the reference choices, precomputed log-probs and their cache,
events, evaluation metrics, exact resume and recipe errors. (Agreement with TRL: ``test_dpo_trl.py``.)"""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from arctic_like.config import build_trainer, load_recipe
from arctic_like.trainer import DPOTrainer
from arctic_like.trainer.dpo import DPO_METRICS, sequence_logps
from tests.reference import arctic_runs, tiny

PAIRS = "tests.reference.tiny:preference_rows"
LORA = {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny.save_pretrained_model(tmp_path_factory.mktemp("tiny") / "model")


def recipe(model_dir, tmp_path, **overrides):
    return arctic_runs.recipe(model_dir, tmp_path, PAIRS, **{"data": {"type": "dpo"}, **overrides})


def make(model_dir, tmp_path, **overrides) -> DPOTrainer:
    return build_trainer(load_recipe(recipe(model_dir, tmp_path, **overrides)))


def steps(trainer) -> list[dict]:
    return [e for e in trainer.state.log_history if "loss" in e]


# ---- the loss ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trainer(model_dir, tmp_path_factory):
    return make(model_dir, tmp_path_factory.mktemp("dpo"))


LOGPS = {
    "chosen_logps": torch.tensor([-3.0, -5.0]),
    "rejected_logps": torch.tensor([-4.0, -4.5]),
    "ref_chosen_logps": torch.tensor([-3.5, -5.0]),
    "ref_rejected_logps": torch.tensor([-3.8, -4.0]),
    "chosen_lengths": torch.tensor([2, 4]),
    "rejected_lengths": torch.tensor([3, 1]),
}


@pytest.mark.parametrize(
    ("loss_type", "beta", "smoothing"),
    [
        ("sigmoid", 0.1, 0.0),
        ("sigmoid", 0.2, 0.1),
        ("robust", 0.1, 0.2),
        ("hinge", 0.5, 0.0),
        ("ipo", 0.5, 0.0),
    ],
)
def test_losses_follow_their_definitions(trainer, loss_type, beta, smoothing):
    trainer.config.label_smoothing = 0.0
    trainer.config.loss_type = loss_type
    trainer.config.beta = beta
    trainer.config.label_smoothing = smoothing
    losses, chosen_rewards, rejected_rewards = trainer.dpo_loss(**LOGPS)
    c = LOGPS["chosen_logps"] - LOGPS["ref_chosen_logps"]
    r = LOGPS["rejected_logps"] - LOGPS["ref_rejected_logps"]
    for i in range(2):
        z = beta * (c[i] - r[i]).item()
        if loss_type == "sigmoid":  # conservative DPO when smoothing > 0
            want = -(1 - smoothing) * math.log(1 / (1 + math.exp(-z))) - smoothing * math.log(
                1 / (1 + math.exp(z))
            )
        elif loss_type == "robust":
            clean, flipped = -math.log(1 / (1 + math.exp(-z))), -math.log(1 / (1 + math.exp(z)))
            want = ((1 - smoothing) * clean - smoothing * flipped) / (1 - 2 * smoothing)
        elif loss_type == "hinge":
            want = max(0.0, 1 - z)
        else:
            per_token = (
                c[i].item() / LOGPS["chosen_lengths"][i].item()
                - r[i].item() / LOGPS["rejected_lengths"][i].item()
            )
            want = (per_token - 1 / (2 * beta)) ** 2
        assert losses[i].item() == pytest.approx(want, rel=1e-6)
    torch.testing.assert_close(chosen_rewards, beta * c)
    torch.testing.assert_close(rejected_rewards, beta * r)


def test_sequence_logps_sums_the_completion_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[-100, -100, 3, 4, -100], [-100, 1, 2, 6, 0]])
    log_probs = logits.log_softmax(-1)
    want = [
        log_probs[0, 1, 3] + log_probs[0, 2, 4],
        log_probs[1, 0, 1] + log_probs[1, 1, 2] + log_probs[1, 2, 6] + log_probs[1, 3, 0],
    ]
    torch.testing.assert_close(sequence_logps(logits, labels), torch.stack(want))


# ---- the recipe ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"loss_type": "hinge", "label_smoothing": 0.1},
            r"label_smoothing applies to the sigmoid and robust.*Fix:",
        ),
        ({"label_smoothing": 0.5}, r"label_smoothing\n  Input should be less than 0\.5"),
        ({"loss_type": "kto"}, r"loss_type\n  Input should be 'sigmoid', 'ipo', 'hinge' or 'robust'"),
        ({"beta": 0}, r"beta\n  Input should be greater than 0"),
        ({"ref_model": {"name_or_pth": "x"}}, r"ref_model\.name_or_pth\n  Extra inputs are not permitted"),
        ({"data": {"type": "dpo", "packing": True}}, r"data\.packing\n.*preference pairs are not packed"),
    ],
)
def test_recipe_errors_name_the_field(model_dir, tmp_path, overrides, message):
    with pytest.raises(ValidationError, match=message):
        DPOTrainer.config.model_validate(recipe(model_dir, tmp_path, **overrides))


# ---- the reference --------------------------------------------------------------------------------------


def test_reference_is_a_frozen_copy_of_the_initial_policy(model_dir, tmp_path):
    trainer = make(model_dir, tmp_path)
    assert "frozen copy" in trainer.reference and trainer.ref_model is not trainer.model
    initial = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    for name, param in trainer.ref_model.named_parameters():
        assert not param.requires_grad and torch.equal(param, initial[name]), name
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in trainer.ref_model.parameters()}
    trainer.train()
    assert any(not torch.equal(p, initial[n]) for n, p in trainer.model.named_parameters())
    assert all(torch.equal(p, initial[n]) for n, p in trainer.ref_model.named_parameters())


def test_reference_from_a_ref_model_section(model_dir, tmp_path):
    other = tiny.save_pretrained_model(tmp_path / "other", seed=1)
    trainer = make(model_dir, tmp_path / "run", ref_model={"type": "huggingface", "name_or_path": str(other)})
    assert trainer.reference == "the ref_model section"
    trainer.train()
    first = steps(trainer)[0]
    assert first["rewards/chosen"] != 0 and first["loss"] != pytest.approx(math.log(2))


def test_dropout_is_disabled_in_policy_and_adapter(model_dir, tmp_path):
    trainer = make(model_dir, tmp_path, model={"peft": LORA})
    dropouts = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p == 0.0 for m in dropouts)
    kept = make(model_dir, tmp_path / "kept", model={"peft": LORA}, disable_dropout=False)
    assert {m.p for m in kept.model.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}


def test_precomputed_reference_log_probs_are_cached_with_the_data(model_dir, tmp_path, monkeypatch):
    eval_source = [{"type": "callable", "function": PAIRS, "kwargs": {"count": 8, "seed": 5}}]
    settings = {"precompute_ref_log_probs": True, "data": {"type": "dpo", "eval_sources": eval_source}}
    settings["eval_steps"] = 4
    first = make(model_dir, tmp_path, **settings)
    assert first.ref_model is None and first.reference.startswith("precomputed log-probs of a frozen copy")
    for loader in (first.train_dataloader, first.eval_dataloader):
        assert {"ref_chosen_logps", "ref_rejected_logps"} <= set(loader.dataset.column_names)
    assert not list((tmp_path / "cache").glob("reference-logps-*"))  # building writes nothing
    first.train()
    assert len(list((tmp_path / "cache").glob("reference-logps-*"))) == 2

    def no_reference_forward(self, batch):
        raise AssertionError("the cached log-probs should have been used")

    monkeypatch.setattr(DPOTrainer, "_reference_forward", no_reference_forward)
    second = make(model_dir, tmp_path, **settings)
    assert (
        second.train_dataloader.dataset["ref_chosen_logps"]
        == first.train_dataloader.dataset["ref_chosen_logps"]
    )
    eval_log = [e for e in first.state.log_history if "eval_loss" in e][-1]
    assert {f"eval_{k}" for k in DPO_METRICS} <= set(eval_log)


def test_precomputed_without_the_data_cache_writes_nothing(model_dir, tmp_path):
    no_cache = {"type": "dpo", "use_cache": False}
    trainer = make(model_dir, tmp_path, precompute_ref_log_probs=True, data=no_cache)
    assert "ref_chosen_logps" in trainer.train_dataloader.dataset.column_names
    assert not list((tmp_path / "cache").glob("reference-logps-*"))


def test_lora_dpo_with_gradient_checkpointing_computes_the_same_steps(model_dir, tmp_path):
    runs = []
    for checkpointing in (False, True):
        model = {"peft": {**LORA, "dropout": 0.0}, "gradient_checkpointing": checkpointing}
        trainer = make(model_dir, tmp_path / str(checkpointing), model=model, max_steps=3)
        trainer.train()
        runs.append([e[k] for e in steps(trainer) for k in ("loss", "grad_norm", *DPO_METRICS)])
    assert len(runs[0]) == 3 * 8 and runs[1] == pytest.approx(runs[0], rel=1e-5, abs=1e-7)


# ---- events ------------------------------------------------------------------------------------------------


def test_dpo_events_run_in_order_each_micro_batch(model_dir, tmp_path):
    trainer = make(model_dir, tmp_path, max_steps=2)
    trace = []

    def recorder(event):
        return lambda self: trace.append((event, self.state.global_step))

    for name in ("loss", "reference-logps", "policy-logps", "dpo-loss"):
        for when in ("pre", "post"):
            trainer.callbacks.append((f"{when}-{name}", recorder(f"{when}-{name}")))
    trainer.train()
    one_step = [
        "pre-loss",
        "pre-reference-logps",
        "post-reference-logps",
        "pre-policy-logps",
        "post-policy-logps",
        "pre-dpo-loss",
        "post-dpo-loss",
        "post-loss",
    ]
    assert trace == [(event, step) for step in (0, 1) for event in one_step]


def test_a_callback_rewrites_the_dpo_loss(model_dir, tmp_path):
    trainer = make(model_dir, tmp_path, max_steps=1)

    def double(self, result):
        losses, chosen, rejected = result
        return losses * 2, chosen, rejected

    trainer.callbacks.append(("post-dpo-loss", double))
    trainer.train()
    assert steps(trainer)[0]["loss"] == pytest.approx(2 * math.log(2))


# ---- resume -------------------------------------------------------------------------------------------


RESUME = {"micro_batch_size": 2, "gradient_accumulation_steps": 2, "epochs": 2, "max_steps": None}
CKPT = {
    "checkpoint": [{"type": "torch", "auto_resume": True, "save_end_of_training": False}],
    "save_steps": 3,
}


@pytest.mark.parametrize(
    "variant",
    [{}, {"model": {"peft": LORA}, "precompute_ref_log_probs": True}],
    ids=["copy", "lora-precomputed"],
)
def test_resume_continues_exactly(model_dir, tmp_path, variant):
    full = make(model_dir, tmp_path / "full", **RESUME, **variant)
    full.train()
    reference = steps(full)
    assert len(reference) == 8

    first = make(model_dir, tmp_path / "run", exit_iteration=3, **RESUME, **CKPT, **variant)
    first.train()
    second = make(model_dir, tmp_path / "run", **RESUME, **CKPT, **variant)
    assert second.state.global_step == 3
    second.train()
    resumed = steps(second)
    keys = ("loss", "grad_norm", *DPO_METRICS)
    assert [[e[k] for k in keys] for e in resumed] == [[e[k] for k in keys] for e in reference]


# ---- DeepSpeed ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_dpo_and_lora_on_deepspeed(tmp_path):
    """LoRA + DPO at ZeRO-2 resumes exactly from a checkpoint without the frozen base weights; full DPO at
    ZeRO-3 (the reference copy partitioned like the policy) matches the torch engine."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    launcher = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in launcher}
    env["OMP_NUM_THREADS"] = "1"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "tests.trainer.dpo_deepspeed_run", str(tmp_path)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert len(result["lora_full"]) == 4 and result["lora_resumed"] == result["lora_full"]
    assert result["lora_full"][-1][3] > 0  # rewards/margins grew
    assert result["module_file_bytes"] < 40_000  # the adapter only: the base model alone is ~90 kB
    for ours, torch_run in zip(result["zero3_copy"], result["torch_copy"], strict=True):
        assert ours == pytest.approx(torch_run, rel=1e-4, abs=1e-6)


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_match_one_with_the_same_global_batch(model_dir, tmp_path):
    """torchrun, 2 processes x 2 pairs against 1 process x 4 pairs: the metrics are averaged over processes
    and each process precomputes a share of the reference log-probs."""
    import json

    from tests.distributed.launch import REPO, run, run_env, torchrun_command, write_recipe

    settings = {"precompute_ref_log_probs": True, "max_steps": 3, "data": {"type": "dpo"}}
    two = recipe(model_dir, tmp_path / "two", micro_batch_size=2, **settings)
    two["callbacks"] = ["arctic_like.callbacks.JsonLogger"]
    path = write_recipe(tmp_path / "two.yaml", two)
    result = run(torchrun_command(path), run_env(tmp_path / "probe"), REPO)
    assert result.returncode == 0, result.output[-4000:]
    lines = (tmp_path / "two" / "log.jsonl").read_text().splitlines()
    logged = [r["metrics"] for r in map(json.loads, lines) if "loss" in (r.get("metrics") or {})]

    single = make(model_dir, tmp_path / "one", micro_batch_size=4, **settings)
    single.train()
    one = steps(single)
    keys = ("loss", *DPO_METRICS)
    assert len(logged) == len(one) == 3
    for theirs, ours in zip(logged, one, strict=True):
        assert [theirs[k] for k in keys] == pytest.approx([ours[k] for k in keys], rel=1e-5, abs=1e-6)
