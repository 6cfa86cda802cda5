"""`DataSource`: where the rows of a data factory come from, one class per recipe ``type:``.

A source is a ``CallbackMixin`` (events ``call``, ``load``, ``normalize``), registered by ``name`` like the
factories, and built by the data factory as ``Source(data_factory, config)``. ``source(split)`` runs:

1. ``load(config, split)`` — read the raw rows as a ``datasets.Dataset`` (``split`` is ``"train"`` or
   ``"eval"``). A ``post-load`` callback sees (and may filter) these raw rows.
2. ``fraction`` / ``limit`` keep a subset (the first rows, or a seeded random one with ``shuffle``).
3. ``normalize(dataset)`` — ``column_mapping`` / ``role_mapping`` into the factory's row columns.

A user source subclasses it with a ``name`` (and a ``config`` subclass of ``DataSourceConfig`` for its own
fields) in a ``code:`` file, and a recipe selects it with ``type: <name>``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import datasets

from arctic_like.callback import CallbackMixin
from arctic_like.config.parts import DataSourceConfig
from arctic_like.context import TrainerContext
from arctic_like.data.fingerprint import class_fingerprint, digest, path_fingerprint
from arctic_like.data.rows import normalize_rows
from arctic_like.registry import Registrable

__all__ = ["DataSource", "rows_to_dataset"]

logger = logging.getLogger("arctic_like.data")


def rows_to_dataset(rows: Iterable[Mapping[str, Any] | str], where: str) -> datasets.Dataset:
    """A dataset from dicts (their keys are the columns) or strings (a ``text`` column)."""
    records = []
    for row in rows:
        if isinstance(row, str):
            records.append({"text": row})
        elif isinstance(row, Mapping):
            records.append(dict(row))
        else:
            raise ValueError(f"{where} produced a {type(row).__name__}; expected dicts or strings")
    return datasets.Dataset.from_list(records)


class DataSource(TrainerContext, Registrable, CallbackMixin):
    """Reads one source's rows for a data factory; ``source(split)`` → rows in the factory's columns."""

    name: ClassVar[str]
    config: ClassVar[type[DataSourceConfig]] = DataSourceConfig  # type: ignore[misc]

    def __init__(self, data_factory: Any, config: DataSourceConfig) -> None:
        self.data_factory = data_factory
        self.config = config  # type: ignore[misc]

    @property
    def trainer(self) -> Any:
        return self.data_factory.trainer

    @property
    def seed(self) -> int:
        """This source's seed: ``config.seed``, else the run's."""
        return self.config.seed if self.config.seed is not None else self.data_factory.seed

    def describe(self) -> str:
        """How error messages name this source."""
        return f"data source {self.config.type!r}"

    def __call__(self, split: str) -> datasets.Dataset:
        loaded = self.load(self.config, split)
        if not isinstance(loaded, datasets.Dataset):
            raise TypeError(
                f"{type(self).__qualname__}.load returned a {type(loaded).__name__}; expected a "
                f"datasets.Dataset. Fix: return datasets.Dataset.from_list(rows) (or "
                f"arctic_like.data.rows_to_dataset(rows), which also takes strings)."
            )
        return self.normalize(self._sample(loaded))

    def load(self, config: DataSourceConfig, split: str) -> datasets.Dataset:
        """The raw rows of ``split`` (``"train"``, or ``"eval"`` for ``eval_sources`` and held-out rows)."""
        raise NotImplementedError(f"{type(self).__name__} must implement load(config, split)")

    def normalize(self, dataset: datasets.Dataset) -> datasets.Dataset:
        """The rows in the data factory's row columns (``column_mapping``, ``role_mapping``)."""
        factory = self.data_factory
        return normalize_rows(dataset, self.config, factory.row_features(), self.describe(), factory.num_proc)

    def held_out(self) -> bool:
        """Whether this training source also gives held-out rows (``self("eval")``) for evaluation."""
        return False

    def exact_match_problems(self) -> list[tuple[str, str]]:
        """``(prompt, answer)`` pairs scored by greedy generation (``compute_metrics``); none by default."""
        return []

    def fingerprint(self) -> str | None:
        """A digest of everything this source's rows depend on, for the processed-data cache key: its class's
        code, its config, and the content of the files and folders its config names. Override it when
        ``load`` reads something else; return ``None`` to bypass the cache."""
        paths = [path_fingerprint(value) for _, value in self.config if isinstance(value, Path)]
        return digest(class_fingerprint(type(self)), self.config.model_dump(mode="json"), paths)

    def _sample(self, dataset: datasets.Dataset) -> datasets.Dataset:
        config = self.config
        count = len(dataset)
        if config.fraction is not None:
            count = round(count * config.fraction)
        if config.limit is not None:
            count = min(count, config.limit)
        if count == len(dataset):
            return dataset
        if config.shuffle:
            return dataset.select(sorted(random.Random(self.seed).sample(range(len(dataset)), count)))
        return dataset.select(range(count))
