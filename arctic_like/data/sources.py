"""Reading data sources into ``datasets.Dataset`` objects with columns ``text``, ``prompt``, ``response``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import datasets

from arctic_like.config.parts import (
    AdditionSourceConfig,
    CallableSourceConfig,
    FileSourceConfig,
    ReverseSourceConfig,
)
from arctic_like.config.trainer import import_object
from arctic_like.data.synthetic import make_task

__all__ = ["COLUMNS", "load_source"]

COLUMNS = ("text", "prompt", "response")
_BUILDERS = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv"}


def _rows_to_dataset(rows: Iterable[Mapping[str, Any] | str], fields: tuple[str, str, str], where: str):
    columns: dict[str, list[str]] = {c: [] for c in COLUMNS}
    for row in rows:
        if isinstance(row, str):
            row = {fields[0]: row}
        elif not isinstance(row, Mapping):
            raise ValueError(f"{where} produced a {type(row).__name__}; expected dicts or strings")
        for column, field in zip(COLUMNS, fields, strict=True):
            value = row.get(field)
            columns[column].append("" if value is None else str(value))
    return datasets.Dataset.from_dict(columns)


def _normalise(dataset: datasets.Dataset, fields: tuple[str, str, str], where: str) -> datasets.Dataset:
    present = set(dataset.column_names)
    if fields[0] not in present and not {fields[1], fields[2]} <= present:
        raise ValueError(
            f"{where} has columns {sorted(present)} but neither a text column {fields[0]!r} nor "
            f"prompt/response columns {fields[1]!r}/{fields[2]!r}. "
            f"Fix: set text_field (or prompt_field and response_field) in the source."
        )

    def convert(batch: dict[str, list[Any]]) -> dict[str, list[str]]:
        size = len(next(iter(batch.values())))
        out = {}
        for column, field in zip(COLUMNS, fields, strict=True):
            values = batch.get(field, [None] * size)
            out[column] = ["" if v is None else str(v) for v in values]
        return out

    return dataset.map(convert, batched=True, remove_columns=dataset.column_names, desc=None)


def load_source(
    source: FileSourceConfig | CallableSourceConfig | AdditionSourceConfig | ReverseSourceConfig,
    seed: int,
    split: str,
) -> datasets.Dataset:
    """One source as a dataset. For synthetic tasks ``split`` picks the training or the held-out problems."""
    if isinstance(source, AdditionSourceConfig | ReverseSourceConfig):
        task = make_task(source, seed)
        problems = task.train_problems() if split == "train" else task.eval_problems()
        return datasets.Dataset.from_dict(
            {
                "text": [p + a for p, a in problems],
                "prompt": [p for p, _ in problems],
                "response": [a for _, a in problems],
            }
        )
    if isinstance(source, FileSourceConfig):
        fields = (source.text_field, source.prompt_field, source.response_field)
        path = source.path
        if not any(ch in str(path) for ch in "*?[") and not path.exists():
            raise FileNotFoundError(
                f"data source {str(path)!r} does not exist. Fix: check data.sources (relative paths are "
                f"resolved against the recipe's directory)."
            )
        dataset = datasets.load_dataset(_BUILDERS[source.type], data_files=str(path), split="train")
        dataset = _normalise(dataset, fields, f"data source {str(path)!r}")
    else:
        fields = ("text", "prompt", "response")
        try:
            function = import_object(source.function)
        except ImportError as error:
            raise ValueError(f"cannot import data source function {source.function!r}: {error}") from error
        result = function(**source.kwargs)
        where = f"data source function {source.function!r}"
        if isinstance(result, datasets.Dataset):
            dataset = _normalise(result, fields, where)
        else:
            dataset = _rows_to_dataset(result, fields, where)
    if source.limit is not None and len(dataset) > source.limit:
        dataset = dataset.select(range(source.limit))
    return dataset
