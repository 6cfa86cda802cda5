"""ArcticTraining's Python names, with its semantics where they differ from ours, for code written against it.

Code written for ArcticTraining changes only its import: ``from arctic_training import SFTTrainer`` becomes
``from arctic_like.arctic_training import SFTTrainer`` (so do ``arctic_training.trainer.sft_trainer`` and the
other module paths). Most names are arctic_like's own classes, whose methods, events and parameters already
match ArcticTraining's; the classes defined here add what ArcticTraining code relies on and ours does
differently:

* the trainers' ``self.model`` is the model as ArcticTraining's DeepSpeed engine presents it:
  ``self.model(**batch)``, ``self.model.backward(loss)``, ``self.model.step()`` (the optimizer step when it
  closes the accumulation window), ``self.model.global_steps``, ``self.model.module``,
  ``self.model.is_gradient_accumulation_boundary()``; ``self.model_unwrapped`` is the plain model.
  ``self.checkpoint()`` saves with the engines that are due (ArcticTraining's ``step`` calls it every
  micro-batch); ``self.metrics.record(name, value)`` adds the value to the next log record;
* the data factories' ``load(data_sources)`` returns the sources' rows tokenized, concatenated and shaped
  (packed or truncated), so ``post-load`` callbacks see ``input_ids``/``labels`` rows as ArcticTraining's
  length filter expects; ``process(dataset)`` tokenizes one source's rows. (A ``DataSource``'s ``post-load``
  sees its raw rows, in both.)
* ``DPOTrainer`` is our ``dpo`` trainer with the above; its data factory is our ``DPODataFactory`` (tokenized
  pairs are ``prompt_ids``/``chosen_ids``/``rejected_ids``);
* ``CheckpointEngine`` is a base for engines written ArcticTraining's way: ``save(model)`` writing into
  ``self.checkpoint_dir`` (``<output_dir>/global_step_<N>``) and ``load(model)``.

See docs/migrating.md.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import datasets
import torch

from arctic_like.callback import CallbackMixin, callback_wrapper, run_first
from arctic_like.checkpoint import CheckpointEngine as _CheckpointEngine
from arctic_like.checkpoint import (
    CheckpointEngineConfig,
    DeepSpeedCheckpointEngine,
    HuggingFaceCheckpointEngine,
)
from arctic_like.config import (
    CheckpointConfig,
    DataConfig,
    LogConfig,
    ModelConfig,
    OptimizerConfig,
    SchedulerConfig,
    TokenizerConfig,
    TrainerConfig,
    load_recipe,
)
from arctic_like.data import CausalDataFactory as _CausalDataFactory
from arctic_like.data import DataFactory as _DataFactory
from arctic_like.data import DataSource, DPODataConfig, DPODataFactory, HFDataSource
from arctic_like.data import SFTDataFactory as _SFTDataFactory
from arctic_like.data.base import quiet_progress
from arctic_like.model import HFModelFactory, ModelFactory
from arctic_like.optimizer import AdamWOptimizerFactory, CPUAdamOptimizerFactory, OptimizerFactory
from arctic_like.registry import register
from arctic_like.scheduler import HFSchedulerFactory, SchedulerFactory
from arctic_like.tokenizer import HFTokenizerFactory, TokenizerFactory
from arctic_like.trainer import CausalTrainer as _CausalTrainer
from arctic_like.trainer import DPOTrainer as _DPOTrainer
from arctic_like.trainer import DPOTrainerConfig
from arctic_like.trainer import SFTTrainer as _SFTTrainer
from arctic_like.trainer import Trainer as _Trainer
from arctic_like.trainer.readback import DeviceMetrics, Reading

__all__ = [
    "CPUAdamOptimizerFactory",
    "CallbackMixin",
    "CausalDataFactory",
    "CausalTrainer",
    "CheckpointConfig",
    "CheckpointEngine",
    "DPODataConfig",
    "DPODataFactory",
    "DPOTrainer",
    "DPOTrainerConfig",
    "DSCheckpointEngine",
    "DataConfig",
    "DataFactory",
    "DataSource",
    "EngineModel",
    "FusedAdamOptimizerFactory",
    "HFCheckpointEngine",
    "HFDataSource",
    "HFModelFactory",
    "HFSchedulerFactory",
    "HFTokenizerFactory",
    "LoggerConfig",
    "ModelConfig",
    "ModelFactory",
    "OptimizerConfig",
    "OptimizerFactory",
    "SFTDataFactory",
    "SFTTrainer",
    "SchedulerConfig",
    "SchedulerFactory",
    "TokenizerConfig",
    "TokenizerFactory",
    "Trainer",
    "TrainerConfig",
    "callback_wrapper",
    "get_config",
    "logger",
    "register",
]

logger = logging.getLogger("arctic_like")
"""ArcticTraining's ``logger`` (``logger.info(...)``, ``logger.warning(...)``): the ``arctic_like`` logger."""

