"""The ``dpo`` data factory: preference pairs (the ``preference`` and ``chat_preference`` row formats of
:mod:`arctic_like.data.preference`) from any data source, truncated and batched in pairs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import datasets
from pydantic import Field, field_validator
from torch.utils.data import DataLoader

from arctic_like.config.base import HumanInt
from arctic_like.config.parts import DataConfig
from arctic_like.data.base import DataFactory, quiet_progress
from arctic_like.data.fingerprint import digest, tokenizer_fingerprint
from arctic_like.data.formats import EncodeRows
from arctic_like.data.preference import PREFERENCE_COLUMNS, PairCollator, TruncatePairs
from arctic_like.data.rows import procs
from arctic_like.data.source import DataSource
from arctic_like.data.tokenize import Encoder

__all__ = ["DPODataConfig", "DPODataFactory", "trl_chat_columns"]

_TRL_CHAT = {"chosen": "chosen_messages", "rejected": "rejected_messages", "prompt": "messages"}


class DPODataConfig(DataConfig):
    """Preference data: ``max_length`` bounds prompt + completion, ``max_prompt_length`` the prompt."""

    max_length: HumanInt = Field(default=1024, ge=2)
    max_prompt_length: HumanInt | None = Field(default=None, ge=1)
    prompt_truncation: Literal["keep_end", "keep_start"] = "keep_end"
    """Which part of a prompt longer than ``max_prompt_length`` is kept: its end (after its leading special
    tokens), or its start (ArcticTraining's default)."""
    packing: bool = False

    @field_validator("packing")
    @classmethod
    def _no_packing(cls, value: bool) -> bool:
        if value:
            raise ValueError("preference pairs are not packed. Fix: remove data.packing (or set it false).")
        return value


def _holds_turns(feature: Any) -> bool:
    return isinstance(feature, datasets.List | datasets.Sequence | list)


def trl_chat_columns(self: DataSource, dataset: datasets.Dataset) -> datasets.Dataset:
    """``pre-normalize`` of every ``dpo`` source: TRL's conversational columns (``chosen``/``rejected``, and
    ``prompt``, holding lists of turns) become the ``chat_preference`` columns, unless ``column_mapping``
    names them. As in TRL, the prompt is then the ``prompt`` turns, or else the conversations' shared first
    turns: another ``messages`` column (ultrafeedback_binarized has one, the whole chosen conversation) is
    set aside rather than read as the prompt."""
    columns = dataset.column_names
    renames = {
        column: _TRL_CHAT[column]
        for column in ("chosen", "rejected")
        if column in columns
        and _holds_turns(dataset.features[column])
        and column not in self.config.column_mapping
        and _TRL_CHAT[column] not in columns
    }
    if len(renames) < 2:
        return dataset
    mapped = self.config.column_mapping
    if "messages" in columns and "messages" not in mapped:
        dataset = dataset.remove_columns("messages")
    prompt = dataset.features.get("prompt")
    if (
        prompt is not None
        and _holds_turns(prompt)
        and "prompt" not in mapped
        and "messages" not in dataset.features
    ):
        renames["prompt"] = "messages"
    return dataset.rename_columns(renames)


class DPODataFactory(DataFactory):
    """Preference pairs for DPO: text (``prompt``/``chosen``/``rejected``) or chat turns."""

    name = "dpo"
    config = DPODataConfig
    mask_prompt = True
    formats = ("chat_preference", "preference")

    def sources(self, split: str = "train") -> list[DataSource]:
        fresh = split not in self._sources
        sources = super().sources(split)
        if fresh:
            for source in sources:
                source.callbacks.append(("pre-normalize", trl_chat_columns))
        return sources

    def raw_texts(self) -> Iterator[str]:
        for split in self._loaded_data().values():
            for row in split:
                for column in ("prompt", "chosen", "rejected"):
                    if row.get(column):
                        yield row[column]
                for column in ("messages", "chosen_messages", "rejected_messages"):
                    for message in row.get(column) or []:
                        yield message["role"]
                        yield message["content"]

    def process(self, dataset: datasets.DatasetDict) -> datasets.DatasetDict:
        """Tokenize the pairs by format, then truncate (``max_prompt_length``, ``max_length``)."""
        tokenizer = self.tokenizer
        encode = EncodeRows(self.formats, Encoder(tokenizer, self.mask_prompt), self._name())
        config = self.config
        truncate = TruncatePairs(
            config.max_length,
            config.max_prompt_length,
            set(tokenizer.all_special_ids),
            config.prompt_truncation,
        )
        transform = digest(
            tokenizer_fingerprint(tokenizer),
            config.max_length,
            config.max_prompt_length,
            config.prompt_truncation,
        )
        out = datasets.DatasetDict()
        for split, data in dataset.items():
            tag = digest(transform, split, data._fingerprint)
            num_proc = procs(self.num_proc, data)
            with quiet_progress():
                tokenized = data.map(
                    encode,
                    batched=True,
                    remove_columns=data.column_names,
                    num_proc=num_proc,
                    new_fingerprint=f"{tag}-tok",
                )
                out[split] = tokenized.map(
                    truncate,
                    batched=True,
                    remove_columns=[c for c in tokenized.column_names if c not in PREFERENCE_COLUMNS],
                    num_proc=num_proc,
                    new_fingerprint=f"{tag}-truncate",
                )
        return out

    def create_dataloader(self, dataset: datasets.Dataset, training: bool) -> DataLoader:
        loader = super().create_dataloader(dataset, training)
        loader.collate_fn = PairCollator(self.tokenizer.pad_token_id)
        return loader
