"""Preference pairs for DPO: a prompt with a chosen and a rejected completion, as two row formats.

* ``preference``: text, ``prompt``/``chosen``/``rejected`` strings. The prompt is tokenized as the model sees
  it at inference (``tokenizer(prompt)``, with the special tokens this tokenizer adds by itself, e.g. Llama's
  ``<s>``); each completion gets eos.
* ``chat_preference``: chat turns, ``chosen_messages``/``rejected_messages`` (lists of ``{role, content}``)
  after the prompt turns in ``messages``, or whole conversations sharing their first turns (the prompt is
  then that shared start, as TRL does). Rendered with the tokenizer's chat template: the prompt with the
  generation prompt, a completion as what the whole conversation adds to it. TRL-style columns (``chosen``/
  ``rejected``, and ``prompt``, holding turns) are recognised and mapped to these by the ``dpo`` factory.

Both encode to ``prompt_ids``/``chosen_ids``/``rejected_ids``. :class:`TruncatePairs` applies
``max_prompt_length`` (the end of a long prompt is kept, after its leading special tokens; with
``prompt_truncation: keep_start``, its start) and then
``max_length`` (the start of prompt + completion is kept; a pair whose prompt alone fills it is dropped).

A batch stacks the chosen sequences, then the rejected ones: ``input_ids``, ``attention_mask`` and ``labels``
of shape ``[2 * pairs, length]`` (labels are ``-100`` outside the completions), plus ``ref_chosen_logps`` and
``ref_rejected_logps`` when the reference log-probs were precomputed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import datasets
import torch

from arctic_like.data.formats import RowFormat, register_format
from arctic_like.data.rows import MESSAGE
from arctic_like.data.tokenize import IGNORE_INDEX, ChatTemplateError, Encoder

__all__ = [
    "PREFERENCE_COLUMNS",
    "REFERENCE_COLUMNS",
    "ChatPreferenceFormat",
    "PairCollator",
    "PreferenceFormat",
    "TruncatePairs",
    "split_prompt",
]

PREFERENCE_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")
"""The tokenized columns of a preference pair."""
REFERENCE_COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")
"""The columns precomputed reference log-probs are stored in."""

Row = Mapping[str, Any]
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


def _pair(prompt: list[int], chosen: list[int], rejected: list[int]) -> dict[str, list[int]]:
    return {"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected}


class PreferenceFormat(RowFormat):
    """``prompt`` + ``chosen``/``rejected`` strings."""

    name = "preference"
    features = {
        "prompt": datasets.Value("string"),
        "chosen": datasets.Value("string"),
        "rejected": datasets.Value("string"),
    }

    def matches(self, row: Row) -> bool:
        return bool(row.get("chosen")) and bool(row.get("rejected"))

    def encode(self, rows: Sequence[Row], encoder: Encoder) -> list[dict[str, list[int]]]:
        prefix = list(encoder.framing.prefix)
        columns = ("prompt", "chosen", "rejected")
        prompts, chosen, rejected = (encoder.ids([r[c] for r in rows]) for c in columns)
        return [
            _pair(prefix + p, self._with_eos(c, encoder), self._with_eos(r, encoder))
            for p, c, r in zip(prompts, chosen, rejected, strict=True)
        ]

    @staticmethod
    def _with_eos(ids: list[int], encoder: Encoder) -> list[int]:
        eos = encoder.eos
        return ids if eos and ids[-len(eos) :] == eos else ids + eos


class ChatPreferenceFormat(RowFormat):
    """``chosen_messages``/``rejected_messages`` turns after the prompt turns in ``messages``."""

    name = "chat_preference"
    features = {
        "messages": datasets.List(MESSAGE),
        "chosen_messages": datasets.List(MESSAGE),
        "rejected_messages": datasets.List(MESSAGE),
    }

    def matches(self, row: Row) -> bool:
        return bool(row.get("chosen_messages")) and bool(row.get("rejected_messages"))

    def encode(self, rows: Sequence[Row], encoder: Encoder) -> list[dict[str, list[int]]]:
        tokenizer = encoder.tokenizer
        if not getattr(tokenizer, "chat_template", None):
            raise ChatTemplateError(
                f"chat preference pairs need a tokenizer with a chat template, but this "
                f"{type(tokenizer).__name__} has none. Fix: use the tokenizer of a chat model, give it a "
                f"template, or write the pairs as prompt/chosen/rejected text."
            )
        return [self._encode_row(row, encoder) for row in rows]

    def _encode_row(self, row: Row, encoder: Encoder) -> dict[str, list[int]]:
        prompt = list(row.get("messages") or [])
        chosen, rejected = row["chosen_messages"], row["rejected_messages"]
        if not prompt:
            prompt, chosen, rejected = split_prompt(chosen, rejected)
        if not prompt or not chosen or not rejected:
            raise ValueError(
                "a chat preference pair needs prompt turns and a differing chosen and rejected answer. "
                "Fix: give the prompt turns (`messages`, or TRL's `prompt`), or chosen/rejected "
                "conversations that share their first turns."
            )
        render = encoder.tokenizer.apply_chat_template
        texts = [
            render(prompt, tokenize=False, add_generation_prompt=True),
            render(prompt + chosen, tokenize=False),
            render(prompt + rejected, tokenize=False),
        ]
        prompt_ids, full_chosen, full_rejected = encoder.ids(texts)
        shared = min(_common_prefix(prompt_ids, full_chosen), _common_prefix(prompt_ids, full_rejected))
        return _pair(prompt_ids[:shared], full_chosen[shared:], full_rejected[shared:])


for _format in (PreferenceFormat(), ChatPreferenceFormat()):
    register_format(_format)


class TruncatePairs:
    """Batched ``Dataset.map``: ``max_prompt_length`` then ``max_length``; drops pairs left without a
    completion (picklable, for ``num_proc``)."""

    def __init__(
        self,
        max_length: int | None,
        max_prompt_length: int | None,
        special_ids: set[int],
        prompt_truncation: str = "keep_end",
    ) -> None:
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length
        self.special_ids = special_ids
        self.prompt_truncation = prompt_truncation

    def __call__(self, batch: dict[str, list[list[int]]]) -> dict[str, list[list[int]]]:
        out: dict[str, list[list[int]]] = {c: [] for c in PREFERENCE_COLUMNS}
        for prompt, chosen, rejected in zip(*(batch[c] for c in PREFERENCE_COLUMNS), strict=True):
            pair = self.truncate(list(prompt), list(chosen), list(rejected))
            if pair is not None:
                for column in PREFERENCE_COLUMNS:
                    out[column].append(pair[column])
        return out

    def truncate(
        self, prompt: list[int], chosen: list[int], rejected: list[int]
    ) -> dict[str, list[int]] | None:
        """One pair truncated, or ``None`` when its prompt alone fills ``max_length``."""
        limit = self.max_prompt_length
        if limit is not None and len(prompt) > limit and self.prompt_truncation == "keep_start":
            prompt = prompt[:limit]
        elif limit is not None and len(prompt) > limit:
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
        return _pair(prompt, chosen, rejected)


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
