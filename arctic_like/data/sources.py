"""Reading data sources into ``datasets.Dataset`` objects with columns ``text``, ``prompt``, ``response``."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
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


class _NotTheRightColumns(ValueError):
    """A data set without the text (or prompt and response) column the source names."""


def _normalise(dataset: datasets.Dataset, fields: tuple[str, str, str], where: str) -> datasets.Dataset:
    present = set(dataset.column_names)
    if fields[0] not in present and not {fields[1], fields[2]} <= present:
        raise _NotTheRightColumns(
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
        try:
            with _datasets_quiet():  # a parse error is reported below, naming the file and line
                dataset = datasets.load_dataset(_BUILDERS[source.type], data_files=str(path), split="train")
            dataset = _normalise(dataset, fields, f"data source {str(path)!r}")
        except _NotTheRightColumns:
            raise
        except Exception as error:  # the file could not be parsed: say where
            raise ValueError(_unreadable(path, source.type, error)) from error
    else:
        fields = ("text", "prompt", "response")
        try:
            function = import_object(source.function)
        except ImportError as error:
            raise ValueError(
                f"cannot import data source function {source.function!r}: {error}. Fix: write it as "
                "package.module:function, importable from here (a recipe's code: files are)."
            ) from error
        result = function(**source.kwargs)
        where = f"data source function {source.function!r}"
        if isinstance(result, datasets.Dataset):
            dataset = _normalise(result, fields, where)
        else:
            dataset = _rows_to_dataset(result, fields, where)
    if source.limit is not None and len(dataset) > source.limit:
        dataset = dataset.select(range(source.limit))
    return dataset


@contextlib.contextmanager
def _datasets_quiet() -> Iterator[None]:
    """Silence the `datasets` logger (it logs a parse error before raising it)."""
    log = logging.getLogger("datasets")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _unreadable(path: Path, kind: str, error: Exception) -> str:
    """Why `datasets` could not read a data file, naming the file (and for JSON lines the first bad line)."""
    where = f"data source {str(path)!r}"
    if not path.is_file():
        return f"{where} cannot be read ({type(error).__name__}: {error}). Fix: check data.sources."
    if path.stat().st_size == 0:
        return f"{where} is empty. Fix: add examples, or remove it from data.sources."
    if kind == "jsonl":
        try:
            problem = _first_bad_line(path)
        except OSError as os_error:
            return f"{where} cannot be read ({os_error.strerror or os_error}). Fix: check its permissions."
        except UnicodeDecodeError as decode_error:
            return f"{where} is not UTF-8 text ({decode_error.reason}). Fix: save it as UTF-8."
        if problem is not None:
            return f"{where}, {problem}"
    cause = error.__cause__ or error
    first_line = (str(cause).splitlines() or [""])[0]
    return (
        f"{where} cannot be read as {kind}: {type(cause).__name__}: {first_line}. "
        f"Fix: check the file, or its type ({kind}) in data.sources."
    )


def _first_bad_line(path: Path) -> str | None:
    """What is wrong with the first line of a JSON-lines file that is not a JSON object (or the whole file
    when it has only blank lines); None if every line is fine."""
    with open(path, encoding="utf-8") as f:
        seen = False
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            seen = True
            try:
                row = json.loads(line)
            except ValueError as error:
                return f"line {number}: not valid JSON ({error}). Fix: write one JSON object per line."
            if not isinstance(row, dict):
                kind = type(row).__name__
                return f"line {number}: a {kind}, not a JSON object. Fix: write one JSON object per line."
    return None if seen else "has only blank lines. Fix: add examples, or remove it from data.sources."
