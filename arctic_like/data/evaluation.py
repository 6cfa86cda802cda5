"""Exact-match accuracy of greedy generation, with prompts tokenized as plain ``tokenizer(prompt)`` does."""

from __future__ import annotations

from typing import Any

import torch

from arctic_like.data.tokenize import tokenizer_framing

__all__ = ["greedy_accuracy"]


@torch.no_grad()
def greedy_accuracy(
    model: torch.nn.Module, tokenizer: Any, problems: list[tuple[str, str]], batch_size: int = 128
) -> float:
    """Share of ``(prompt, answer)`` whose greedy continuation (up to eos) equals ``answer``.

    A prompt starts with the special tokens the tokenizer adds by itself, exactly as in training and as
    ``tokenizer(prompt)`` + ``model.generate`` would see it. Prompts are grouped by token length so batches
    need no padding (the answers are short, so the loop recomputes the whole sequence instead of keeping a KV
    cache); the model's train/eval mode is restored.
    """
    if not problems:
        return 0.0
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    prefix = list(tokenizer_framing(tokenizer).prefix)
    eos = tokenizer.eos_token_id
    groups: dict[int, list[tuple[list[int], str]]] = {}
    for prompt, answer in problems:
        ids = prefix + tokenizer(prompt, add_special_tokens=False)["input_ids"]
        groups.setdefault(len(ids), []).append((ids, answer))
    max_new = max(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for _, a in problems) + 1
    correct = 0
    try:
        for items in groups.values():
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                input_ids = torch.tensor([ids for ids, _ in chunk], dtype=torch.long, device=device)
                output = input_ids
                finished = torch.zeros(len(chunk), dtype=torch.bool, device=device)
                for _ in range(max_new):
                    logits = model(input_ids=output, use_cache=False).logits[:, -1, :]
                    next_token = logits.argmax(dim=-1)
                    output = torch.cat([output, next_token[:, None]], dim=1)
                    if eos is not None:
                        finished |= next_token == eos
                        if bool(finished.all()):
                            break
                for row, (_, answer) in zip(output[:, input_ids.shape[1] :].tolist(), chunk, strict=True):
                    if eos is not None and eos in row:
                        row = row[: row.index(eos)]
                    correct += tokenizer.decode(row, skip_special_tokens=True).strip() == answer
    finally:
        model.train(was_training)
    return correct / len(problems)
