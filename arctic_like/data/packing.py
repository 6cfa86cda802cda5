"""Packing tokenized documents into rows of ``max_length`` tokens without letting them see each other.

Documents are placed whole (best fit, longest first), so few rows need padding; a document longer than
``max_length`` is cut into ``max_length`` pieces, each its own document. A packed row carries ``position_ids``
that restart at 0 for each document and no ``attention_mask``: ``transformers`` then builds a block-diagonal
causal mask for ``sdpa``/``eager`` attention (``masking_utils.find_packed_sequence_indices``; the model must
run without a KV cache, as in training) and uses the variable-length kernels for flash attention. The first
label of each document is ``IGNORE_INDEX``, so no document's first token is predicted from the previous one:
a packed row gives the same per-token losses as its documents one by one.
"""

from __future__ import annotations

import bisect
import importlib.util
from pathlib import Path
from typing import Any

import torch

from arctic_like.data.tokenize import IGNORE_INDEX

__all__ = ["Collator", "PackRows", "TruncateRows", "collate", "pack_documents", "packing_supported"]


def packing_supported() -> bool:
    """Whether the installed ``transformers`` isolates packed documents given restarting ``position_ids``
    (read from its source: importing ``masking_utils`` pulls in ``torch._dynamo``, seconds of imports)."""
    spec = importlib.util.find_spec("transformers.masking_utils")
    if spec is None or spec.origin is None:
        return False
    return "def find_packed_sequence_indices" in Path(spec.origin).read_text(encoding="utf-8")


def pack_documents(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices of the documents in each row: best fit decreasing (each document, longest first, goes to the
    fullest row it fits in). Every length must be at most ``capacity``."""
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, row), sorted
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        need = lengths[index]
        at = bisect.bisect_left(free, (need, -1))
        if at < len(free):
            room, row = free.pop(at)
        else:
            room, row = capacity, len(rows)
            rows.append([])
        rows[row].append(index)
        if room - need > 0:
            bisect.insort(free, (room - need, row))
    return rows


class PackRows:
    """``Dataset.map`` function (batched): documents → packed rows with ``position_ids`` (picklable)."""

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length

    def __call__(self, batch: dict[str, list[list[int]]]) -> dict[str, list[list[int]]]:
        size = self.max_length
        docs: list[tuple[list[int], list[int]]] = []
        for ids, labels in zip(batch["input_ids"], batch["labels"], strict=True):
            for start in range(0, len(ids), size):
                docs.append((ids[start : start + size], labels[start : start + size]))
        out: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": []}
        for row in pack_documents([len(ids) for ids, _ in docs], size):
            ids_row, labels_row, positions = [], [], []
            for index in row:
                ids, labels = docs[index]
                ids_row += ids
                labels_row += [IGNORE_INDEX, *labels[1:]]
                positions += range(len(ids))
            out["input_ids"].append(ids_row)
            out["labels"].append(labels_row)
            out["position_ids"].append(positions)
        return out


class TruncateRows:
    """``Dataset.map`` function (batched): one document per row, cut to ``max_length`` (picklable)."""

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length

    def __call__(self, batch: dict[str, list[list[int]]]) -> dict[str, list[list[int]]]:
        ids = [seq[: self.max_length] for seq in batch["input_ids"]]
        return {
            "input_ids": ids,
            "labels": [seq[: self.max_length] for seq in batch["labels"]],
            "attention_mask": [[1] * len(seq) for seq in ids],
        }


def collate(examples: list[dict[str, list[int]]], pad_token_id: int, pad_to: int | None = None) -> dict:
    """Right-pad examples to the longest (or ``pad_to``) into int64 tensors. Padding is ignored by the loss:
    label ``IGNORE_INDEX``, and attention mask 0 — or, in packed rows, ``position_ids`` restarting at 0, which
    make the padding a document of its own."""
    length = max(pad_to or 0, max(len(e["input_ids"]) for e in examples))
    packed = "position_ids" in examples[0]
    batch: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
    batch["position_ids" if packed else "attention_mask"] = []
    for e in examples:
        pad = length - len(e["input_ids"])
        batch["input_ids"].append(e["input_ids"] + [pad_token_id] * pad)
        batch["labels"].append(e["labels"] + [IGNORE_INDEX] * pad)
        if packed:
            batch["position_ids"].append(e["position_ids"] + list(range(pad)))
        else:
            batch["attention_mask"].append(e["attention_mask"] + [0] * pad)
    return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


class Collator:
    """Picklable :func:`collate` with fixed padding settings (dataloader workers)."""

    def __init__(self, pad_token_id: int, pad_to: int | None) -> None:
        self.pad_token_id, self.pad_to = pad_token_id, pad_to

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return collate(examples, self.pad_token_id, self.pad_to)
