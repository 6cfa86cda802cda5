"""`DataFactory`: sources → tokenized, packed or padded examples → train/eval dataloaders.

Events, in run order: ``call`` → ``load`` (each source's rows, in the row columns ``text``/``prompt``/
``response``/``messages``, concatenated into a ``DatasetDict`` with a ``train`` and maybe an ``eval`` split) →
``process`` (tokenize by format; pack or truncate) → ``split`` (``(train, eval or None)``) →
``create_dataloader`` (once per split). Processed data is cached under ``data.cache_dir`` (default
``<output_dir>/data-cache``), keyed by everything it depends on (:meth:`DataFactory.cache_key`); a hit skips
``load`` and ``process``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import datasets
import torch
from torch.utils.data import DataLoader, DistributedSampler

from arctic_like import registry
from arctic_like.callback import CallbackMixin
from arctic_like.checkpoint.atomic import honour_umask
from arctic_like.config.parts import DataConfig
from arctic_like.context import TrainerContext
from arctic_like.data.evaluation import greedy_accuracy
from arctic_like.data.fingerprint import (
    Unfingerprintable,
    callable_fingerprint,
    class_fingerprint,
    digest,
    path_fingerprint,
    tokenizer_fingerprint,
)
from arctic_like.data.formats import EncodeRows, row_features
from arctic_like.data.packing import Collator, PackRows, TruncateRows, packing_supported
from arctic_like.data.rows import procs
from arctic_like.data.source import DataSource
from arctic_like.data.tokenize import IGNORE_INDEX, Encoder, tokenizer_framing
from arctic_like.registry import Registrable

__all__ = [
    "CACHE_VERSION",
    "CausalDataFactory",
    "DataFactory",
    "SFTDataConfig",
    "SFTDataFactory",
    "quiet_progress",
]

logger = logging.getLogger("arctic_like.data")

CACHE_VERSION = 2
"""Bump when the processed format changes, so old caches are not reused."""

_DATA_EVENTS = ("call", "load", "process")
"""Methods whose callbacks change the processed data (and so are part of the cache key)."""

_NOT_IN_KEY = {
    "cache_dir",
    "use_cache",
    "require_cache",
    "num_workers",
    "num_proc",
    "eval_fraction",
    "eval_batch_size",
}
"""Data settings that do not change the processed data (splitting and batching happen after the cache)."""


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """Hide the ``datasets`` progress bars for map/filter/save (the trainer shows its own progress)."""
    was_enabled = not datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.utils.enable_progress_bars()


def _has_target(example: dict[str, list[int]]) -> bool:
    return any(label != IGNORE_INDEX for label in example["labels"])


class _FitsIn:
    """Whether a tokenized example has at most ``max_length`` tokens (``data.too_long: drop``; picklable)."""

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length

    def __call__(self, example: dict[str, list[int]]) -> bool:
        return len(example["input_ids"]) <= self.max_length


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class DataFactory(TrainerContext, Registrable, CallbackMixin):
    """Builds the train and eval dataloaders: ``DataFactory(trainer, config)()`` → ``(train, eval or None)``.

    Uses ``trainer.tokenizer`` and ``trainer.config`` (``seed``, ``micro_batch_size``, ``output_dir``,
    ``code``).
    ``mask_prompt`` (class attribute, overridden by ``data.mask_prompt``) leaves prompts and non-assistant
    chat turns out of the loss; ``formats`` are the example formats it reads, in the order rows are matched.
    """

    config: ClassVar[type[DataConfig]] = DataConfig
    mask_prompt: ClassVar[bool] = False
    formats: ClassVar[tuple[str, ...]] = ("chat", "text", "prompt_response")
    defer_cache_write: bool = False
    """True: processed data stays in memory until ``save_cache()`` (the trainer sets it, so that building a
    trainer writes nothing; ``train()`` saves the cache)."""

    def __init__(self, trainer: Any, config: DataConfig) -> None:
        self.trainer = trainer
        self.config = config
        if config.mask_prompt is not None:
            self.mask_prompt = config.mask_prompt  # type: ignore[misc]
        self._loaded: tuple[tuple[Any, ...], datasets.DatasetDict] | None = None
        self._sources: dict[str, list[DataSource]] = {}

    # ---- helpers -------------------------------------------------------------------------------------------
    @property
    def seed(self) -> int:
        """The seed of the data order and the eval split: ``data.seed``, else the run's."""
        if self.config.seed is not None:
            return self.config.seed
        return int(getattr(self.trainer.config, "seed", 42))

    @property
    def micro_batch_size(self) -> int:
        """Examples per micro-batch of the training loader (the trainer's ``micro_batch_size``)."""
        return int(self.trainer.config.micro_batch_size)

    @property
    def num_proc(self) -> int:
        """Worker processes for reading and tokenizing (``data.num_proc``)."""
        return self.config.num_proc

    @property
    def tokenizer(self) -> Any:
        tokenizer = getattr(self.trainer, "tokenizer", None)
        if tokenizer is None:
            raise ValueError(
                "the data factory needs trainer.tokenizer. Fix: build the tokenizer before the data."
            )
        return tokenizer

    def row_features(self) -> datasets.Features:
        """The columns of every loaded row: ``text``, ``prompt``, ``response``, ``messages`` and those of the
        factory's own formats."""
        return row_features(("chat", "prompt_response", "text", *self.formats))

    def sources(self, split: str = "train") -> list[DataSource]:
        """The source objects of ``data.sources`` (``split="train"``) or ``data.eval_sources`` (``"eval"``),
        built once, so callbacks attached to them (``factory.sources()[0].callbacks.append(...)``) stay."""
        if split not in self._sources:
            configs = self.config.sources if split == "train" else self.config.eval_sources
            self._sources[split] = [registry.get(DataSource, c.type)(self, c) for c in configs]
        return self._sources[split]

    def cache_dir(self) -> Path:
        """Where processed datasets are cached."""
        if self.config.cache_dir is not None:
            return Path(self.config.cache_dir)
        return Path(getattr(self.trainer.config, "output_dir", "output")) / "data-cache"

    def cache_key(self) -> str | None:
        """A digest of everything the processed data depends on: the sources' content, the tokenizer (with
        what it adds around a text), the data settings and seed, the factory's and sources' code and data
        callbacks, and the recipe's ``code:`` files. ``None`` (with a warning saying why) when some of it
        cannot be fingerprinted: the cache is then not used."""
        try:
            return digest(self._key_parts())
        except Unfingerprintable as error:
            logger.warning(
                "processed-data cache not used: %s. Fix: make data callbacks module-level functions of plain "
                "values, or set data.use_cache: false to silence this.",
                error,
            )
            return None

    def _key_parts(self) -> list[Any]:
        tokenizer = self.tokenizer
        sources = []
        for split in ("train", "eval"):
            for source in self.sources(split):
                fingerprint = source.fingerprint()
                if fingerprint is None:
                    raise Unfingerprintable(f"{source.describe()} has no fingerprint")
                sources.append([split, fingerprint, self._callbacks_fingerprint(source, None)])
        code = getattr(self.trainer.config, "code", None) or []
        return [
            CACHE_VERSION,
            list(sys.version_info[:2]),
            class_fingerprint(type(self)),
            self.mask_prompt,
            list(self.formats),
            self.config.model_dump(mode="json", exclude=_NOT_IN_KEY | {"sources", "eval_sources"}),
            self.seed,
            tokenizer_fingerprint(tokenizer, tokenizer_framing(tokenizer).prefix),
            self._callbacks_fingerprint(self, _DATA_EVENTS),
            sources,
            [[str(path), path_fingerprint(Path(path))] for path in code],
        ]

    @staticmethod
    def _callbacks_fingerprint(owner: CallbackMixin, events: tuple[str, ...] | None) -> list[Any]:
        out = []
        for entry in owner.callbacks:
            if events is not None and entry.event.split("-", 1)[1] not in events:
                continue
            try:
                out.append([entry.event, callable_fingerprint(entry.fn)])
            except Unfingerprintable as error:
                raise Unfingerprintable(f"the {entry.event!r} callback {entry.fn!r}: {error}") from None
        return out

    # ---- events --------------------------------------------------------------------------------------------
    def __call__(self) -> tuple[DataLoader, DataLoader | None]:
        dataset = self._cached_or_processed()
        train, evaluation = self.split(dataset)
        train_loader = self.create_dataloader(train, training=True)
        eval_loader = self.create_dataloader(evaluation, training=False) if evaluation is not None else None
        return train_loader, eval_loader

    def load(self) -> datasets.DatasetDict:
        """Read the sources: ``train`` from ``sources``; ``eval`` from ``eval_sources`` and the held-out rows
        of training sources that have them (the synthetic tasks)."""
        if not self.config.sources:
            raise ValueError("data.sources is empty. Fix: add a source, e.g. `sources: [addition]`.")
        with quiet_progress():
            train = [source("train") for source in self.sources("train")]
            evaluation = [source("eval") for source in self.sources("eval")]
            evaluation += [source("eval") for source in self.sources("train") if source.held_out()]
        out = datasets.DatasetDict({"train": datasets.concatenate_datasets(train)})
        if evaluation:
            out["eval"] = datasets.concatenate_datasets(evaluation)
        return out

    def raw_texts(self) -> Iterator[str]:
        """The text of every loaded example (after ``post-load`` callbacks), which an in-process tokenizer
        trains on; the data is loaded once and reused by ``process``."""
        for split in self._loaded_data().values():
            for row in split:
                if row.get("text"):
                    yield row["text"]
                if row.get("prompt") or row.get("response"):
                    yield row["prompt"] + row["response"]
                for message in row.get("messages") or []:
                    yield message["role"]
                    yield message["content"]

    def process(self, dataset: datasets.DatasetDict) -> datasets.DatasetDict:
        """Tokenize each example by its format, then pack into ``max_length`` rows (``packing``) or truncate
        to ``max_length``; examples without a target are dropped."""
        return datasets.DatasetDict(
            {split: self._shape(self._tokenize(data)) for split, data in dataset.items()}
        )

    def _transform(self) -> str:
        """A digest of the tokenization and shaping settings (names the ``datasets`` cache files)."""
        config = self.config
        return digest(
            CACHE_VERSION,
            tokenizer_fingerprint(self.tokenizer),
            self.mask_prompt,
            list(self.formats),
            config.packing,
            config.max_length,
            config.too_long,
        )

    def _tokenize(self, data: datasets.Dataset) -> datasets.Dataset:
        """Rows → ``input_ids`` and ``labels`` by their format."""
        encode = EncodeRows(self.formats, Encoder(self.tokenizer, self.mask_prompt), self._name())
        with quiet_progress():
            return data.map(
                encode,
                batched=True,
                remove_columns=data.column_names,
                num_proc=procs(self.num_proc, data),
                new_fingerprint=digest(self._transform(), "tok", data._fingerprint),
            )

    def _shape(self, tokenized: datasets.Dataset) -> datasets.Dataset:
        """Tokenized rows packed or truncated to ``max_length`` (longer ones dropped with ``too_long: drop``),
        without the rows left with no target."""
        max_length = self.config.max_length
        if self.config.packing and not packing_supported():
            raise ValueError(
                "data.packing needs a transformers whose masking_utils keep packed documents apart (5.x "
                "does). Fix: upgrade transformers, or set data.packing: false."
            )
        shape = PackRows(max_length) if self.config.packing else TruncateRows(max_length)
        tag = digest(self._transform(), "shape", tokenized._fingerprint)
        num_proc = procs(self.num_proc, tokenized)
        with quiet_progress():
            if self.config.too_long == "drop":
                tokenized = tokenized.filter(
                    _FitsIn(max_length), num_proc=num_proc, new_fingerprint=f"{tag}-fits"
                )
            shaped = tokenized.map(  # in one process: packing depends on which rows share a batch
                shape,
                batched=True,
                batch_size=10_000,
                remove_columns=tokenized.column_names,
                new_fingerprint=f"{tag}-shape",
            )
            return shaped.filter(_has_target, num_proc=num_proc, new_fingerprint=f"{tag}-filter")

    def split(self, dataset: datasets.DatasetDict) -> tuple[datasets.Dataset, datasets.Dataset | None]:
        """``(train, eval)``: the ``eval`` split if any, else ``eval_fraction`` of train, else ``None``. With
        the run's ``min_steps``, the training rows repeat until an epoch holds that many optimizer steps."""
        train = dataset["train"]
        evaluation = dataset.get("eval")
        if evaluation is None and self.config.eval_fraction > 0:
            parts = train.train_test_split(test_size=self.config.eval_fraction, seed=self.seed, shuffle=True)
            train, evaluation = parts["train"], parts["test"]
        elif evaluation is not None and self.config.eval_fraction > 0:
            logger.info("data.eval_fraction ignored: the data has an eval split (eval_sources or a task)")
        if evaluation is not None and len(evaluation) == 0:
            evaluation = None
        return self._repeated(train), evaluation

    def _repeated(self, train: datasets.Dataset) -> datasets.Dataset:
        """``train`` repeated to fill ``min_steps`` optimizer steps of every process (ArcticTraining's
        ``min_iterations``)."""
        config = self.trainer.config
        min_steps = getattr(config, "min_steps", None)
        if not min_steps or len(train) == 0:
            return train
        world_size, _ = _dist()
        per_step = int(config.micro_batch_size) * int(config.gradient_accumulation_steps) * world_size
        needed = min_steps * per_step
        if len(train) >= needed:
            return train
        copies = -(-needed // len(train))
        logger.info("min_steps=%d: the %d training rows repeat to %d", min_steps, len(train), needed)
        return datasets.concatenate_datasets([train] * copies).select(range(needed))

    def create_dataloader(self, dataset: datasets.Dataset, training: bool) -> DataLoader:
        """A dataloader over ``dataset`` with a ``DistributedSampler`` (shuffled by seed when training)."""
        world_size, rank = _dist()
        batch_size = int(self.trainer.config.micro_batch_size)
        if not training:
            batch_size = int(self.config.eval_batch_size or batch_size)
        if training and len(dataset) // world_size < batch_size:
            raise ValueError(
                f"the training data has {len(dataset)} examples, fewer than one batch "
                f"(micro_batch_size {batch_size} x {world_size} processes). Fix: add data or lower "
                f"micro_batch_size."
            )
        sampler = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=training, seed=self.seed, drop_last=training
        )
        pad_to = self.config.max_length if self.config.pad_to_max_length else None
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=Collator(self.tokenizer.pad_token_id, pad_to),
            num_workers=self.config.num_workers,
            drop_last=training,
        )

    def compute_metrics(self, model: torch.nn.Module, tokenizer: Any) -> dict[str, float]:
        """Exact-match accuracy of greedy generation on the problems of each source that has some (the
        held-out problems of the synthetic tasks).

        One such source gives ``{"accuracy": x}``; several give ``<source>_accuracy`` each and their mean as
        ``accuracy``. Data without any gives ``{}``.
        """
        scored = [(s.config.type, s.exact_match_problems()) for s in self.sources("train")]
        scored = [(name, problems) for name, problems in scored if problems]
        if not scored:
            return {}
        scores = {
            f"{name}_accuracy": greedy_accuracy(model, tokenizer, problems) for name, problems in scored
        }
        if len(scores) == 1:
            return {"accuracy": next(iter(scores.values()))}
        return {**scores, "accuracy": sum(scores.values()) / len(scores)}

    def _name(self) -> str:
        """How error messages name this factory (its registry name)."""
        return getattr(self, "name", type(self).__name__)

    # ---- loading once, and the cache -----------------------------------------------------------------------
    def _loaded_data(self) -> datasets.DatasetDict:
        """The sources' rows after their callbacks; read once, and again if callbacks were attached since."""
        chains = self._load_chains()
        if self._loaded is None or self._loaded[0] != chains:
            self._loaded = (chains, self._raw_rows())
        return self._loaded[1]

    def _raw_rows(self) -> datasets.DatasetDict:
        """The rows before tokenization: ``load()`` (overridden where ``load`` returns processed rows)."""
        return self.load()

    def _processed(self) -> datasets.DatasetDict:
        """The processed splits (before the cache): ``process(load())``."""
        return self.process(self._loaded_data())

    def _load_chains(self) -> tuple[Any, ...]:
        """The callbacks that shape the loaded rows: the factory's on ``load``, and every source's."""
        mine = tuple((e.event, id(e.fn)) for e in self.callbacks if e.event.endswith("-load"))
        sources = [*self.sources("train"), *self.sources("eval")]
        return (mine, *(tuple((e.event, id(e.fn)) for e in source.callbacks) for source in sources))

    def _cached_or_processed(self) -> datasets.DatasetDict:
        key = self.cache_key() if self.config.use_cache else None
        if key is None:
            with _in_memory():
                return self._processed()
        path = self.cache_dir() / key
        if (path / "dataset_dict.json").exists():
            logger.info("using cached processed data from %s", path)
            return datasets.load_from_disk(str(path))
        if self.config.require_cache:
            raise FileNotFoundError(
                f"data.require_cache is set but the processed-data cache has no entry {path}. Fix: run "
                "`arctic-like process-data RECIPE` first (same data settings), or unset require_cache."
            )
        processed = self._processed()
        self._unsaved_cache = (processed, path)
        if not self.defer_cache_write:
            self.save_cache()
        return processed

    def save_cache(self) -> Path | None:
        """Write the processed data to the cache if it is not there yet (rank 0 only); returns its path."""
        pending = self.__dict__.pop("_unsaved_cache", None)
        if pending is None:
            return None
        processed, path = pending
        _, rank = _dist()
        if rank == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
            try:
                with quiet_progress():
                    processed.save_to_disk(str(tmp))
                honour_umask(tmp)
                os.replace(tmp, path)
            except OSError:
                if not (path / "dataset_dict.json").exists():
                    raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            logger.info("cached processed data at %s", path)
        return path


@contextlib.contextmanager
def _in_memory() -> Iterator[None]:
    """Without the processed-data cache, ``datasets`` writes no cache files of its own either."""
    enabled = datasets.is_caching_enabled()
    datasets.disable_caching()
    try:
        yield
    finally:
        if enabled:
            datasets.enable_caching()


class CausalDataFactory(DataFactory):
    """Causal LM data: every token is a target (``text``, chat ``messages``, or ``prompt + response``)."""

    name = "causal"


class SFTDataConfig(DataConfig):
    """SFT data: prompt/response pairs or chats, padded (not packed) by default."""

    packing: bool = False


class SFTDataFactory(DataFactory):
    """Supervised fine-tuning data: prompts and non-assistant chat turns are masked out of the loss."""

    name = "sft"
    config = SFTDataConfig
    mask_prompt = True
    formats = ("chat", "prompt_response")
