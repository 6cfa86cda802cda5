"""``dpo``: Direct Preference Optimization of a policy against a frozen reference model.

Each micro-batch holds preference pairs (the ``dpo`` data factory): the chosen sequences, then the rejected
ones. The loss compares how much more the policy than the reference prefers the chosen completion, using the
sum of the completion tokens' log-probs, with the losses, the defaults and the logged metric names of TRL's
``DPOTrainer`` (``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``, ``rewards/margins``,
``logps/chosen``, ``logps/rejected``). See ``docs/post-training.md``.

The reference is, in this order of choice: the ``ref_model`` section of the recipe (another model, built by
the model factory), the policy with its adapters disabled (``model.peft``), or a frozen copy of the policy as
the model factory built it. With ``precompute_ref_log_probs`` the reference runs once over the data before
training, its log-probs are cached next to the processed data, and no reference is kept in memory.

Events of their own: ``policy-logps``, ``reference-logps`` and ``dpo-loss`` (``loss`` calls them in order).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal

import datasets
import torch
import torch.nn.functional as F
from pydantic import Field, SerializeAsAny, ValidationInfo, field_validator, model_validator

from arctic_like.checkpoint.atomic import honour_umask
from arctic_like.config.base import HumanInt
from arctic_like.config.parts import ModelConfig
from arctic_like.config.trainer import TrainerConfig, _validate_part, resolve_factory, resolve_trainer_class
from arctic_like.data import DataFactory
from arctic_like.data.base import quiet_progress
from arctic_like.data.dpo import DPODataFactory
from arctic_like.data.preference import IGNORE_INDEX, REFERENCE_COLUMNS, PairCollator
from arctic_like.model.peft import base_fingerprint, is_partitioned, is_peft_model
from arctic_like.trainer.trainer import Trainer

__all__ = ["DPO_METRICS", "DPOTrainer", "DPOTrainerConfig", "sequence_logps"]

logger = logging.getLogger("arctic_like.trainer")

DPO_METRICS = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
)
"""The metrics a DPO run logs (``eval_``-prefixed for evaluation), named as TRL names them."""

LossType = Literal["sigmoid", "ipo", "hinge", "robust"]


class DPOTrainerConfig(TrainerConfig):
    """The recipe of a ``dpo`` run: TRL's ``DPOConfig`` names for the loss and the reference."""

    type: str = "dpo"
    beta: float = Field(default=0.1, gt=0)
    """How far the policy may move from the reference (higher: less); IPO's τ."""
    loss_type: LossType = "sigmoid"
    label_smoothing: float = Field(default=0.0, ge=0, lt=0.5)
    """Probability that a preference label is flipped: conservative DPO for ``sigmoid``, ``robust`` DPO."""
    ref_model: SerializeAsAny[ModelConfig] | None = None
    """A model section for the reference (default: the policy's initial weights)."""
    precompute_ref_log_probs: bool = False
    precompute_ref_batch_size: HumanInt | None = Field(default=None, ge=1)
    """Batch size of the precomputation (default: ``micro_batch_size``)."""
    disable_dropout: bool = True
    """Set dropout to zero in the policy and the reference (as TRL does by default)."""

    @field_validator("ref_model", mode="before")
    @classmethod
    def _ref_model_part(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        trainer_cls = resolve_trainer_class(info.data.get("type", "dpo"))
        return _validate_part(trainer_cls, "model", value)

    @model_validator(mode="after")
    def _smoothing_applies(self) -> DPOTrainerConfig:
        if self.label_smoothing and self.loss_type not in ("sigmoid", "robust"):
            raise ValueError(
                f"label_smoothing applies to the sigmoid and robust losses, not {self.loss_type!r}. "
                "Fix: remove label_smoothing, or use loss_type: robust."
            )
        return self


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum over each sequence of the log-probs of its target tokens (``labels`` other than -100), in fp32.

    ``logits[:, t]`` predicts ``labels[:, t + 1]``; no ``[batch, length, vocab]`` log-softmax is built.
    """
    logits = logits[:, :-1].float()
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    picked = logits.gather(-1, targets.masked_fill(~mask, 0).unsqueeze(-1)).squeeze(-1)
    return ((picked - logits.logsumexp(-1)) * mask).sum(-1)


def _disable_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def _keep_initial_policy(factory: Any, model: torch.nn.Module) -> torch.nn.Module:
    """``post-call`` of the policy's model factory: keep a copy of the model it built as the reference (under
    ``model.peft`` the reference is the frozen base, so only its fingerprint is kept)."""
    trainer = factory.trainer
    if is_peft_model(model):
        trainer._reference_fingerprint = base_fingerprint(model)
    elif is_partitioned(model):  # a ZeRO-3 partitioned module cannot be copied: keep this process's shards
        trainer._initial_shards = [param.ds_tensor.detach().clone() for param in model.parameters()]
        trainer._initial_buffers = [buffer.detach().clone() for buffer in model.buffers()]
    else:
        trainer._initial_policy = copy.deepcopy(model)
    return model


class DPOTrainer(Trainer):
    """Preference optimization of ``model`` against a frozen reference; see the module docstring."""

    name = "dpo"
    config: ClassVar[type[TrainerConfig]] = DPOTrainerConfig  # type: ignore[misc]
    data_factory: type[DataFactory] = DPODataFactory

    def __init__(self, config: DPOTrainerConfig) -> None:
        self._initial_policy: torch.nn.Module | None = None
        self._initial_shards: list[torch.Tensor] | None = None
        self._initial_buffers: list[torch.Tensor] = []
        super().__init__(config)
        self._metric_sums = {m: torch.zeros(len(DPO_METRICS), device=self.device) for m in ("train", "eval")}
        self._metric_counts = {"train": 0, "eval": 0}
        if config.disable_dropout:
            _disable_dropout(self.model)
        self._unsaved_references: list[tuple[datasets.Dataset, Path]] = []
        self.ref_model, self.reference = self._reference()
        if config.precompute_ref_log_probs:
            self._precompute_reference()
        logger.info("dpo: reference is %s", self.reference)

    # ------------------------------------------------------------------------------------------- reference
    def _factory(self, part: str, part_config: Any) -> Any:
        """The policy's model factory also keeps the initial policy: taken as the model is built, before a
        resume loads trained weights and before the engine wraps (under ZeRO-3: partitions) it."""
        factory = super()._factory(part, part_config)
        if part == "model" and self.config.ref_model is None:
            factory.callbacks.append(("post-call", _keep_initial_policy))
        return factory

    def _reference(self) -> tuple[Any, str]:
        """(the reference model or None, what it is: ``ref_model``, ``adapters disabled`` or ``copy``)."""
        config = self.config
        if config.ref_model is not None:
            factory = resolve_factory(type(self), "model", config.ref_model.type)(self, config.ref_model)
            model = factory()
            mode = "the ref_model section"
        elif is_peft_model(self.model):
            return None, "the policy with its adapters disabled"
        else:
            model, self._initial_policy = self._initial_policy, None
            if model is None and self._initial_shards is not None:
                model = self._rebuild_partitioned_initial_policy()
            if model is None:
                raise RuntimeError("the policy's model factory returned no model to copy as the reference")
            mode = "a frozen copy of the initial policy"
        if config.disable_dropout:
            _disable_dropout(model)
        model.requires_grad_(False)
        self._reference_fingerprint = base_fingerprint(model)
        return self.engine.prepare_frozen(model), mode

    def _rebuild_partitioned_initial_policy(self) -> torch.nn.Module:
        """Under ZeRO-3 the reference is a second partitioned model from the policy's model factory, given the
        initial policy's shards (the same partitioning, so each process copies only its own)."""
        factory = resolve_factory(type(self), "model", self.config.model.type)(self, self.config.model)
        with type(self.engine).model_init_context(self.config):
            model = factory()
        shards, self._initial_shards = self._initial_shards or [], None
        with torch.no_grad():
            for param, shard in zip(model.parameters(), shards, strict=True):
                param.ds_tensor.copy_(shard)
            for buffer, saved in zip(model.buffers(), self._initial_buffers, strict=True):
                buffer.copy_(saved)
        self._initial_buffers = []
        return model

    def _model_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            "use_cache": False,
        }

    def _reference_forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Reference log-probs of every sequence of ``batch`` (``[2 * pairs]``)."""
        inputs = self._model_inputs(batch)
        if self.ref_model is not None:
            output = self.engine.forward_frozen(self.ref_model, inputs)
        else:
            with torch.no_grad(), self.model.disable_adapter():
                output = self.engine.forward(inputs)
        return sequence_logps(output.logits.detach(), batch["labels"])

    # ------------------------------------------------------------------------------------------- loss
    def policy_logps(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(chosen, rejected) summed completion log-probs under the policy, with gradients."""
        output = self.engine.forward(self._model_inputs(batch))
        return sequence_logps(output.logits, batch["labels"]).chunk(2)

    def reference_logps(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(chosen, rejected) summed completion log-probs under the reference (precomputed when they are)."""
        if REFERENCE_COLUMNS[0] in batch:
            return batch[REFERENCE_COLUMNS[0]], batch[REFERENCE_COLUMNS[1]]
        return self._reference_forward(batch).chunk(2)

    def dpo_loss(
        self,
        chosen_logps: torch.Tensor,
        rejected_logps: torch.Tensor,
        ref_chosen_logps: torch.Tensor,
        ref_rejected_logps: torch.Tensor,
        chosen_lengths: torch.Tensor,
        rejected_lengths: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(per-pair losses, chosen rewards, rejected rewards) for ``config.loss_type``.

        A reward is ``beta * (policy - reference)`` log-prob of a completion; the lengths (completion tokens)
        normalise the IPO loss per token, as TRL does.
        """
        beta, smoothing = self.config.beta, self.config.label_smoothing
        chosen_logratios = chosen_logps - ref_chosen_logps
        rejected_logratios = rejected_logps - ref_rejected_logps
        delta = chosen_logratios - rejected_logratios
        loss_type = self.config.loss_type
        if loss_type == "sigmoid":
            losses = -F.logsigmoid(beta * delta) * (1 - smoothing) - F.logsigmoid(-beta * delta) * smoothing
        elif loss_type == "robust":
            clean = -(1 - smoothing) * F.logsigmoid(beta * delta)
            flipped = -smoothing * F.logsigmoid(-beta * delta)
            losses = (clean - flipped) / (1 - 2 * smoothing)
        elif loss_type == "hinge":
            losses = torch.relu(1 - beta * delta)
        else:  # ipo: squared distance of the per-token log-ratio gap from 1 / (2 beta)
            chosen_per_token = chosen_logratios / chosen_lengths.clamp(min=1)
            rejected_per_token = rejected_logratios / rejected_lengths.clamp(min=1)
            losses = (chosen_per_token - rejected_per_token - 1 / (2 * beta)) ** 2
        return losses, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean DPO loss of the micro-batch's pairs; records the reward and log-prob metrics."""
        ref_chosen, ref_rejected = self.reference_logps(batch)
        chosen, rejected = self.policy_logps(batch)
        lengths = (batch["labels"][:, 1:] != IGNORE_INDEX).sum(-1)
        chosen_lengths, rejected_lengths = lengths.chunk(2)
        losses, chosen_rewards, rejected_rewards = self.dpo_loss(
            chosen, rejected, ref_chosen, ref_rejected, chosen_lengths, rejected_lengths
        )
        mode = "train" if self.model.training else "eval"
        values = torch.stack(
            [
                chosen_rewards.mean(),
                rejected_rewards.mean(),
                (chosen_rewards > rejected_rewards).float().mean(),
                (chosen_rewards - rejected_rewards).mean(),
                chosen.detach().mean(),
                rejected.detach().mean(),
            ]
        )
        self._metric_sums[mode] += values.to(self._metric_sums[mode].device, torch.float32)
        self._metric_counts[mode] += 1
        return losses.mean()

    def train(self) -> dict[str, float]:
        """Training; first the precomputed reference log-probs go to the data cache, as the processed data
        does (building a trainer writes nothing)."""
        self._save_reference_cache()
        return super().train()

    # ------------------------------------------------------------------------------------------- logging
    def _drain_metrics(self, mode: str) -> dict[str, float]:
        """Mean of each metric over the micro-batches since the last log (over all processes)."""
        count = self._metric_counts[mode]
        if count == 0:
            return {}
        sums = self._metric_sums[mode].clone()
        if self.world_size > 1:
            torch.distributed.all_reduce(sums)
        means = (sums / (count * self.world_size)).tolist()
        self._metric_sums[mode].zero_()
        self._metric_counts[mode] = 0
        return dict(zip(DPO_METRICS, means, strict=True))

    def log(self, logs: dict[str, float]) -> dict[str, float]:
        """Adds the DPO metrics gathered since the last log (``eval_``-prefixed in an evaluation's log)."""
        if any(key.startswith("eval_") for key in logs):
            logs = {**logs, **{f"eval_{k}": v for k, v in self._drain_metrics("eval").items()}}
        else:
            logs = {**logs, **self._drain_metrics("train")}
        return super().log(logs)

    # ------------------------------------------------------------------------------------------- precompute
    def _precompute_reference(self) -> None:
        """Add the reference log-probs to the training (and evaluation) data, from the cache when there."""
        for attr, training in (("train_dataloader", True), ("eval_dataloader", False)):
            loader = getattr(self, attr)
            if loader is None or REFERENCE_COLUMNS[0] in loader.dataset.column_names:
                continue
            columns = self._cached_reference_columns(loader.dataset, attr)
            dataset = datasets.concatenate_datasets([loader.dataset, columns], axis=1)
            setattr(self, attr, self.data_factory.create_dataloader(dataset, training=training))
        self.ref_model = None
        self.reference = f"precomputed log-probs of {self.reference}"

    def _cached_reference_columns(self, dataset: datasets.Dataset, split: str) -> datasets.Dataset:
        """The reference log-probs of ``dataset``, cached under the data cache: the key covers what the
        processed data depends on (the data cache's key), the reference's weights and the precision."""
        data_key = self.data_factory.cache_key() if self.data_factory.config.use_cache else None
        if data_key is None:  # the processed data is not cached either
            return self._reference_dataset(dataset)
        key = hashlib.sha256(
            json.dumps(
                [
                    data_key,
                    split,
                    len(dataset),
                    self._reference_fingerprint,
                    self.config.precision,
                ]
            ).encode()
        ).hexdigest()[:20]
        path = self.data_factory.cache_dir() / f"reference-logps-{key}"
        if (path / "dataset_info.json").exists():
            logger.info("using cached reference log-probs from %s", path)
            return datasets.load_from_disk(str(path))
        columns = self._reference_dataset(dataset)
        self._unsaved_references.append((columns, path))
        return columns

    def _save_reference_cache(self) -> None:
        """Write the precomputed log-probs to the data cache (rank 0; atomically, like the data cache)."""
        pending, self._unsaved_references = self._unsaved_references, []
        if self.global_rank != 0:
            return
        for columns, path in pending:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
            try:
                with quiet_progress():
                    columns.save_to_disk(str(tmp))
                honour_umask(tmp)
                os.replace(tmp, path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            logger.info("cached reference log-probs at %s", path)

    def _reference_dataset(self, dataset: datasets.Dataset) -> datasets.Dataset:
        values = self._reference_columns(dataset)
        return datasets.Dataset.from_dict(dict(zip(REFERENCE_COLUMNS, values, strict=True)))

    def _reference_columns(self, dataset: datasets.Dataset) -> tuple[list[float], list[float]]:
        """Reference log-probs of every pair of ``dataset``; each process computes a share of the pairs."""
        world, rank = self.world_size, self.global_rank
        share = list(range(rank, len(dataset), world))
        per_rank = math.ceil(len(dataset) / world)
        share += share[-1:] * (per_rank - len(share))  # equal forward counts on every rank (ZeRO-3)
        size = int(self.config.precompute_ref_batch_size or self.config.micro_batch_size)
        collate = PairCollator(self.tokenizer.pad_token_id)
        found: dict[int, tuple[float, float]] = {}
        for start in range(0, len(share), size):
            indices = share[start : start + size]
            batch = self._to_device(collate([dataset[i] for i in indices]))
            chosen, rejected = self._reference_forward(batch).chunk(2)
            for index, c, r in zip(indices, chosen.tolist(), rejected.tolist(), strict=True):
                found[index] = (c, r)
        if world > 1:
            gathered: list[Any] = [None] * world
            torch.distributed.all_gather_object(gathered, found)
            for part in gathered:
                found.update(part)
        ordered = [found[i] for i in range(len(dataset))]
        return [c for c, _ in ordered], [r for _, r in ordered]