LoggerConfig = LogConfig
FusedAdamOptimizerFactory = AdamWOptimizerFactory
"""ArcticTraining's default optimizer factory: AdamW, run by DeepSpeed's FusedAdam on GPUs under DeepSpeed
(and by torch's AdamW, the same update, elsewhere)."""
DSCheckpointEngine = DeepSpeedCheckpointEngine
HFCheckpointEngine = HuggingFaceCheckpointEngine


def get_config(config_file_or_dict: str | Path | dict[str, Any]) -> TrainerConfig:
    """ArcticTraining's ``get_config``: a recipe file or dict loaded and validated (see ``load_recipe``)."""
    return load_recipe(config_file_or_dict)


# ---- trainers ----------------------------------------------------------------------------------------------


class EngineModel:
    """A trainer's model as ArcticTraining code sees it: DeepSpeed's engine interface over the plain model.

    Calls run the model (under the run's mixed precision); ``backward``/``step`` go through the trainer's
    engine and bookkeeping; every other attribute is the plain model's, and ``isinstance`` sees its class.
    """

    def __init__(self, trainer: _Trainer) -> None:
        object.__setattr__(self, "_trainer", trainer)

    @property
    def module(self) -> torch.nn.Module:
        """The plain model."""
        return self._trainer.model_unwrapped

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(trainer.model, PreTrainedModel) holds
        return type(self.module)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._trainer.engine.autocast():
            return self.module(*args, **kwargs)

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the gradients of a micro-batch's loss (the trainer's engine scales it by the window)."""
        self._trainer._at_engine_backward(loss)

    def step(self) -> None:
        """End the micro-batch: at the last one of an accumulation window, clip and step the optimizer and
        the scheduler, then zero the gradients (as DeepSpeed's ``engine.step()``)."""
        self._trainer._at_engine_step()

    @property
    def global_steps(self) -> int:
        return self._trainer.global_step

    def is_gradient_accumulation_boundary(self) -> bool:
        return bool(self._trainer.accumulation_boundary)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._trainer.optimizer

    @property
    def lr_scheduler(self) -> Any:
        return self._trainer.scheduler

    def get_global_grad_norm(self) -> float | None:
        norm = self._trainer.last_grad_norm
        return None if norm is None else float(norm)

    def train(self, mode: bool = True) -> EngineModel:
        self.module.train(mode)
        return self

    def eval(self) -> EngineModel:
        self.module.eval()
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "global_steps":
            self._trainer.global_step = value
        else:
            setattr(self.module, name, value)

    def __deepcopy__(self, memo: dict[int, Any]) -> torch.nn.Module:
        return copy.deepcopy(self.module, memo)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.module.__reduce_ex__(protocol)

    def __repr__(self) -> str:
        return f"EngineModel({self.module!r})"


class _Metrics:
    """ArcticTraining's ``trainer.metrics`` over ours: ``record(name, value)`` adds a value (a list: its mean)
    to the next log record, as ``add`` does (the mean over the micro-batches since the previous log, and over
    processes; recorded during evaluation, logged as ``eval_<name>``). The loss is logged by the trainer
    itself, so ``record("loss", ...)`` is ignored. Our ``add`` and the rest of ``DeviceMetrics`` work too."""

    def __init__(self, metrics: DeviceMetrics) -> None:
        self._metrics = metrics

    def record(self, name: str, value: Any) -> None:
        if name == "loss":
            return
        if isinstance(value, list | tuple):
            value = sum(value) / len(value) if value else math.nan
        if isinstance(value, torch.Tensor):
            value = value.detach().float().mean()
        self._metrics.add(name, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._metrics, name)


@run_first
def _remember_batch(self: _ATTrainer, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The micro-batch, for ``self.model.step()`` in a ``step`` written ArcticTraining's way."""
    self._at_batch = batch
    return batch


class _ATTrainer(_Trainer):
    """What every ArcticTraining-style trainer adds to ours (see the module docstring)."""

    callbacks: ClassVar[list[tuple[str, Any]]] = [("pre-step", _remember_batch)]

    def __init__(self, config: TrainerConfig, mode: str = "train") -> None:
        if mode != "train":
            raise ValueError(
                f"mode {mode!r}: a trainer is built to train. Fix: run `arctic-like process-data RECIPE` to "
                "process the data only."
            )
        self._at_loss: torch.Tensor | None = None
        self._at_reading: Reading | None = None
        self._at_batch: dict[str, torch.Tensor] | None = None
        super().__init__(config)
        self.model = EngineModel(self)  # type: ignore[assignment]

    @property
    def metrics(self) -> _Metrics:  # type: ignore[override]
        """ArcticTraining's ``self.metrics.record(name, value)`` (and our ``add``)."""
        return _Metrics(super().metrics)

    # ---- the engine interface of self.model
    def _at_engine_backward(self, loss: torch.Tensor) -> None:
        self._at_reading = self._track_loss(loss)
        self._at_loss = loss
        self.engine.backward(loss)

    def backward(self, loss: torch.Tensor) -> None:
        self._at_loss, self._at_reading = loss, None
        super().backward(loss)

    def _at_engine_step(self) -> None:
        """Our ``step``'s bookkeeping around backward, for a ``step`` that calls ``self.model.step()``."""
        loss, batch, reading = self._at_loss, self._at_batch, self._at_reading
        if loss is None or batch is None:
            raise RuntimeError(
                "self.model.step() was called before self.model.backward(loss) (or self.backward(loss)) in "
                "this step. Fix: compute the loss and call backward first."
            )
        self._at_loss = self._at_reading = None
        if reading is None:  # backward came through self.backward: the loss is queued (and checked) now
            try:
                reading = self._track_loss(loss)
            except Exception:
                self.engine.zero_grad()  # a non-finite loss has reached the gradients already
                self._window = []
                raise
        self.throughput.count(batch)
        tokens = int(batch["input_ids"].numel())
        self.state.num_input_tokens_seen += tokens * self.world_size
        self._micro_batch_done(reading, tokens)

    # ---- ArcticTraining's checkpoint(), metrics and iterators
    def checkpoint(self) -> Path | None:
        """Save with the engines that are due (ArcticTraining's ``step`` calls this every micro-batch)."""
        if "_engines_to_save" not in self.__dict__:
            due = [engine for engine in self.checkpoint_engines if engine.should_save()]
            if not due:
                return None
            self._engines_to_save = due
        return super().checkpoint()

    @property
    def epochs(self) -> range:
        """The epochs still to run."""
        return range(self.epoch_idx, self.num_epochs)

    @property
    def train_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        return iter(self.train_dataloader)

    @property
    def eval_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        return iter(self.eval_dataloader or ())


# ---- data factories ----------------------------------------------------------------------------------------


class DataFactory(_DataFactory):
    """ArcticTraining's ``DataFactory`` events: ``load(data_sources)`` → the rows of every source tokenized by
    ``process(dataset)``, concatenated, and packed or truncated to ``max_length`` (``too_long: drop`` drops
    longer ones, as ArcticTraining's ``filter_samples``); ``post-load`` callbacks see those rows."""

    def load(self, data_sources: list[DataSource] | None = None) -> datasets.Dataset:  # type: ignore[override]
        """The processed rows of ``data_sources`` (default: the training sources)."""
        sources = self.sources("train") if data_sources is None else data_sources
        with quiet_progress():
            rows = [source(self._role(source)) for source in sources]
        return self._shape(datasets.concatenate_datasets([self.process(r) for r in rows]))

    def process(self, dataset: datasets.Dataset) -> datasets.Dataset:  # type: ignore[override]
        """One source's rows tokenized: ``input_ids`` and ``labels``."""
        return self._tokenize(dataset)

    def _role(self, source: DataSource) -> str:
        return "eval" if any(source is s for s in self.sources("eval")) else "train"

    def _processed(self) -> datasets.DatasetDict:
        out = datasets.DatasetDict({"train": self.load(self.sources("train"))})
        evaluation = [s for s in self.sources("train") if s.held_out()]
        if self.sources("eval") or evaluation:
            parts = [self.load(self.sources("eval"))] if self.sources("eval") else []
            with quiet_progress():
                held_out = [source("eval") for source in evaluation]
            parts += [self._shape(self.process(rows)) for rows in held_out]
            out["eval"] = datasets.concatenate_datasets(parts)
        return out

    def _raw_rows(self) -> datasets.DatasetDict:
        return _DataFactory.load(self)


class SFTDataFactory(DataFactory, _SFTDataFactory):
    """ArcticTraining's ``SFTDataFactory``: chat (and prompt/response) rows, prompts masked."""


class CausalDataFactory(DataFactory, _CausalDataFactory):
    """ArcticTraining's ``CausalDataFactory``: every token a target."""


# ---- the trainers, with these data factories -----------------------------------------------------------


class Trainer(_ATTrainer):
    """ArcticTraining's ``Trainer``: subclass it with a ``name`` and a ``loss``."""

    data_factory: type[_DataFactory] = CausalDataFactory


class SFTTrainer(_ATTrainer, _SFTTrainer):
    """ArcticTraining's ``SFTTrainer`` (our ``sft`` trainer, ArcticTraining's way)."""

    data_factory: type[_DataFactory] = SFTDataFactory


class CausalTrainer(_ATTrainer, _CausalTrainer):
    """ArcticTraining's ``CausalTrainer`` (our ``causal`` trainer, ArcticTraining's way)."""

    data_factory: type[_DataFactory] = CausalDataFactory


class DPOTrainer(_ATTrainer, _DPOTrainer):
    """ArcticTraining's ``DPOTrainer`` (our ``dpo`` trainer, ArcticTraining's way): pairs from our
    ``DPODataFactory``, the reference from ``ref_model`` (or, without it, the policy's initial weights)."""

    data_factory: type[_DataFactory] = DPODataFactory


# ---- checkpoint engines ------------------------------------------------------------------------------------


class CheckpointEngine(_CheckpointEngine):
    """A base for checkpoint engines written ArcticTraining's way: override ``save(model)`` (write into
    ``self.checkpoint_dir``) and ``load(model)``. The trainer calls ``save`` when ``do_checkpoint`` is
    true."""

    config: ClassVar[type[CheckpointEngineConfig]] = CheckpointEngineConfig

    @property
    def checkpoint_dir(self) -> Path:
        """``<output_dir>/global_step_<N>`` of the current step, created."""
        path = self.output_dir / f"global_step_{self.step}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def do_checkpoint(self) -> bool:
        """Whether this engine saves now."""
        return self.should_save(end_of_training=self.training_finished)

    def save(self, model: Any = None) -> Path:  # type: ignore[override]
        raise NotImplementedError(f"{type(self).__name__} must implement save(model)")

    def load(self, model: Any = None) -> Any:  # type: ignore[override]
        raise NotImplementedError(f"{type(self).__name__} must implement load(model)")

    def resume(self) -> Path | None:
        """``load(model)`` when ``auto_resume`` is set (such an engine finds its own checkpoint)."""
        if self.config.auto_resume:
            self.load(self.trainer_model)
        return None

    def _write(self, tmp: Path) -> None:
        raise NotImplementedError

    def _read(self, path: Path, manifest: dict[str, Any]) -> None:
        raise NotImplementedError
