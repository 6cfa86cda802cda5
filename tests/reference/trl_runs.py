"""TRL as the reference: run TRL's ``DPOTrainer`` and ``SFTTrainer`` on the tiny setting and return the logged
numbers of every step (``logging_steps=1``).

Settings shared with the arctic_like side: fp32 on CPU, no shuffling (``train_sampling_strategy=
"sequential"``), incomplete last batches dropped, AdamW without weight decay, a constant learning rate,
gradient clipping at 1.0, no dropout.

Run as a script to record the per-step numbers of the default setting::

    python -m tests.reference.trl_runs dpo runs/trl-dpo.json
    python -m tests.reference.trl_runs sft runs/trl-sft.json
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.reference import tiny

DPO_KEYS = (
    "loss",
    "grad_norm",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
)
"""The per-step numbers compared with arctic_like."""

COMMON: dict[str, Any] = {
    "lr_scheduler_type": "constant",
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "logging_steps": 1,
    "bf16": False,
    "fp16": False,
    "use_cpu": True,
    "gradient_checkpointing": False,
    "train_sampling_strategy": "sequential",
    "report_to": [],
    "save_strategy": "no",
    "disable_tqdm": True,
    "dataloader_num_workers": 0,
    "dataloader_drop_last": True,
}


def _steps(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in log_history if "loss" in entry]


def trl_dpo(
    model_dir: Path,
    rows: list[dict[str, Any]],
    output_dir: Path,
    *,
    steps: int = 4,
    batch_size: int = 4,
    learning_rate: float = 5e-3,
    seed: int = 0,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    max_length: int | None = 64,
    gradient_accumulation_steps: int = 1,
    precompute_ref_log_probs: bool = False,
    peft_config: Any = None,
    adapter_state: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Per-step logs of TRL's ``DPOTrainer``. The reference is loaded again from ``model_dir``, or is the
    policy without its adapter under ``peft_config``; ``adapter_state`` sets the adapter's first weights."""
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(
        str(output_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        learning_rate=learning_rate,
        seed=seed,
        beta=beta,
        loss_type=[loss_type],
        label_smoothing=label_smoothing,
        max_length=max_length,
        precompute_ref_log_probs=precompute_ref_log_probs,
        **COMMON,
    )
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(model_dir),
        peft_config=peft_config,
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log line
    if adapter_state is not None:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(trainer.model, adapter_state)
    trainer.train()
    return _steps(trainer.state.log_history)


def trl_sft(
    model_dir: Path,
    rows: list[dict[str, Any]],
    output_dir: Path,
    *,
    steps: int = 4,
    batch_size: int = 4,
    learning_rate: float = 5e-3,
    seed: int = 0,
    max_length: int | None = 64,
) -> list[dict[str, Any]]:
    """Per-step logs of TRL's ``SFTTrainer`` on prompt/completion rows with the completion-only loss."""
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        str(output_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        completion_only_loss=True,
        packing=False,
        max_length=max_length,
        **COMMON,
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(model_dir),
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return _steps(trainer.state.log_history)


def main(argv: list[str]) -> int:
    """``trl_runs.py dpo|sft OUT.json``: train on the tiny setting and write the per-step logs."""
    if len(argv) != 2 or argv[0] not in ("dpo", "sft"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, out = argv
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = tiny.save_pretrained_model(Path(tmp) / "model")
        if kind == "dpo":
            steps = trl_dpo(model_dir, tiny.preference_rows(), Path(tmp) / "run")
        else:
            steps = trl_sft(model_dir, tiny.completion_rows(), Path(tmp) / "run")
    Path(out).write_text(json.dumps(steps, indent=1), encoding="utf-8")
    print(json.dumps(steps, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
