"""Generate from a `huggingface` export with plain `transformers` (no arctic_like), as the model's users do.

Run: .venv/bin/python examples/generate.py PATH [PROMPT ...]

PATH is an export (`checkpoint-<step>/`) or the engine's folder (`runs/tiny-addition/huggingface`, whose
newest export is used). Without prompts it asks a few 2-digit sums, the demo's task, and marks each answer.
`make demo` runs it after training.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging


def newest_export(path: Path) -> Path:
    """``path`` itself if it is an export, else the checkpoint its ``latest`` file names."""
    if (path / "config.json").is_file():
        return path
    latest = path / "latest"
    if latest.is_file():
        return path / latest.read_text().strip()
    raise SystemExit(f"{path} is neither an export (no config.json) nor a folder of exports (no `latest`)")


def generate(path: Path, prompts: list[str], max_new_tokens: int = 8) -> list[str]:
    """Greedy completions of ``prompts``: plain ``tokenizer(prompt)``, ``generate``, decode the new tokens."""
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    inputs = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    hf_logging.disable_progress_bar()
    path = newest_export(Path(argv[0]))
    rng = random.Random(0)
    prompts = argv[1:] or [f"{rng.randint(10, 99)}+{rng.randint(10, 99)}=" for _ in range(6)]
    print(f"generating with transformers from {path}")
    for prompt, completion in zip(prompts, generate(path, prompts), strict=True):
        completion = completion.strip()
        sum_ = re.fullmatch(r"(\d+)\+(\d+)=", prompt)
        mark = ""
        if sum_:
            mark = "  ok" if completion == str(int(sum_[1]) + int(sum_[2])) else "  wrong"
        print(f"  {prompt}{completion}{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
