"""Run by ``test_dpo.py`` in a fresh process (DeepSpeed initialises torch.distributed): DPO through the
DeepSpeed engine, written to ``argv[1]/result.json``.

* LoRA + DPO (the reference: adapters disabled) at ZeRO-2: an uninterrupted run, and one interrupted after 2
  steps and resumed from its ``deepspeed`` checkpoint (which leaves the frozen base weights out).
* Full DPO at ZeRO-3 with the reference as a frozen copy (a DeepSpeed inference engine, partitioned like the
  policy), and the same run on the ``torch`` engine, for comparison.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.reference import arctic_runs, tiny

LORA = {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}
KEYS = ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected")
PAIRS = "tests.reference.tiny:preference_rows"


def run(model_dir: Path, out: Path, **overrides) -> list[list[float]]:
    recipe = arctic_runs.recipe(model_dir, out, PAIRS, **{"data": {"type": "dpo"}, **overrides})
    _, steps = arctic_runs.train(recipe)
    return [[entry[k] for k in KEYS] for entry in steps]


def main() -> None:
    out = Path(sys.argv[1])
    model_dir = tiny.save_pretrained_model(out / "model")
    lora = {
        "engine": "deepspeed",
        "deepspeed": {"zero_optimization": {"stage": 2}},
        "model": {"peft": LORA},
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "max_steps": 4,
    }
    ckpt = {"checkpoint": [{"type": "deepspeed", "auto_resume": True, "save_end_of_training": False}]}
    result = {"lora_full": run(model_dir, out / "full", **lora)}
    run(model_dir, out / "resumed", exit_iteration=2, save_steps=2, **lora, **ckpt)
    result["lora_resumed"] = run(model_dir, out / "resumed", save_steps=2, **lora, **ckpt)
    saved = out / "resumed" / "checkpoints" / "checkpoint-2" / "state"
    result["module_file_bytes"] = sum(f.stat().st_size for f in saved.glob("*model_states.pt"))

    zero3 = {"engine": "deepspeed", "deepspeed": {"zero_optimization": {"stage": 3}}, "max_steps": 2}
    result["zero3_copy"] = run(model_dir, out / "zero3", **zero3)
    result["torch_copy"] = run(model_dir, out / "torch", max_steps=2)
    (out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
