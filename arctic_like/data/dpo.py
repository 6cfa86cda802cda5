"""The ``dpo`` data factory: preference pairs from the recipe's sources, tokenized by
:class:`~arctic_like.data.preference.PreferenceEncoder` and batched by
:class:`~arctic_like.data.preference.PairCollator`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import datasets
from pydantic import Field, field_validator
from torch.utils.data import DataLoader

from arctic_like.config.base import HumanInt
from arctic_like.config.parts import (
    AdditionSourceConfig,
    CallableSourceConfig,
    DataConfig,
    FileSourceConfig,
    ReverseSourceConfig,
)
from arctic_like.config.trainer import import_object
from arctic_like.data.base import DataFactory, _quiet_progress
from arctic_like.data.preference import PREFERENCE_COLUMNS, PairCollator, PreferenceEncoder

__all__ = ["DPODataConfig", "DPODataFactory"]

_BUILDERS = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv"}
_ROW_COLUMNS = ("prompt", "chosen", "rejected")


class DPODataConfig(DataConfig):
    """Preference data: ``max_length`` bounds prompt + completion, ``max_prompt_length`` the prompt."""

    max_length: HumanInt = Field(default=1024, ge=2)
    max_prompt_length: HumanInt | None = Field(default=None, ge=1)
    packing: bool = False

    @field_validator("packing")
    @classmethod
    def _no_packing(cls, value: bool) -> bool:
        if value:
            raise ValueError("preference pairs are not packed. Fix: remove data.packing (or set it false).")
        return value


def _read_pairs(source: Any) -> datasets.Dataset:
    """The prompt/chosen/rejected rows of one source."""
    if isinstance(source, AdditionSourceConfig | ReverseSourceConfig):
        raise ValueError(
            f"the synthetic {source.type!r} task gives prompt/response pairs, not preference pairs. "
            "Fix: give the dpo data factory a file or a callable with prompt/chosen/rejected rows."
        )
    if isinstance(source, FileSourceConfig):
        if not source.path.exists():
            raise FileNotFoundError(
                f"data source {str(source.path)!r} does not exist. Fix: check data.sources (relative paths "
                "are resolved against the recipe's directory)."
            )
        where = f"data source {str(source.path)!r}"
        dataset = datasets.load_dataset(_BUILDERS[source.type], data_files=str(source.path), split="train")
    else:
        where = f"data source function {source.function!r}"
        assert isinstance(source, CallableSourceConfig)
        result = import_object(source.function)(**source.kwargs)
        dataset = result if isinstance(result, datasets.Dataset) else datasets.Dataset.from_list(list(result))
    missing = [c for c in ("chosen", "rejected") if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"{where} has columns {sorted(dataset.column_names)}, without {' and '.join(missing)}. "
            "Fix: give each row `prompt`, `chosen` and `rejected` (text, or chat turns)."
        )
    dataset = dataset.select_columns([c for c in _ROW_COLUMNS if c in dataset.column_names])
    if source.limit is not None and len(dataset) > source.limit:
        dataset = dataset.select(range(source.limit))
    return dataset


class _EncodePairs:
    """Batched ``Dataset.map``: tokenize each row, dropping those truncation leaves without a completion."""

    def __init__(self, encoder: PreferenceEncoder) -> None:
        self.encoder = encoder

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[list[int]]]:
        out: dict[str, list[list[int]]] = {c: [] for c in PREFERENCE_COLUMNS}
        columns = list(batch)
        for values in zip(*batch.values(), strict=True):
            encoded = self.encoder.row(dict(zip(columns, values, strict=True)))
            if encoded is not None:
                for column in PREFERENCE_COLUMNS:
                    out[column].append(encoded[column])
        return out


class DPODataFactory(DataFactory):
    """Preference pairs for DPO (``prompt``/``chosen``/``rejected``, text or chat turns)."""

    name = "dpo"
    config = DPODataConfig

    def load(self) -> datasets.DatasetDict:
        if not self.config.sources:
            raise ValueError("data.sources is empty. Fix: add a source with prompt/chosen/rejected rows.")
        with _quiet_progress():
            train = [_read_pairs(s) for s in self.config.sources]
            out = datasets.DatasetDict({"train": datasets.concatenate_datasets(train)})
            if self.config.eval_sources:
                evaluation = [_read_pairs(s) for s in self.config.eval_sources]
                out["eval"] = datasets.concatenate_datasets(evaluation)
        self._loaded = out
        return out

    def raw_texts(self) -> Iterator[str]:
        loaded = self._loaded if self._loaded is not None else self.load()
        for split in loaded.values():
            for row in split:
                for column in _ROW_COLUMNS:
                    value = row.get(column) or ""
                    yield value if isinstance(value, str) else "".join(t["content"] for t in value)

    def process(self, dataset: datasets.DatasetDict) -> datasets.DatasetDict:
        """Tokenize the pairs (see :class:`~arctic_like.data.preference.PreferenceEncoder`)."""
        encoder = PreferenceEncoder(self.tokenizer, self.config.max_length, self.config.max_prompt_length)
        key = self.cache_key()
        out = datasets.DatasetDict()
        with _quiet_progress():
            for split, data in dataset.items():
                out[split] = data.map(
                    _EncodePairs(encoder),
                    batched=True,
                    remove_columns=data.column_names,
                    new_fingerprint=f"{key}-{split}-{data._fingerprint}-pairs",
                )
        return out

    def create_dataloader(self, dataset: datasets.Dataset, training: bool) -> DataLoader:
        loader = super().create_dataloader(dataset, training)
        loader.collate_fn = PairCollator(self.tokenizer.pad_token_id)
        return loader
