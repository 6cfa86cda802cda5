"""Built-in data sources: local files, ``save_to_disk`` folders, datasets in the local ``datasets`` cache,
and Python functions. (The synthetic tasks are in :mod:`arctic_like.data.synthetic`.)"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
from pydantic import field_validator

from arctic_like.config.parts import DataSourceConfig, resolve_recipe_path
from arctic_like.config.trainer import import_object
from arctic_like.data.fingerprint import callable_fingerprint, class_fingerprint, digest, path_fingerprint
from arctic_like.data.source import DataSource, rows_to_dataset

__all__ = [
    "CSVSource",
    "CallableSource",
    "CallableSourceConfig",
    "DiskSource",
    "DiskSourceConfig",
    "FileSource",
    "FileSourceConfig",
    "HFDataSource",
    "HFDataSourceConfig",
    "JSONLSource",
    "JSONSource",
    "ParquetSource",
    "pick_split",
]

EVAL_SPLIT_NAMES = ("eval", "validation", "test")
"""Split names tried, in order, for the ``eval`` split of a dataset with several splits."""


def pick_split(splits: list[str], wanted: str | None, role: str, where: str) -> str:
    """The split to read: ``wanted`` if given, the only split, ``train`` or the first of
    :data:`EVAL_SPLIT_NAMES` present for ``role``."""
    if wanted is not None:
        if wanted not in splits:
            raise ValueError(f"{where} has no split {wanted!r}; splits: {', '.join(splits)}. Fix: set split.")
        return wanted
    if len(splits) == 1:
        return splits[0]
    candidates = ("train",) if role == "train" else EVAL_SPLIT_NAMES
    for name in candidates:
        if name in splits:
            return name
    raise ValueError(
        f"{where} has splits {', '.join(splits)} and none is {' / '.join(candidates)}. "
        f"Fix: set split: <one of them>."
    )


# ---- files -------------------------------------------------------------------------------------------------


class FileSourceConfig(DataSourceConfig):
    """A local file or glob pattern (relative paths start at the recipe's folder)."""

    path: Path

    @field_validator("path", mode="after")
    @classmethod
    def _resolve(cls, path: Path) -> Path:
        return resolve_recipe_path(path)


class FileSource(DataSource):
    """Rows of a local ``jsonl``/``json``/``csv``/``parquet`` file (or glob), read with ``datasets``."""

    config = FileSourceConfig
    builder = "json"

    def describe(self) -> str:
        return f"data source {str(self.config.path)!r}"

    def load(self, config: FileSourceConfig, split: str) -> datasets.Dataset:
        path = config.path
        if not any(ch in str(path) for ch in "*?[") and not path.exists():
            raise FileNotFoundError(
                f"data source {str(path)!r} does not exist. Fix: check data.sources (relative paths are "
                f"resolved against the recipe's directory)."
            )
        # A cache of its own per content: datasets' cache keys local files by size and mtime only.
        cache_dir = Path(datasets.config.HF_DATASETS_CACHE) / "arctic_like-files" / path_fingerprint(path)
        try:
            with _datasets_quiet():  # a parse error is reported below, naming the file and line
                return datasets.load_dataset(
                    self.builder, data_files=str(path), split="train", cache_dir=str(cache_dir)
                )
        except Exception as error:  # the file could not be parsed: say where
            raise ValueError(_unreadable(path, self.config.type, error)) from error

    def normalize(self, dataset: datasets.Dataset) -> datasets.Dataset:
        try:
            return super().normalize(dataset)
        except UnicodeDecodeError as error:  # pyarrow reads bytes that are not UTF-8 without complaint
            raise ValueError(_unreadable(self.config.path, self.config.type, error)) from error


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


class JSONLSource(FileSource):
    name = "jsonl"


class JSONSource(FileSource):
    name = "json"


class CSVSource(FileSource):
    name = "csv"
    builder = "csv"


class ParquetSource(FileSource):
    name = "parquet"
    builder = "parquet"


# ---- datasets written by save_to_disk ----------------------------------------------------------------------


class DiskSourceConfig(DataSourceConfig):
    """A folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""

    path: Path
    split: str | None = None
    """Which split of a ``DatasetDict`` (default: the only one, ``train``, or ``eval``/``validation``/
    ``test``)."""

    @field_validator("path", mode="after")
    @classmethod
    def _resolve(cls, path: Path) -> Path:
        return resolve_recipe_path(path)


def _load_from_disk(path: Path, wanted: str | None, role: str, where: str) -> datasets.Dataset:
    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{where}: {str(path)!r} is not a folder written by save_to_disk ({error}). Fix: point path at "
            f"the folder given to Dataset.save_to_disk()."
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        return loaded[pick_split(list(loaded), wanted, role, where)]
    return loaded


class DiskSource(DataSource):
    """Rows of a ``datasets`` folder written by ``save_to_disk``."""

    name = "disk"
    config = DiskSourceConfig

    def describe(self) -> str:
        return f"data source {str(self.config.path)!r}"

    def load(self, config: DiskSourceConfig, split: str) -> datasets.Dataset:
        return _load_from_disk(config.path, config.split, split, self.describe())


# ---- datasets from the Hugging Face Hub, read from the local cache -----------------------------------------


class HFDataSourceConfig(DataSourceConfig):
    """A dataset name (``org/name``), read offline from the local ``datasets`` cache, or a ``save_to_disk``
    folder. ``name_or_path`` may end in ``:split`` (ArcticTraining's spelling)."""

    name_or_path: str
    subset: str | None = None
    """The dataset's configuration (``load_dataset``'s second argument), if it has several."""
    split: str | None = None
    """Which split (default: the only one, ``train``, or ``eval``/``validation``/``test``)."""
    cache_dir: Path | None = None
    """The ``datasets`` cache to read (default: ``HF_DATASETS_CACHE``, i.e. ``$HF_HOME/datasets``)."""

    @field_validator("name_or_path", mode="after")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name_or_path is empty; write a dataset name like org/name or a folder")
        return value

    def dataset_and_split(self) -> tuple[str, str | None]:
        """``name_or_path`` without a ``:split`` suffix, and the split (the suffix or ``split``)."""
        name, sep, suffix = self.name_or_path.partition(":")
        if sep and re.fullmatch(r"[\w.\-\[\]:%]+", suffix) and not Path(self.name_or_path).exists():
            return name, suffix
        return self.name_or_path, self.split


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """``datasets`` reads the Hub's cache without trying the network (its offline mode, for this call)."""
    previous = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = previous


class HFDataSource(DataSource):
    """A Hugging Face dataset: a ``save_to_disk`` folder, or a Hub dataset already in the local ``datasets``
    cache (this never downloads: runs are offline and reproducible)."""

    name = "huggingface"
    config = HFDataSourceConfig

    def describe(self) -> str:
        return f"data source {self.config.name_or_path!r}"

    def _folder(self) -> Path | None:
        name, _ = self.config.dataset_and_split()
        path = resolve_recipe_path(Path(name))
        return path if path.is_dir() else None

    def cache_dir(self) -> str:
        """The ``datasets`` cache this source reads."""
        return str(self.config.cache_dir or datasets.config.HF_DATASETS_CACHE)

    def load_cached(self, split: str | None = None) -> datasets.DatasetDict | datasets.Dataset:
        """The dataset (one ``split``, which may be sliced like ``train[:100]``, or all of them) from the
        local cache, memory-mapped; never downloads."""
        name, _ = self.config.dataset_and_split()
        cache_dir = self.cache_dir()
        try:
            with _offline():
                return datasets.load_dataset(name, self.config.subset, split=split, cache_dir=cache_dir)
        except (ConnectionError, FileNotFoundError) as error:
            subset = f", {self.config.subset!r}" if self.config.subset else ""
            raise FileNotFoundError(
                f"{self.describe()} is not in the local datasets cache {cache_dir!r}, and runs never "
                f"download ({type(error).__name__}: {str(error).splitlines()[0]}). Fix: on a machine with "
                f"network run "
                f'`python -c "import datasets; datasets.load_dataset({name!r}{subset})"` with the same '
                f"HF_DATASETS_CACHE (or copy that cache here), or save the data with save_to_disk and use "
                f"{{type: disk, path: <folder>}}."
            ) from None

    def load(self, config: HFDataSourceConfig, split: str) -> datasets.Dataset:
        _, wanted = config.dataset_and_split()
        folder = self._folder()
        if folder is not None:
            return _load_from_disk(folder, wanted, split, self.describe())
        if wanted is not None:
            return self.load_cached(wanted)
        loaded = self.load_cached()
        return loaded[pick_split(list(loaded), None, split, self.describe())]

    def fingerprint(self) -> str | None:
        """A folder's content; for a cached Hub dataset, its cache files (named by the dataset's revision,
        never rewritten in place) with their sizes."""
        folder = self._folder()
        if folder is not None:
            content = path_fingerprint(folder)
        else:
            files = sorted(
                {f["filename"] for split in self.load_cached().values() for f in split.cache_files}
            )
            content = digest([[name, Path(name).stat().st_size] for name in files])
        return digest(class_fingerprint(type(self)), self.config.model_dump(mode="json"), content)


# ---- Python functions --------------------------------------------------------------------------------------


class CallableSourceConfig(DataSourceConfig):
    """A Python function ``pkg.mod:fn`` returning rows (dicts), strings, or a ``datasets.Dataset``."""

    function: str
    kwargs: dict[str, Any] = {}

    @field_validator("function")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not re.fullmatch(r"[\w.]+[:.]\w+", value):
            raise ValueError(f"{value!r} is not an import path; write it as 'package.module:function'")
        return value


class CallableSource(DataSource):
    """Rows returned by a Python function (called with ``kwargs``)."""

    name = "callable"
    config = CallableSourceConfig

    def describe(self) -> str:
        return f"data source function {self.config.function!r}"

    def _function(self) -> Any:
        try:
            return import_object(self.config.function)
        except ImportError as error:
            raise ValueError(
                f"cannot import data source function {self.config.function!r}: {error}. Fix: write it as "
                "package.module:function, importable from here (a recipe's code: files are)."
            ) from error

    def load(self, config: CallableSourceConfig, split: str) -> datasets.Dataset:
        result = self._function()(**config.kwargs)
        return result if isinstance(result, datasets.Dataset) else rows_to_dataset(result, self.describe())

    def fingerprint(self) -> str | None:
        """The function's code (and what it references) and the arguments."""
        return digest(super().fingerprint(), callable_fingerprint(self._function()))
