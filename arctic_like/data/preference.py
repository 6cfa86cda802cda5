"""Preference pairs for DPO: a prompt with a chosen and a rejected completion, tokenized and batched.

A row is either text (``prompt``, ``chosen``, ``rejected`` strings) or chat: ``chosen`` and ``rejected`` are
lists of ``{role, content}`` turns and ``prompt`` is the turns before them (or is left out, when both
conversations share it: the prompt is then their longest common prefix of turns, as TRL does).

Text is tokenized as the model sees it at inference: ``tokenizer(prompt)`` (with the special tokens this
tokenizer adds by itself, e.g. Llama's ``<s>``), then each completion's ids and eos. Chat rows are rendered
with the tokenizer's chat template; the prompt is the template with the generation prompt and a completion is
what the full conversation adds to it. ``max_prompt_length`` keeps the end of a long prompt; ``max_length``
then keeps the start of prompt + completion, and a pair whose prompt alone fills ``max_length`` is dropped.

A batch stacks the chosen sequences, then the rejected ones: ``input_ids``, ``attention_mask`` and ``labels``
of shape ``[2 * batch, length]`` (labels are ``-100`` outside the completions), plus ``ref_chosen_logps`` and
``ref_rejected_logps`` when the reference log-probs were precomputed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = [
    "PREFERENCE_COLUMNS",
    "REFERENCE_COLUMNS",
    "PairCollator",
    "PreferenceEncoder",
    "split_prompt",
]

IGNORE_INDEX = -100
PREFERENCE_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")
"""The tokenized columns of a preference pair."""
REFERENCE_COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")
"""The columns precomputed reference log-probs are stored in."""

Messages = list[dict[str, str]]


def split_prompt(chosen: Messages, rejected: Messages) -> tuple[Messages, Messages, Messages]:
    """``(prompt, chosen, rejected)`` from two whole conversations: the prompt is their common first turns."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    return list(chosen[:shared]), list(chosen[shared:]), list(rejected[shared:])


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def _framing_prefix(tokenizer: Any) -> list[int]:
    """The ids ``tokenizer`` puts before a single text by itself (``<s>`` for Llama-style tokenizers)."""
    plain = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    full = list(tokenizer("a")["input_ids"])
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return full[:start]
    return []


class PreferenceEncoder:
    """Tokenizes preference rows into ``prompt_ids``, ``chosen_ids``, ``rejected_ids`` (picklable)."""

    def __init__(self, tokenizer: Any, max_length: int | None, max_prompt_length: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length
        self.prefix = _framing_prefix(tokenizer)
        self.eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        self.special_ids = set(tokenizer.all_special_ids)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def text(self, prompt: str, chosen: str, rejected: str) -> dict[str, list[int]] | None:
        """Ids of a text pair (``None`` when truncation leaves no completion)."""
        completions = []
        for completion in (chosen, rejected):
            ids = self._ids(completion)
            if not self.eos or ids[-len(self.eos) :] != self.eos:
                ids += self.eos
            completions.append(ids)
        return self._truncate(self.prefix + self._ids(prompt), *completions)

    def chat(self, prompt: Messages, chosen: Messages, rejected: Messages) -> dict[str, list[int]] | None:
        """Ids of a chat pair rendered with the tokenizer's chat template."""
        if not prompt:
            prompt, chosen, rejected = split_prompt(chosen, rejected)
        if not prompt or not chosen or not rejected:
            raise ValueError(
                "a chat preference pair needs prompt turns and a differing chosen and rejected answer. "
                "Fix: give `prompt` turns, or `chosen`/`rejected` conversations that share their first turns."
            )
        render = self._render
        prompt_ids = render(prompt, add_generation_prompt=True)
        full_chosen, full_rejected = render(prompt + chosen), render(prompt + rejected)
        shared = min(_common_prefix(prompt_ids, full_chosen), _common_prefix(prompt_ids, full_rejected))
        return self._truncate(prompt_ids[:shared], full_chosen[shared:], full_rejected[shared:])

    def _render(self, messages: Messages, add_generation_prompt: bool = False) -> list[int]:
        if getattr(self.tokenizer, "chat_template", None) is None:
            raise ValueError(
                "chat preference pairs need a tokenizer with a chat template, and this one has none. "
                "Fix: use a tokenizer that has one (tokenizer.chat_template), or give text pairs."
            )
        out = self.tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=True
        )
        return list(out["input_ids"])

    def _truncate(
        self, prompt: list[int], chosen: list[int], rejected: list[int]
    ) -> dict[str, list[int]] | None:
        """``max_prompt_length`` keeps the end of the prompt (after its leading special tokens, e.g. bos);
        ``max_length`` keeps the start of prompt + completion."""
        limit = self.max_prompt_length
        if limit is not None and len(prompt) > limit:
            head = 0
            while head < len(prompt) and prompt[head] in self.special_ids:
                head += 1
            tail = max(limit - head, 0)
            prompt = prompt[:head] + (prompt[len(prompt) - tail :] if tail else [])
        if self.max_length is not None:
            if len(prompt) >= self.max_length:
                return None
            room = self.max_length - len(prompt)
            chosen, rejected = chosen[:room], rejected[:room]
        return {"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected}

    def row(self, row: Mapping[str, Any]) -> dict[str, list[int]] | None:
        """Ids of one row, text or chat."""
        chosen, rejected = row.get("chosen"), row.get("rejected")
        if isinstance(chosen, list) and isinstance(rejected, list):
            return self.chat(list(row.get("prompt") or []), chosen, rejected)
        if isinstance(chosen, str) and isinstance(rejected, str):
            return self.text(row.get("prompt") or "", chosen, rejected)
        raise ValueError(
            "a preference row needs `chosen` and `rejected` (strings with a `prompt`, or chat turns), got "
            f"columns {sorted(row)}. Fix: give the source prompt/chosen/rejected columns."
        )


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    length = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (length - len(r)) for r in rows], dtype=torch.long)


class PairCollator:
    """Batches preference pairs: chosen sequences first, then rejected, right-padded to the longest."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        sequences, labels = [], []
        for key in ("chosen_ids", "rejected_ids"):
            for e in examples:
                sequences.append(list(e["prompt_ids"]) + list(e[key]))
                labels.append([IGNORE_INDEX] * len(e["prompt_ids"]) + list(e[key]))
        batch = {
            "input_ids": _pad(sequences, self.pad_token_id),
            "attention_mask": _pad([[1] * len(s) for s in sequences], 0),
            "labels": _pad(labels, IGNORE_INDEX),
        }
        for key in REFERENCE_COLUMNS:
            if key in examples[0]:
                batch[key] = torch.tensor([e[key] for e in examples], dtype=torch.float32)
        return batch
