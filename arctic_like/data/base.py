"""`DataFactory`: sources → tokenized, packed or padded examples → train/eval dataloaders.

Events, in run order: ``call`` → ``load`` (read the sources into a ``DatasetDict`` with a ``train`` and maybe
an ``eval`` split, columns ``text``/``prompt``/``response``) → ``process`` (tokenize; pack or pad) → ``split``
(``(train, eval or None)``) → ``create_dataloader`` (once per split). Processed data is cached on disk under
``data.cache_dir`` (default ``<output_dir>/data-cache``), keyed by a hash of the sources, the settings, the
factory class and the tokenizer's vocabulary; a cache hit skips ``load`` and ``process``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import datasets
import torch
from torch.utils.data import DataLoader, DistributedSampler

from arctic_like.callback import CallbackMixin
from arctic_like.checkpoint.atomic import honour_umask
from arctic_like.config.parts import AdditionSourceConfig, DataConfig, FileSourceConfig, ReverseSourceConfig
from arctic_like.data.sources import load_source
from arctic_like.data.synthetic import make_task
from arctic_like.registry import Registrable

__all__ = [
    "CACHE_VERSION",
    "IGNORE_INDEX",
    "CausalDataFactory",
    "DataFactory",
    "SFTDataConfig",
    "SFTDataFactory",
    "collate",
    "greedy_accuracy",
]

logger = logging.getLogger("arctic_like.data")

CACHE_VERSION = 1
"""Bump when the processed format changes, so old caches are not reused."""

IGNORE_INDEX = -100


def collate(examples: list[dict[str, list[int]]], pad_token_id: int, pad_to: int | None = None) -> dict:
    """Right-pad a list of examples to the longest (or ``pad_to``) and stack into int64 tensors."""
    length = pad_to or max(len(e["input_ids"]) for e in examples)
    batch = {"input_ids": [], "attention_mask": [], "labels": []}
    for e in examples:
        pad = length - len(e["input_ids"])
        batch["input_ids"].append(e["input_ids"] + [pad_token_id] * pad)
        batch["attention_mask"].append(e["attention_mask"] + [0] * pad)
        batch["labels"].append(e["labels"] + [IGNORE_INDEX] * pad)
    return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


class _Collator:
    """Picklable collate function (dataloader workers)."""

    def __init__(self, pad_token_id: int, pad_to: int | None) -> None:
        self.pad_token_id, self.pad_to = pad_token_id, pad_to

    def __call__(self, examples: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        return collate(examples, self.pad_token_id, self.pad_to)


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
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


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class DataFactory(Registrable, CallbackMixin):
    """Builds the train and eval dataloaders: ``DataFactory(trainer, config)()`` → ``(train, eval or None)``.

    Uses ``trainer.tokenizer`` and ``trainer.config`` (``seed``, ``micro_batch_size``, ``output_dir``).
    ``mask_prompt`` (class attribute) selects SFT behaviour: the prompt is excluded from the loss.
    """

    config: ClassVar[type[DataConfig]] = DataConfig
    mask_prompt: ClassVar[bool] = False
    defer_cache_write: bool = False
    """True: processed data stays in memory until ``save_cache()`` (the trainer sets it, so that building a
    trainer writes nothing; ``train()`` saves the cache)."""

    def __init__(self, trainer: Any, config: DataConfig) -> None:
        self.trainer = trainer
        self.config = config
        self._loaded: datasets.DatasetDict | None = None

    # ---- helpers -------------------------------------------------------------------------------------------
    @property
    def seed(self) -> int:
        return int(getattr(self.trainer.config, "seed", 42))

    @property
    def tokenizer(self) -> Any:
        tokenizer = getattr(self.trainer, "tokenizer", None)
        if tokenizer is None:
            raise ValueError(
                "the data factory needs trainer.tokenizer. Fix: build the tokenizer before the data."
            )
        return tokenizer

    def cache_dir(self) -> Path:
        """Where processed datasets are cached."""
        if self.config.cache_dir is not None:
            return Path(self.config.cache_dir)
        return Path(getattr(self.trainer.config, "output_dir", "output")) / "data-cache"

    def cache_key(self) -> str:
        """Hash of everything the processed data depends on."""
        tokenizer = self.tokenizer
        vocab = sorted(tokenizer.get_vocab().items())
        specials = [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id]
        files = []
        for source in [*self.config.sources, *self.config.eval_sources]:
            if isinstance(source, FileSourceConfig) and source.path.exists():
                stat = source.path.stat()
                files.append([str(source.path.resolve()), stat.st_mtime_ns, stat.st_size])
        settings = self.config.model_dump(mode="json", exclude={"cache_dir", "use_cache", "num_workers"})
        payload = {
            "version": CACHE_VERSION,
            "factory": f"{type(self).__module__}.{type(self).__qualname__}",
            "mask_prompt": self.mask_prompt,
            "settings": settings,
            "files": files,
            "seed": self.seed,
            "tokenizer": [type(tokenizer).__name__, vocab, specials],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]

    # ---- events --------------------------------------------------------------------------------------------
    def __call__(self) -> tuple[DataLoader, DataLoader | None]:
        dataset = self._cached_or_processed()
        train, evaluation = self.split(dataset)
        train_loader = self.create_dataloader(train, training=True)
        eval_loader = self.create_dataloader(evaluation, training=False) if evaluation is not None else None
        return train_loader, eval_loader

    def load(self) -> datasets.DatasetDict:
        """Read the sources: ``train`` from ``sources``; ``eval`` from ``eval_sources`` and held-out tasks."""
        if not self.config.sources:
            raise ValueError("data.sources is empty. Fix: add a source, e.g. `sources: [addition]`.")
        with _quiet_progress():
            train = [load_source(s, self.seed, "train") for s in self.config.sources]
            evaluation = [load_source(s, self.seed, "eval") for s in self.config.eval_sources]
            evaluation += [
                load_source(s, self.seed, "eval")
                for s in self.config.sources
                if isinstance(s, AdditionSourceConfig | ReverseSourceConfig) and s.eval_samples > 0
            ]
        out = datasets.DatasetDict({"train": datasets.concatenate_datasets(train)})
        if evaluation:
            out["eval"] = datasets.concatenate_datasets(evaluation)
        self._loaded = out
        return out

    def raw_texts(self) -> Iterator[str]:
        """The text of every example before tokenization (what an in-process tokenizer trains on)."""
        loaded = self._loaded if self._loaded is not None else self.load()
        for split in loaded.values():
            for row in split:
                yield row["text"] or row["prompt"] + row["response"]

    def process(self, dataset: datasets.DatasetDict) -> datasets.DatasetDict:
        """Tokenize (adding bos/eos), then pack into ``max_length`` chunks or truncate for padding."""
        tokenizer = self.tokenizer
        bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        max_length = self.config.max_length
        mask_prompt = self.mask_prompt

        def tokenize(batch: dict[str, list[str]]) -> dict[str, list[list[int]]]:
            ids, labels = [], []
            for text, prompt, response in zip(batch["text"], batch["prompt"], batch["response"], strict=True):
                # A prompt/response pair is tokenized in two pieces even for causal data, so training
                # sees the same prompt tokens that greedy evaluation feeds the model.
                if (prompt or response) and (mask_prompt or not text or text == prompt + response):
                    head = bos + tokenizer(prompt, add_special_tokens=False)["input_ids"]
                    tail = tokenizer(response, add_special_tokens=False)["input_ids"] + eos
                    ids.append(head + tail)
                    labels.append(([IGNORE_INDEX] * len(head) if mask_prompt else head) + tail)
                elif text and not mask_prompt:
                    tokens = bos + tokenizer(text, add_special_tokens=False)["input_ids"] + eos
                    ids.append(tokens)
                    labels.append(list(tokens))
                elif text:
                    raise ValueError(
                        f"the {self.name!r} data factory needs prompt/response pairs, but an example has "
                        f"only text. Fix: set prompt_field and response_field of the source, or use "
                        f"data.type: causal."
                    )
                else:
                    raise ValueError("an example has no text and no prompt/response. Fix: check the sources.")
            return {"input_ids": ids, "labels": labels}

        def pack(batch: dict[str, list[list[int]]]) -> dict[str, list[list[int]]]:
            flat_ids = [t for seq in batch["input_ids"] for t in seq]
            flat_labels = [t for seq in batch["labels"] for t in seq]
            starts = range(0, len(flat_ids), max_length)
            return {
                "input_ids": [flat_ids[i : i + max_length] for i in starts],
                "labels": [flat_labels[i : i + max_length] for i in starts],
                "attention_mask": [[1] * len(flat_ids[i : i + max_length]) for i in starts],
            }

        def truncate(batch: dict[str, list[list[int]]]) -> dict[str, list[list[int]]]:
            ids = [seq[:max_length] for seq in batch["input_ids"]]
            return {
                "input_ids": ids,
                "labels": [seq[:max_length] for seq in batch["labels"]],
                "attention_mask": [[1] * len(seq) for seq in ids],
            }

        key = self.cache_key()
        out = datasets.DatasetDict()
        for split, data in dataset.items():
            tag = f"{key}-{split}-{data._fingerprint}"
            with _quiet_progress():
                tokenized = data.map(
                    tokenize, batched=True, remove_columns=data.column_names, new_fingerprint=f"{tag}-tok"
                )
                shaped = tokenized.map(
                    pack if self.config.packing else truncate,
                    batched=True,
                    batch_size=10_000,
                    remove_columns=tokenized.column_names,
                    new_fingerprint=f"{tag}-shape",
                )
                out[split] = shaped.filter(_has_target, new_fingerprint=f"{tag}-filter")
        return out

    def split(self, dataset: datasets.DatasetDict) -> tuple[datasets.Dataset, datasets.Dataset | None]:
        """``(train, eval)``: the ``eval`` split if any, else ``eval_fraction`` of train, else ``None``."""
        train = dataset["train"]
        evaluation = dataset.get("eval")
        if evaluation is None and self.config.eval_fraction > 0:
            parts = train.train_test_split(test_size=self.config.eval_fraction, seed=self.seed, shuffle=True)
            train, evaluation = parts["train"], parts["test"]
        elif evaluation is not None and self.config.eval_fraction > 0:
            logger.info("data.eval_fraction ignored: the data has an eval split (eval_sources or a task)")
        if evaluation is not None and len(evaluation) == 0:
            evaluation = None
        return train, evaluation

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
            collate_fn=_Collator(self.tokenizer.pad_token_id, pad_to),
            num_workers=self.config.num_workers,
            drop_last=training,
        )

    def compute_metrics(self, model: torch.nn.Module, tokenizer: Any) -> dict[str, float]:
        """Exact-match accuracy of greedy generation on the held-out problems of each synthetic source.

        One task gives ``{"accuracy": x}``; several give ``<task>_accuracy`` each and their mean as
        ``accuracy``. Data without a synthetic task gives ``{}``.
        """
        tasks = [
            make_task(s, self.seed)
            for s in self.config.sources
            if isinstance(s, AdditionSourceConfig | ReverseSourceConfig) and s.eval_samples > 0
        ]
        if not tasks:
            return {}
        scores = {
            f"{task.name}_accuracy": greedy_accuracy(model, tokenizer, task.eval_problems()) for task in tasks
        }
        if len(scores) == 1:
            return {"accuracy": next(iter(scores.values()))}
        return {**scores, "accuracy": sum(scores.values()) / len(scores)}

    # ---- cache ---------------------------------------------------------------------------------------------
    def _cached_or_processed(self) -> datasets.DatasetDict:
        if not self.config.use_cache:
            return self.process(self._loaded if self._loaded is not None else self.load())
        path = self.cache_dir() / self.cache_key()
        if (path / "dataset_dict.json").exists():
            logger.info("using cached processed data from %s", path)
            return datasets.load_from_disk(str(path))
        processed = self.process(self._loaded if self._loaded is not None else self.load())
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
                with _quiet_progress():
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


@torch.no_grad()
def greedy_accuracy(
    model: torch.nn.Module, tokenizer: Any, problems: list[tuple[str, str]], batch_size: int = 128
) -> float:
    """Share of ``(prompt, answer)`` whose greedy continuation (up to eos) equals ``answer``.

    Prompts are grouped by token length so batches need no padding (the answers are short, so the loop
    recomputes the whole sequence instead of keeping a KV cache); the model's train/eval mode is restored.
    """
    if not problems:
        return 0.0
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    eos = tokenizer.eos_token_id
    groups: dict[int, list[tuple[list[int], str]]] = {}
    for prompt, answer in problems:
        ids = bos + tokenizer(prompt, add_special_tokens=False)["input_ids"]
        groups.setdefault(len(ids), []).append((ids, answer))
    max_new = max(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for _, a in problems) + 1
    correct = 0
    try:
        for items in groups.values():
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                input_ids = torch.tensor([ids for ids, _ in chunk], dtype=torch.long, device=device)
                output = input_ids
                finished = torch.zeros(len(chunk), dtype=torch.bool, device=device)
                for _ in range(max_new):
                    logits = model(input_ids=output, use_cache=False).logits[:, -1, :]
                    next_token = logits.argmax(dim=-1)
                    output = torch.cat([output, next_token[:, None]], dim=1)
                    if eos is not None:
                        finished |= next_token == eos
                        if bool(finished.all()):
                            break
                for row, (_, answer) in zip(output[:, input_ids.shape[1] :].tolist(), chunk, strict=True):
                    if eos is not None and eos in row:
                        row = row[: row.index(eos)]
                    correct += tokenizer.decode(row, skip_special_tokens=True).strip() == answer
    finally:
        model.train(was_training)
    return correct / len(problems)


class CausalDataFactory(DataFactory):
    """Causal LM data: every token is a target (``text``, or ``prompt + response`` when there is no text)."""

    name = "causal"


class SFTDataConfig(DataConfig):
    """SFT data: prompt/response pairs, padded (not packed) by default."""

    packing: bool = False


class SFTDataFactory(DataFactory):
    """Supervised fine-tuning data: the prompt is masked out of the loss (labels -100)."""

    name = "sft"
    config = SFTDataConfig
    mask_prompt = True
