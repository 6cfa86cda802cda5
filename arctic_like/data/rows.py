"""Turning a source's own columns into the factory's row columns (``text``, ``prompt``, ``response``,
``messages``): ``column_mapping`` renames, ``role_mapping`` builds chat ``messages`` from columns or from a
list of turns, and every row column the factory knows is present afterwards (empty when the source lacks it),
so rows of several sources concatenate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import datasets

from arctic_like.config.parts import DataSourceConfig

__all__ = ["CONTENT_KEYS", "MESSAGE", "normalize_rows", "procs"]

MESSAGE = {"role": datasets.Value("string"), "content": datasets.Value("string")}
"""One chat turn as stored in the ``messages`` column."""

CONTENT_KEYS = ("content", "value", "text", "message")
"""Where the text of a turn is looked for in a list of turns (``role_mapping`` paths), in this order."""


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _message_content(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}]
        parts = [part.get("text") for part in content if isinstance(part, Mapping)]
        if all(isinstance(part, str) for part in parts) and len(parts) == len(content):
            return "".join(parts)
    raise ValueError(
        f"{where}: a message's content must be a string (or a list of text parts), got {content!r}. "
        f"Fix: convert it in a post-load callback of the source."
    )


def _clean_messages(messages: Any, where: str) -> list[dict[str, str]]:
    if messages is None:
        return []
    if not isinstance(messages, list | tuple):
        raise ValueError(f"{where}: `messages` must be a list of {{role, content}} turns, got {messages!r}")
    out = []
    for message in messages:
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise ValueError(
                f"{where}: every turn in `messages` needs a `role` and a `content`, got {message!r}. "
                f"Fix: map the source's turns with role_mapping."
            )
        out.append({"role": message["role"], "content": _message_content(message.get("content"), where)})
    return out


class _RoleMapper:
    """Builds ``messages`` for one row from ``role_mapping`` (picklable, for ``num_proc``)."""

    def __init__(self, role_mapping: dict[str, str], where: str, content_key: str | None = None) -> None:
        self.columns = [(role, path) for role, path in role_mapping.items() if "." not in path]
        self.filters: dict[str, list[tuple[str, str, str]]] = {}
        for role, path in role_mapping.items():
            if "." in path:
                array, field, value = path.split(".")
                self.filters.setdefault(array, []).append((field, value, role))
        self.where = where
        self.content_keys = (content_key,) if content_key else CONTENT_KEYS

    def __call__(self, row: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
        messages = [
            {"role": role, "content": _text(row.get(column))}
            for role, column in self.columns
            if row.get(column)
        ]
        for array, filters in self.filters.items():
            for turn in row.get(array) or []:
                if not isinstance(turn, Mapping):
                    continue
                role = next((r for field, value, r in filters if turn.get(field) == value), None)
                content = next((turn[k] for k in self.content_keys if turn.get(k) is not None), None)
                if role is not None and content is not None:
                    messages.append({"role": role, "content": _message_content(content, self.where)})
        return {"messages": messages}


class _Convert:
    """Fills every row column with clean values (picklable, for ``num_proc``)."""

    def __init__(self, features: datasets.Features, present: set[str], where: str) -> None:
        self.columns = list(features)
        self.turns = {c for c, f in features.items() if f == datasets.List(MESSAGE)}
        self.present = present
        self.where = where

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        size = len(next(iter(batch.values())))
        out: dict[str, list[Any]] = {}
        for column in self.columns:
            values = batch[column] if column in self.present else [None] * size
            if column in self.turns:  # `messages`, and chat turns of other formats (DPO's chosen_messages)
                out[column] = [_clean_messages(v, self.where) for v in values]
            else:
                out[column] = [_text(v) for v in values]
        return out


def normalize_rows(
    dataset: datasets.Dataset,
    config: DataSourceConfig,
    features: datasets.Features,
    where: str,
    num_proc: int = 1,
) -> datasets.Dataset:
    """``dataset`` with exactly the columns of ``features``, after ``column_mapping`` and ``role_mapping``."""
    columns = set(dataset.column_names)
    missing = sorted(set(config.column_mapping) - columns)
    if missing:
        raise ValueError(
            f"{where}: column_mapping names {missing} but the source has columns {sorted(columns)}. "
            f"Fix: map existing columns, e.g. column_mapping: {{{sorted(columns)[0]}: text}}."
        )
    unknown = sorted(set(config.column_mapping.values()) - set(features))
    if unknown:
        raise ValueError(
            f"{where}: column_mapping maps to {unknown}, which are not row columns; row columns: "
            f"{', '.join(features)}. Fix: map each source column to one of them."
        )
    if config.column_mapping:
        clashing = (set(config.column_mapping.values()) & columns) - set(config.column_mapping)
        dataset = dataset.remove_columns(sorted(clashing)).rename_columns(dict(config.column_mapping))
    if config.role_mapping:
        needed = {path.split(".")[0] for path in config.role_mapping.values()}
        absent = sorted(needed - set(dataset.column_names))
        if absent:
            raise ValueError(
                f"{where}: role_mapping reads columns {absent} but the source has columns "
                f"{sorted(dataset.column_names)}. Fix: name existing columns in role_mapping."
            )
        mapper = _RoleMapper(dict(config.role_mapping), where, config.content_key)
        dataset = dataset.map(mapper, num_proc=procs(num_proc, dataset), desc=None)
    present = set(dataset.column_names) & set(features)
    if not present:
        raise ValueError(
            f"{where} has columns {sorted(dataset.column_names)} but none of the row columns "
            f"({', '.join(features)}). Fix: map them with column_mapping (e.g. {{body: text}} or "
            f"{{question: prompt, answer: response}}) or build chat turns with role_mapping."
        )
    return dataset.map(
        _Convert(features, present, where),
        batched=True,
        remove_columns=dataset.column_names,
        features=features,
        num_proc=procs(num_proc, dataset),
        desc=None,
    )


def procs(num_proc: int, dataset: datasets.Dataset) -> int | None:
    """``num_proc`` for ``Dataset.map``: ``None`` (in process) for one, never more than there are rows."""
    return min(num_proc, len(dataset)) if num_proc > 1 and len(dataset) > 1 else None
