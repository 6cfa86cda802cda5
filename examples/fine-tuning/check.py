"""Ask a fine-tuned export every question of `chat.jsonl` through plain `transformers`; score the answers.

Run: .venv/bin/python examples/fine-tuning/check.py PATH [--min-accuracy 0.9]

PATH is an export (`checkpoint-<step>/`) or the `huggingface` engine's folder (its newest export is used), or
the pretrained stand-in itself (to see that it does not know the answers before fine-tuning). Each assistant
turn is generated greedily from the conversation before it, rendered with the tokenizer's own chat template
(`apply_chat_template(..., add_generation_prompt=True)`), and must equal the answer in the data. Exits 1 when
the share of exact answers is below `--min-accuracy`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

HERE = Path(__file__).resolve().parent


def newest_export(path: Path) -> Path:
    """``path`` itself if it is a saved model, else the export its ``latest`` file names."""
    if (path / "config.json").is_file() or not (path / "latest").is_file():
        return path
    return path / (path / "latest").read_text().strip()


def questions(data: Path) -> list[tuple[list[dict[str, str]], str]]:
    """(conversation so far, expected answer) for every assistant turn of the chat JSONL ``data``."""
    out = []
    for line in data.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line)["messages"] if line.strip() else []
        out += [(messages[:i], m["content"]) for i, m in enumerate(messages) if m["role"] == "assistant"]
    return out


def answer(path: Path, conversations: list[list[dict[str, str]]], max_new_tokens: int = 24) -> list[str]:
    """Greedy answers of the model at ``path`` to each conversation, as plain transformers gives them."""
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    inputs = tokenizer.apply_chat_template(
        conversations, add_generation_prompt=True, padding=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    return tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--data", type=Path, default=HERE / "chat.jsonl")
    parser.add_argument("--min-accuracy", type=float, default=0.0)
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()
    path = newest_export(args.path)
    asked = questions(args.data)
    replies = answer(path, [conversation for conversation, _ in asked])
    correct = 0
    print(f"asking {path} ({len(asked)} questions)")
    for (conversation, expected), reply in zip(asked, replies, strict=True):
        ok = reply.strip() == expected
        correct += ok
        wanted = "" if ok else f"  (want {expected!r})"
        print(f"  {conversation[-1]['content']:<36} -> {reply.strip()!r}{wanted}")
    accuracy = correct / len(asked)
    print(f"exact answers: {correct}/{len(asked)} ({accuracy:.0%})")
    return 0 if accuracy >= args.min_accuracy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
