"""Example formats: which row columns a kind of example uses, how a row is recognised, how it is tokenized.

Built in: ``chat`` (a ``messages`` list of ``{role, content}``), ``prompt_response`` (``prompt`` and
``response``) and ``text``. A data factory lists the formats it reads in ``formats``, in the order rows are
matched; its loaded rows carry the union of their columns. A new kind of example (preference pairs for DPO:
``prompt``/``chosen``/``rejected``) is a :class:`RowFormat` subclass registered with :func:`register_format`,
whose ``encode`` returns the columns its trainer needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import datasets

from arctic_like.data.rows import MESSAGE
from arctic_like.data.tokenize import Encoder

__all__ = [
    "FORMATS",
    "ChatFormat",
    "EncodeRows",
    "PromptResponseFormat",
    "RowFormat",
    "TextFormat",
    "register_format",
    "row_features",
]

Row = Mapping[str, Any]


class RowFormat:
    """One kind of example: the columns it reads (``features``), when a row is one, how it is tokenized."""

    name: ClassVar[str]
    features: ClassVar[dict[str, Any]]

    def matches(self, row: Row) -> bool:
        """Whether ``row`` is an example of this format."""
        raise NotImplementedError

    def encode(self, rows: Sequence[Row], encoder: Encoder) -> list[dict[str, list[int]]]:
        """The tokenized columns (``input_ids`` and ``labels`` for the built-in formats) of each row."""
        raise NotImplementedError


class ChatFormat(RowFormat):
    """``messages``: rendered with the tokenizer's chat template."""

    name = "chat"
    features = {"messages": datasets.List(MESSAGE)}

    def matches(self, row: Row) -> bool:
        return bool(row.get("messages"))

    def encode(self, rows: Sequence[Row], encoder: Encoder) -> list[dict[str, list[int]]]:
        return [_columns(encoder.chat(row["messages"])) for row in rows]


class PromptResponseFormat(RowFormat):
    """``prompt`` then ``response``; the prompt is not a target when the factory masks it."""

    name = "prompt_response"
    features = {"prompt": datasets.Value("string"), "response": datasets.Value("string")}

    def matches(self, row: Row) -> bool:
        return bool(row.get("prompt") or row.get("response"))

    def encode(self, rows: Sequence[Row], encoder: Encoder) -> list[dict[str, list[int]]]:
        pairs = encoder.prompt_response([r["prompt"] for r in rows], [r["response"] for r in rows])
        return [_columns(pair) for pair in pairs]


class TextFormat(RowFormat):
    """``text``: every token is a target."""

    name = "text"
    features = {"text": datasets.Value("string")}

    def matches(self, row: Row) -> bool:
        return bool(row.get("text"))

    def encode(self, rows: Sequence[Row], encoder: Encoder) -> list[dict[str, list[int]]]:
        return [_columns(pair) for pair in encoder.text([r["text"] for r in rows])]


def _columns(encoded: tuple[list[int], list[int]]) -> dict[str, list[int]]:
    return {"input_ids": encoded[0], "labels": encoded[1]}


FORMATS: dict[str, RowFormat] = {}
"""Registered formats by name."""


def register_format(row_format: RowFormat) -> RowFormat:
    """Make ``row_format`` available to data factories under its ``name`` (a later one replaces it)."""
    FORMATS[row_format.name] = row_format
    return row_format


for _format in (ChatFormat(), PromptResponseFormat(), TextFormat()):
    register_format(_format)


def row_features(format_names: Sequence[str]) -> datasets.Features:
    """The row columns the formats read (``text``, ``prompt``, ``response``, ``messages`` first)."""
    merged: dict[str, Any] = {}
    for name in format_names:
        merged.update(FORMATS[name].features)
    order = ("text", "prompt", "response", "messages")
    ranked = sorted(merged, key=lambda column: order.index(column) if column in order else len(order))
    return datasets.Features({column: merged[column] for column in ranked})


class EncodeRows:
    """``Dataset.map`` function (batched): tokenizes each row with the first of ``formats`` it matches."""

    def __init__(self, format_names: Sequence[str], encoder: Encoder, factory: str) -> None:
        self.formats = [FORMATS[name] for name in format_names]
        self.encoder = encoder
        self.factory = factory

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[list[int]]]:
        columns = list(batch)
        rows = [dict(zip(columns, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        groups: dict[int, list[int]] = {}
        for index, row in enumerate(rows):
            chosen = next((k for k, f in enumerate(self.formats) if f.matches(row)), None)
            if chosen is None:
                raise self._no_format(row)
            groups.setdefault(chosen, []).append(index)
        results: list[dict[str, list[int]]] = [{}] * len(rows)
        for chosen, indices in groups.items():
            encoded = self.formats[chosen].encode([rows[i] for i in indices], self.encoder)
            for index, columns_of_row in zip(indices, encoded, strict=True):
                results[index] = columns_of_row
        keys = list(results[0]) if results else ["input_ids", "labels"]
        return {key: [r[key] for r in results] for key in keys}

    def _no_format(self, row: Row) -> ValueError:
        names = [f.name for f in self.formats]
        has = [name for name, f in FORMATS.items() if name not in names and f.matches(row)]
        if has:
            return ValueError(
                f"the {self.factory!r} data factory reads {' or '.join(names)} examples, but an example has "
                f"only {' and '.join(has)}. Fix: map the source's columns to those of a format it reads "
                f"(column_mapping), or use another data.type (causal reads plain text)."
            )
        return ValueError(
            "an example has no text, prompt/response or messages. Fix: check the sources, or drop empty rows "
            "with a post-load callback."
        )
