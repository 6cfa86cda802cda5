"""The settings in which arctic_like is compared with TRL, and the comparison itself.

``python -m tests.reference.agreement`` runs every setting on both sides and prints, per metric, the largest
relative difference over all steps (the figures quoted in docs/post-training.md).
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.reference import arctic_runs, tiny, trl_runs

PAIRS = "tests.reference.tiny:preference_rows"
LORA = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}

DPO_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
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
"""Setting → (arctic_like recipe overrides, TRL ``trl_dpo`` arguments), text pairs."""


def relative_differences(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]], keys: tuple[str, ...]
) -> dict[str, float]:
    """Per key, the largest ``|ours - trl| / |trl|`` over the steps (0 where both are exactly 0)."""
    if [e["step"] for e in ours] != [e["step"] for e in theirs]:
        raise AssertionError(f"different steps: {[e['step'] for e in ours]} vs {[e['step'] for e in theirs]}")
    worst = dict.fromkeys(keys, 0.0)
    for mine, trl in zip(ours, theirs, strict=True):
        for key in keys:
            a, b = mine[key], trl[key]
            worst[key] = max(worst[key], 0.0 if a == b else abs(a - b) / max(abs(b), 1e-12))
    return worst


def agree(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]], keys: tuple[str, ...], rel: float
) -> bool:
    """Every value within ``rel`` relative (1e-7 absolute for values near zero, e.g. first-step rewards)."""
    relative_differences(ours, theirs, keys)  # same steps
    return all(
        math.isclose(mine[key], trl[key], rel_tol=rel, abs_tol=1e-7)
        for mine, trl in zip(ours, theirs, strict=True)
        for key in keys
    )


def dpo_case(model_dir: Path, workdir: Path, case: str) -> tuple[list[dict], list[dict]]:
    """(arctic_like steps, TRL steps) of one text-pair setting of ``DPO_CASES``."""
    ours_settings, trl_settings = DPO_CASES[case]
    theirs = trl_runs.trl_dpo(model_dir, tiny.preference_rows(), workdir / "trl", **trl_settings)
    _, ours = arctic_runs.train(arctic_runs.recipe(model_dir, workdir / "ours", PAIRS, **ours_settings))
    return ours, theirs


def chat_case(model_dir: Path, workdir: Path) -> tuple[list[dict], list[dict]]:
    """Chat preference pairs rendered with the tokenizer's chat template."""
    theirs = trl_runs.trl_dpo(model_dir, tiny.chat_preference_rows(), workdir / "trl")
    rows = "tests.reference.tiny:chat_preference_rows"
    _, ours = arctic_runs.train(arctic_runs.recipe(model_dir, workdir / "ours", rows))
    return ours, theirs


def lora_case(model_dir: Path, workdir: Path) -> tuple[list[dict], list[dict], Any]:
    """LoRA: both start from arctic_like's first adapter weights; the reference is the policy without it."""
    from peft import LoraConfig, get_peft_model_state_dict

    from arctic_like.config import build_trainer, load_recipe

    recipe = arctic_runs.recipe(
        model_dir, workdir / "ours", PAIRS, model={"peft": {"type": "lora", **LORA}}, optimizer={"lr": 2e-2}
    )
    trainer = build_trainer(load_recipe(recipe))
    first_adapter = {k: v.clone() for k, v in get_peft_model_state_dict(trainer.model).items()}
    trainer.train()
    ours = [e for e in trainer.state.log_history if "loss" in e]
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    theirs = trl_runs.trl_dpo(
        model_dir,
        tiny.preference_rows(),
        workdir / "trl",
        learning_rate=2e-2,
        peft_config=config,
        adapter_state=first_adapter,
    )
    return ours, theirs, trainer


def sft_case(model_dir: Path, workdir: Path) -> tuple[list[dict], list[dict]]:
    """SFT on prompt/completion rows with the completion-only loss."""
    theirs = trl_runs.trl_sft(model_dir, tiny.completion_rows(), workdir / "trl")
    rows = "tests.reference.tiny:prompt_response_rows"
    recipe = arctic_runs.recipe(model_dir, workdir / "ours", rows, type="sft", data={"type": "sft-in-order"})
    _, ours = arctic_runs.train(recipe)
    return ours, theirs


def main() -> int:
    """Print the largest relative difference per metric of every setting."""
    import logging
    import warnings

    import datasets
    import transformers

    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    keys = trl_runs.DPO_KEYS
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = tiny.save_pretrained_model(root / "model")
        rows: list[tuple[str, dict[str, float]]] = []
        for case in DPO_CASES:
            rows.append((f"dpo {case}", relative_differences(*dpo_case(model_dir, root / case, case), keys)))
        rows.append(("dpo chat", relative_differences(*chat_case(model_dir, root / "chat"), keys)))
        ours, theirs, _ = lora_case(model_dir, root / "lora")
        rows.append(("dpo lora", relative_differences(ours, theirs, keys)))
        sft = relative_differences(*sft_case(model_dir, root / "sft"), ("loss", "grad_norm"))
    print("largest relative difference to TRL over 4 steps, per metric")
    print(f"{'setting':<18}" + "".join(f"{k:>19}" for k in keys))
    for name, worst in rows:
        print(f"{name:<18}" + "".join(f"{worst[k]:>19.1e}" for k in keys))
    print(f"{'sft':<18}" + "".join(f"{sft[k]:>19.1e}" for k in ("loss", "grad_norm")))
    everything = [v for _, worst in rows for v in worst.values()] + list(sft.values())
    print(f"largest of all: {max(everything):.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
