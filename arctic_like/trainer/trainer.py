"""The ``Trainer``: builds a run from its config and drives the training loop through callback events.

Every public method is an event (``pre-<name>``/``post-<name>``): ``train``, ``epoch``, ``step`` (one
micro-batch), ``loss``, ``backward``, ``optimizer_step``, ``prediction_step`` (one evaluation batch),
``evaluate``, ``log`` and ``checkpoint``. The loop follows HF's ``Trainer._inner_training_loop``: the same
``TrainerControl`` resets, the same default flow (logging/eval/save every N optimizer steps or each epoch)
and the same points where ``should_log``/``should_evaluate``/``should_save``/``should_epoch_stop``/
``should_training_stop`` are honoured. See ``docs/trainer.md``.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from huggingface_hub.errors import StrictDataclassError
from torch.utils.data import DataLoader

from arctic_like import interrupts
from arctic_like.callback import CallbackMixin, run_first
from arctic_like.checkpoint import CheckpointEngine, TorchCheckpointEngine
from arctic_like.checkpoint.state import rng_state, set_rng_state
from arctic_like.config import RecipeError, TrainerConfig
from arctic_like.config.trainer import resolve_factory
from arctic_like.context import call_with_optional
from arctic_like.data import CausalDataFactory, DataFactory
from arctic_like.engine import Engine, engine_class, parameter_count, resolve_device
from arctic_like.integrations.hf import HFCallbackSupport
from arctic_like.model import HFModelFactory, ModelFactory
from arctic_like.optimizer import AdamWOptimizerFactory, OptimizerFactory
from arctic_like.registry import Registrable
from arctic_like.scheduler import CosineSchedulerFactory, SchedulerFactory
from arctic_like.tokenizer import CharTokenizerFactory, TokenizerFactory
from arctic_like.trainer.console import CONSOLE_CALLBACKS, EVAL_RATES, Console
from arctic_like.trainer.exceptions import (
    NonFiniteLossError,
    SkipStep,
    StopEpoch,
    StopTraining,
    TrainerFlowException,
)
from arctic_like.trainer.log_setup import configure_run_logging
from arctic_like.trainer.preflight import preflight
from arctic_like.trainer.readback import DeviceMetrics, ReadBack, Reading
from arctic_like.trainer.state import TrainerControl, TrainerState
from arctic_like.trainer.throughput import Throughput, batch_size_and_tokens

logger = logging.getLogger("arctic_like.trainer")

__all__ = ["Trainer", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) so a run is reproducible."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


class _SkipBatchSampler:
    """A batch sampler that drops the first ``skip`` batches of another (how resume skips seen data)."""

    def __init__(self, batch_sampler: Iterable[list[int]], skip: int) -> None:
        self.batch_sampler = batch_sampler
        self.skip = skip

    def __iter__(self) -> Iterator[list[int]]:
        return itertools.islice(iter(self.batch_sampler), self.skip, None)

    def __len__(self) -> int:
        return max(len(self.batch_sampler) - self.skip, 0)  # type: ignore[arg-type]


def skip_batches(loader: Iterable[Any], skip: int) -> Iterable[Any]:
    """``loader`` without its first ``skip`` batches, without loading them when it is a ``DataLoader``."""
    if skip <= 0:
        return loader
    if isinstance(loader, DataLoader) and loader.batch_sampler is not None:
        kwargs: dict[str, Any] = {
            "batch_sampler": _SkipBatchSampler(loader.batch_sampler, skip),
            "collate_fn": loader.collate_fn,
            "num_workers": loader.num_workers,
            "pin_memory": loader.pin_memory,
            "worker_init_fn": loader.worker_init_fn,
            "generator": loader.generator,
        }
        if loader.num_workers > 0:
            kwargs["prefetch_factor"] = loader.prefetch_factor
            kwargs["persistent_workers"] = loader.persistent_workers
        return DataLoader(loader.dataset, **kwargs)
    return itertools.islice(loader, skip, None)


@run_first
def _begin_training(self: Trainer) -> None:
    """First ``pre-train`` callback: what HF's ``Trainer`` sets up before ``on_train_begin`` (the horizon and
    intervals in the state, the stateful callbacks, ``should_training_stop`` reset)."""
    self.control._new_training()
    config, state = self.config, self.state
    state.max_steps = self.training_horizon
    state.num_train_epochs = self.num_epochs
    state.logging_steps = int(config.logging_steps)
    if config.eval_steps is not None:
        state.eval_steps = int(config.eval_steps)
    if config.save_steps is not None:
        state.save_steps = int(config.save_steps)
    state.train_batch_size = int(config.micro_batch_size)
    self.callback_states()


class Trainer(HFCallbackSupport, Registrable, CallbackMixin):
    """Builds tokenizer → data → model → optimizer → scheduler → engine → checkpoint engines from ``config``
    and trains with ``train()``.

    Subclasses pick factories with class attributes (``model_factory = MyModelFactory``; the type hint is the
    allowed base), register themselves with ``name = "..."`` and customise the loop by overriding methods or
    attaching callbacks. ``loss(batch)`` is the method most trainers override.
    """

    config: ClassVar[type[TrainerConfig]] = TrainerConfig  # type: ignore[misc]
    tokenizer_factory: type[TokenizerFactory] = CharTokenizerFactory
    data_factory: type[DataFactory] = CausalDataFactory
    model_factory: type[ModelFactory] = HFModelFactory
    optimizer_factory: type[OptimizerFactory] = AdamWOptimizerFactory
    scheduler_factory: type[SchedulerFactory] = CosineSchedulerFactory
    checkpoint_engine: type[CheckpointEngine] = TorchCheckpointEngine

    callbacks: ClassVar[list[tuple[str, Any]]] = [("pre-train", _begin_training), *CONSOLE_CALLBACKS]
    console: Console | None = None
    """The progress bar / plain log lines of ``train()`` (see ``trainer/console.py``); None when off."""

    def __init__(self, config: TrainerConfig) -> None:
        """Check the run can start (``preflight``), then build it. Nothing is written: the processed data
        reaches its cache when ``train()`` starts, so a setup error leaves ``output_dir`` as it was."""
        self.config = config  # type: ignore[misc]
        self.state = TrainerState()
        self.control = TrainerControl()
        self._recipe_callbacks = preflight(type(self), config)
        seed_everything(config.seed)

        engine_cls: type[Engine] = engine_class(config.engine)
        engine_cls.init_distributed(config)
        self.device = resolve_device(config.device)
        self.world_size = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        self.global_rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.state.is_world_process_zero = self.global_rank == 0
        self.state.is_local_process_zero = self.local_rank == 0
        configure_run_logging(config.log, self.global_rank)

        # Data position, read and written by the checkpoint engines.
        self.epoch_idx = 0
        self.batches_in_epoch = 0
        self._epoch_ended = False
        # Device values waiting for the next read-back (see trainer/readback.py): nothing is read per
        # micro-batch. The losses of the running window, of the steps since the last read-back, the sum of
        # the step losses read since the last log, and every loss not yet checked for being finite.
        self.readback = ReadBack(self.device, self.world_size)
        self._train_metrics = DeviceMetrics(self.readback)
        self._eval_metrics = DeviceMetrics(self.readback)
        self._evaluating = False
        self._reset_loss_tracking()
        self._boundary_backward = False
        self._run_steps = 0
        self._globalstep_last_logged = 0
        # Per-micro-batch flags, valid from pre-step to post-step.
        self.accumulation_start = False
        self.accumulation_boundary = False
        self.optimizer_stepped = False
        self.last_grad_norm: float | torch.Tensor | None = None
        self.last_learning_rate: float | None = None
        self.stop_signal: int | None = None
        self._stop_requested: int | None = None
        self._nonfinite_in_a_row = 0
        self._initial_global_step = 0
        self.training_finished = False
        """True once the training loop is over (before the save at the end); ArcticTraining's name."""

        self.data_factory = self._factory("data", config.data)
        self.data_factory.defer_cache_write = True
        self.tokenizer_factory = self._factory("tokenizer", config.tokenizer)
        self.tokenizer = self.tokenizer_factory()
        self.train_dataloader, self.eval_dataloader = self.data_factory()
        self.model_factory = self._factory("model", config.model)
        with engine_cls.model_init_context(config):
            self.model = self._build_model()
        self.model.to(self.device)
        self._compute_horizon()
        self.optimizer_factory = self._factory("optimizer", config.optimizer)
        self.optimizer = self.optimizer_factory()
        self.scheduler_factory = self._factory("scheduler", config.scheduler)
        self.scheduler = self.scheduler_factory()
        self.engine = engine_cls(self)
        self.engine.prepare(self.model, self.optimizer, self.scheduler)
        self.model = self.engine.unwrap()
        self.engine.compile()
        self._flos_per_token = 6.0 * _non_embedding_parameters(self.model)

        self.checkpoint_engines: list[CheckpointEngine] = [
            resolve_factory(type(self), "checkpoint", cfg.type)(self, cfg)
            for cfg in self._checkpoint_configs()
        ]
        self._resume_rng: dict[str, Any] | None = None
        for engine in self.checkpoint_engines:
            if engine.resume() is not None:
                self._resume_rng = rng_state()
                break
        self._warned_no_checkpoint = False
        self._warned_no_eval = False

    # ------------------------------------------------------------------------------------------- building
    def _factory(self, part: str, part_config: Any) -> Any:
        cls = resolve_factory(type(self), part, getattr(part_config, "type", None))
        return cls(self, part_config)

    def _build_model(self) -> torch.nn.Module:
        """The model factory's model; transformers rejecting the model settings is a ``RecipeError``."""
        try:
            return self.model_factory()
        except RecipeError:
            raise
        except (KeyError, TypeError, ValueError, StrictDataclassError) as error:
            detail = " ".join(line.strip() for line in str(error).splitlines())
            raise RecipeError(
                f"model: {type(self.model_factory).__name__} cannot build a model from these settings "
                f"({type(error).__name__}: {detail}). Fix: correct model.config or model.name_or_path "
                "(--traceback shows where it failed).",
                path="model",
            ) from error

    def _checkpoint_configs(self) -> list[Any]:
        """The recipe's ``checkpoint:`` entries; without any, when the recipe saves HF-style (``save_steps``/
        ``save_strategy``), one engine of the run's kind saving into ``output_dir`` itself, as HF does."""
        config = self.config
        if config.checkpoint or config.save_strategy == "no":
            return list(config.checkpoint)
        cls = resolve_factory(type(self), "checkpoint", "deepspeed" if config.engine == "deepspeed" else None)
        return [cls.config(type=cls.name, output_dir=config.output_dir, save_end_of_training=False)]

    def _compute_horizon(self) -> None:
        """Optimizer steps per epoch and in the run (``max_steps`` wins over ``epochs``, as in HF): every
        micro-batch of an epoch is used; its last window may be shorter than the others."""
        config = self.config
        gas = int(config.gradient_accumulation_steps)
        try:
            batches = len(self.train_dataloader)
        except TypeError:
            raise ValueError(
                "the training data loader has no length, so the number of steps per epoch is unknown. "
                "Fix: use a map-style dataset (the built-in data factories do)."
            ) from None
        if batches == 0:
            raise ValueError(
                "the training data gives no micro-batch, so no optimizer step can happen. "
                "Fix: add data, or lower micro_batch_size."
            )
        self.steps_per_epoch = math.ceil(batches / gas)
        self.micro_batches_per_epoch = batches
        if config.max_steps:
            self.training_horizon = int(config.max_steps)
            self.num_epochs = math.ceil(self.training_horizon / self.steps_per_epoch)
        else:
            self.num_epochs = int(config.epochs)
            self.training_horizon = self.num_epochs * self.steps_per_epoch

    @property
    def throughput(self) -> Throughput:
        """Samples, tokens, time and memory behind the throughput figures of the logs."""
        meter = self.__dict__.get("_throughput")
        if meter is None:
            meter = self.__dict__["_throughput"] = Throughput(self)
        return meter

    @property
    def gradient_accumulation_steps(self) -> int:
        """Micro-batches per optimizer step."""
        return int(self.config.gradient_accumulation_steps)

    @property
    def metrics(self) -> DeviceMetrics:
        """A subclass's own metrics, kept on the device until a log: ``self.metrics.add(name, tensor)`` per
        micro-batch (in ``loss``, say). Added during training they are logged with the next training log,
        added during ``evaluate()`` with its metrics as ``eval_<name>``: each the mean over the micro-batches
        since the previous log and over processes, read back with the loss (no transfer of their own)."""
        return self._eval_metrics if self._evaluating else self._train_metrics

    # ------------------------------------------------------------------------------ ArcticTraining's names
    @property
    def global_step(self) -> int:
        """Optimizer steps taken (``state.global_step``); assigning it sets the state's."""
        return self.state.global_step

    @global_step.setter
    def global_step(self, value: int) -> None:
        self.state.global_step = int(value)

    @property
    def global_step_this_run(self) -> int:
        """Optimizer steps taken by this ``train()`` call (a resumed run counts from its checkpoint)."""
        return self.state.global_step - self._initial_global_step

    @property
    def train_batch_idx(self) -> int:
        """Micro-batches taken from the training data so far (``state.micro_step``)."""
        return self.state.micro_step

    @property
    def gas_boundary(self) -> bool:
        """Whether the current micro-batch closes its accumulation window (``accumulation_boundary``)."""
        return self.accumulation_boundary

    @property
    def epoch_finished(self) -> bool:
        """Whether the current epoch's loop is over (true from its end until the next epoch starts)."""
        return self._epoch_ended

    @property
    def model_unwrapped(self) -> torch.nn.Module:
        """The plain model, without the engine's wrapper (DDP, DeepSpeed)."""
        return self.engine.unwrap()

    # ------------------------------------------------------------------------------------------- the loop
    def train(self) -> dict[str, float]:
        """Run the training loop; returns the final ``train_*`` metrics (also logged)."""
        state = self.state
        start_time = time.perf_counter()
        self.readback.read()  # values left from before (an interrupted run) belong to no log of this one
        self._train_metrics.result()
        self._reset_loss_tracking()
        self.throughput.start()
        self._initial_global_step = state.global_step
        self._run_steps = 0
        self._total_loss = 0.0
        self._globalstep_last_logged = state.global_step
        self.engine.train_mode(True)
        self.stop_signal = self._stop_requested = None
        self.training_finished = False
        previous_handlers = interrupts.install(self._on_signal)
        nonfinite_before = state.nonfinite_losses
        try:
            save_cache = getattr(self.data_factory, "save_cache", None)
            if save_cache is not None:
                save_cache()
            with self.engine.cpu_threads():
                self._run_epochs()
            if self._run_steps == 0 and state.nonfinite_losses > nonfinite_before:
                raise NonFiniteLossError(
                    f"every loss of the run was non-finite ({state.nonfinite_losses - nonfinite_before} "
                    "micro-batches skipped), so no optimizer step was taken. Fix: lower the learning rate "
                    "or check the data."
                )
        except StopTraining:
            logger.info("StopTraining raised at step %d: ending training", state.global_step)
        except NonFiniteLossError as error:
            if self.config.nonfinite_loss != "skip" or not self.checkpoint_engines:
                raise
            saved = ", ".join(
                str(call_with_optional(e.save, model=self.model)) for e in self.checkpoint_engines
            )
            raise NonFiniteLossError(
                f"{error} The state at failure, skip counters included: {saved}"
            ) from None
        finally:
            interrupts.restore(previous_handlers)
        steps_run = state.global_step - self._initial_global_step
        self._read_device(mark=True)
        self._total_loss += self._loss_sum
        self._loss_sum = 0.0
        runtime = max(time.perf_counter() - start_time, 1e-9)
        metrics = {
            "train_runtime": runtime,
            "train_samples_per_second": steps_run * self.samples_per_step / runtime,
            "train_steps_per_second": steps_run / runtime,
            "train_tokens_per_second": self.throughput.run_tokens_all() / runtime,
            "total_flos": state.total_flos,
            "train_loss": self._total_loss / max(steps_run, 0.001),  # HF's: the mean of the step losses
        }
        self.log(metrics)
        self.training_finished = True
        self._maybe_save(end_of_training=True)
        self._finish_best_model()
        if state.is_world_process_zero:
            logger.info("%s", self.summary(metrics))
        if self.stop_signal is not None:
            logger.warning(
                "training stopped by signal %d at step %d; resume from %s",
                self.stop_signal,
                state.global_step,
                self._latest_checkpoint() or "(no checkpoint engine configured)",
            )
        return metrics

    def _run_epochs(self) -> None:
        """The epoch loop of ``train`` (HF's ``_inner_training_loop``)."""
        state = self.state
        for epoch_idx in range(self.epoch_idx, self.num_epochs):
            if state.global_step >= self.training_horizon:
                break
            self.epoch_idx = epoch_idx
            self.control._new_epoch()
            self._epoch_ended = False
            try:
                self.epoch()
            except StopEpoch:
                logger.info("StopEpoch raised at step %d: ending epoch %d", state.global_step, epoch_idx)
                if not self._epoch_ended:  # raised before the epoch's own end (not from post-epoch)
                    self._end_epoch()
            self._maybe_log_save_evaluate(end_of_epoch=True)
            if self.control.should_training_stop:
                break

    def epoch(self) -> None:
        """One pass over the training data (resuming mid-epoch skips the micro-batches already seen)."""
        loader = self.train_dataloader
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch_idx)
        skip = self.batches_in_epoch
        if self._resume_rng is not None and skip == 0:
            set_rng_state(self._resume_rng)
            self._resume_rng = None
        iterator = self.engine.prefetch(skip_batches(loader, skip))
        if self._resume_rng is not None:
            set_rng_state(self._resume_rng)
            self._resume_rng = None
        gas = self.gradient_accumulation_steps
        per_epoch = self.micro_batches_per_epoch
        control = self.control
        for batch in iterator:
            if self.batches_in_epoch >= per_epoch:
                break
            position = self.batches_in_epoch
            window_start = position - position % gas
            self.accumulation_start = position == window_start
            self.accumulation_boundary = (position + 1) % gas == 0 or position + 1 == per_epoch
            self.optimizer_stepped = False
            if self.accumulation_start:
                control._new_step()
                self._window = []
            self.engine.window_size = min(gas, per_epoch - window_start)
            self._boundary_backward = False
            self.batches_in_epoch += 1
            self.state.micro_step += 1
            try:
                self.step(batch)
            except SkipStep:
                self.state.skipped_micro_batches += 1
                if self.accumulation_boundary:
                    self._close_window()
                    if self.optimizer_stepped:  # no post-step for a skipped micro-batch: end the step here
                        self.call_hf_event("on_step_end")
            except StopEpoch:
                break
            if self.optimizer_stepped:
                if self.stop_signal is not None:
                    control.should_training_stop = True
                    control.should_save = True
                self._maybe_log_save_evaluate()
            if control.should_epoch_stop or control.should_training_stop:
                break
        self._end_epoch()

    def _end_epoch(self) -> None:
        """Epoch bookkeeping and HF's epoch-end flow (before ``post-epoch`` callbacks see the flags).

        ``state.epoch`` is not changed: as in HF it moves only with optimizer steps, so an epoch cut short by
        ``should_epoch_stop`` keeps its fraction (0.375 after 3 of 8 steps)."""
        self._epoch_ended = True
        if not self.control.should_training_stop:
            self.epoch_idx += 1
            self.batches_in_epoch = 0
        config = self.config
        if config.logging_strategy == "epoch":
            self.control.should_log = True
        if config.eval_strategy == "epoch":
            self.control.should_evaluate = True
        if config.save_strategy == "epoch":
            self.control.should_save = True

    def step(self, batch: dict[str, torch.Tensor]) -> None:
        """One micro-batch: forward, loss, backward; the optimizer step when it closes the window.

        Nothing here reads a device value: the loss and the token count are put into ``self.readback`` and
        come back at the next log (with ``nonfinite_loss: skip`` the loss is checked at once, see
        ``_track_loss``)."""
        batch = self._to_device(batch)
        self.throughput.count(batch)
        self.state.num_input_tokens_seen += batch["input_ids"].numel() * self.world_size
        try:
            with self.engine.accumulate(self.accumulation_boundary):
                loss = self.loss(batch)
                reading = self._track_loss(loss)
                self.backward(loss)
        except self.engine.compile_errors as error:
            raise self.engine.compile_error(error) from error
        self._micro_batch_done(reading, batch["input_ids"].numel())

    def _micro_batch_done(self, reading: Reading, tokens: int) -> None:
        """After a micro-batch's backward: its loss (queued as ``reading``) and ``tokens`` join the window,
        which closes (optimizer step) at its last micro-batch."""
        self._window.append(reading)
        self._boundary_backward = self.accumulation_boundary
        self.state.total_flos += self._flos_per_token * tokens * self.world_size
        if self.accumulation_boundary:
            self._close_window()

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch on the trainer's device (already there when the engine prefetched it)."""
        device = self.device
        return {
            k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) and v.device != device else v
            for k, v in batch.items()
        }

    # ------------------------------------------------------------------------------------------- read-back
    def _reset_loss_tracking(self) -> None:
        self._window: list[Reading] = []
        self._unread_steps: list[list[Reading]] = []
        self._unchecked: list[tuple[Reading, int, int, int]] = []
        self._loss_sum = 0.0
        self._grad_norm: tuple[Any, Reading | float] | None = None

    def _track_loss(self, loss: torch.Tensor) -> Reading:
        """Queue a training loss for the next read-back. With ``nonfinite_loss: stop`` it is checked then
        (its position kept for the message); ``skip`` must decide before the backward, so it checks now:
        one host sync per micro-batch (and one all-reduce in a multi-process run)."""
        if self.config.nonfinite_loss == "skip":
            self._check_finite(loss)
            return self.readback.put(loss)
        reading = self.readback.put(loss)
        position = (self.state.global_step + 1, self.epoch_idx, self.batches_in_epoch)
        self._unchecked.append((reading, *position))
        return reading

    def _log_due_after_this_step(self) -> bool:
        """Whether the optimizer step about to be taken will be logged by the schedule (or ends the run)."""
        step, state = self.state.global_step + 1, self.state
        scheduled = self.config.logging_strategy == "steps" and step % max(state.logging_steps, 1) == 0
        return scheduled or step >= state.max_steps

    def _read_device(self, mark: bool = False) -> None:
        """The read-back: every pending device value (losses, token counts, the latest gradient norm,
        ``metrics``) comes to the host in one transfer (one all-gather across processes), then the losses
        read are checked (``nonfinite_loss: stop``) and summed. Nothing is copied when nothing is pending.

        ``mark``: this read ends a throughput window (a log point, or right before a logged step)."""
        norm = self.last_grad_norm
        if isinstance(norm, torch.Tensor) and (self._grad_norm is None or self._grad_norm[0] is not norm):
            self._grad_norm = (norm, self.readback.put(norm))
        if len(self.readback):
            if mark:
                self.throughput.mark()
            self.readback.read()
        # Everything put so far has been read now (here, or by another read such as evaluate's).
        for window in self._unread_steps:
            self._loss_sum += math.fsum(r.mean for r in window) / len(window)
        self._unread_steps = []
        if self._unchecked:
            unchecked, self._unchecked = self._unchecked, []
            self._raise_if_nonfinite(unchecked)

    def _raise_if_nonfinite(self, losses: list[tuple[Reading, int, int, int]]) -> None:
        """``nonfinite_loss: stop``: fail naming the first non-finite loss among those just read."""
        bad = [(r, *where) for r, *where in losses if not all(map(math.isfinite, r.values or ()))]
        if not bad:
            return
        self.state.nonfinite_losses += len(bad)
        reading, step, epoch, micro_batch = bad[0]
        value = next(v for v in reading.values or () if not math.isfinite(v))
        where = f"optimizer step {step} (epoch {epoch}, micro-batch {micro_batch} of the epoch)"
        late = ""
        if step != self.state.global_step + 1 or self.optimizer_stepped:
            late = (
                f" Losses are read back once per logging step: it was found after step "
                f"{self.state.global_step}, and nothing was logged, evaluated or saved after it "
                "(logging_steps: 1 stops at the step itself)."
            )
        raise NonFiniteLossError(
            f"non-finite loss ({value}) at {where}. Fix: lower the learning rate, check the data, or set "
            f"nonfinite_loss: skip to skip such micro-batches.{late}"
        )

    def _check_finite(self, loss: torch.Tensor) -> None:
        finite = torch.isfinite(loss.detach())
        if self.world_size > 1:
            flag = finite.to(torch.int32).reshape(1)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
            finite = flag[0]
        if bool(finite):
            self._nonfinite_in_a_row = 0
            return
        self.state.nonfinite_losses += 1
        self._nonfinite_in_a_row += 1
        where = (
            f"optimizer step {self.state.global_step + 1} (epoch {self.epoch_idx}, "
            f"micro-batch {self.batches_in_epoch} of the epoch)"
        )
        if self.config.nonfinite_loss == "skip":
            patience = int(self.config.nonfinite_loss_patience)
            if self._nonfinite_in_a_row >= patience:
                raise NonFiniteLossError(
                    f"{self._nonfinite_in_a_row} non-finite losses in a row (the last at {where}) with "
                    "nonfinite_loss: skip: the run is not training. Fix: lower the learning rate or check "
                    f"the data (nonfinite_loss_patience: {patience} sets how many in a row are tolerated)."
                )
            logger.warning("non-finite loss %s at %s: skipping this micro-batch", float(loss.detach()), where)
            raise SkipStep(f"non-finite loss at {where}")
        raise NonFiniteLossError(
            f"non-finite loss ({float(loss.detach())}) at {where}. Fix: lower the learning rate, check the "
            "data, or set nonfinite_loss: skip to skip such micro-batches."
        )

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The mean loss of one micro-batch (the model's causal-LM loss on ``labels``)."""
        return self.engine.forward(batch).loss

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the gradients of ``loss`` (scaled by 1/gradient_accumulation_steps by the engine)."""
        self.engine.backward(loss)

    def _close_window(self) -> None:
        """At the last micro-batch of a window: clip, optimizer step, then end the step (unless nothing to
        step, or ``SkipStep`` from ``pre-optimizer-step``: then the window is dropped).

        Before the optimizer step of a step that will be logged, the read-back happens here (with the
        step's gradient norm): a non-finite loss then stops the run before the optimizer steps on it."""
        boundary_synced = self._boundary_backward or self.engine.steps_after_skipped_boundary
        if not self._window or not boundary_synced:
            self._drop_window()
            return
        self.last_grad_norm = self.engine.clip_grad_norm(self.config.max_grad_norm)
        if self._log_due_after_this_step():
            self._read_device(mark=True)
        self._optimizer_ran = False
        try:
            self.optimizer_step()
        except TrainerFlowException as flow:
            if not self._optimizer_ran:  # from pre-optimizer-step: SkipStep drops the window
                if isinstance(flow, SkipStep):
                    self._drop_window()
                    return
                raise
            self._end_step()  # from post-optimizer-step: the optimizer has stepped, so the step counts
            if not isinstance(flow, SkipStep):
                raise
            return
        self._end_step()

    def _drop_window(self) -> None:
        self.engine.zero_grad()
        self._window = []
        self.state.skipped_optimizer_steps += 1

    def optimizer_step(self) -> None:
        """The optimizer step. ``post-optimizer-step`` callbacks (HF's ``on_optimizer_step``) still see the
        gradients, ``global_step`` before the step and the learning rate it used; the scheduler step, zeroing
        the gradients and ``global_step += 1`` follow."""
        self.last_learning_rate = self.optimizer.param_groups[0]["lr"]
        norm = self.engine.step()
        self._optimizer_ran = True
        if norm is not None:
            self.last_grad_norm = norm

    def _end_step(self) -> None:
        """After ``post-optimizer-step``: scheduler step and zero grad, count the step, set ``state.epoch``
        as HF does, add the window's mean loss to the running loss (on the device) and run the default flow,
        all before the ``post-step`` callbacks (HF's ``on_step_end``)."""
        self.engine.end_step()
        state = self.state
        window, self._window = self._window, []
        if window[-1].ready:  # a read-back reads everything put before it
            self._loss_sum += math.fsum(r.mean for r in window) / len(window)
        else:
            self._unread_steps.append(window)
        state.global_step += 1
        self._run_steps += 1
        state.epoch = self.epoch_idx + self.batches_in_epoch / self.micro_batches_per_epoch
        self.optimizer_stepped = True
        self._step_end_flow()

    def _step_end_flow(self) -> None:
        """HF's ``DefaultFlowCallback.on_step_end``, plus exit_iteration and the kill switch."""
        config, state, control = self.config, self.state, self.control
        step = state.global_step
        if config.logging_strategy == "steps" and step % state.logging_steps == 0:
            control.should_log = True
        if config.eval_strategy == "steps" and state.eval_steps and step % state.eval_steps == 0:
            control.should_evaluate = True
        if config.save_strategy == "steps" and state.save_steps and step % state.save_steps == 0:
            control.should_save = True
        if step >= state.max_steps:
            control.should_training_stop = True
            if config.eval_strategy == "steps" and state.eval_steps and step % state.eval_steps != 0:
                control.should_evaluate = True
            if config.save_strategy == "steps":
                control.should_save = True
        if config.exit_iteration is not None and self._run_steps >= config.exit_iteration:
            logger.info("exit_iteration=%d reached at step %d: stopping", config.exit_iteration, step)
            control.should_training_stop = True
        if config.exit_at_step is not None and step >= config.exit_at_step:
            logger.info("exit_at_step=%d reached: stopping", config.exit_at_step)
            control.should_training_stop = True
        kill = config.kill_switch_path
        if kill is not None and Path(kill).exists():
            logger.warning("kill switch %s found at step %d: saving and stopping", kill, step)
            control.should_training_stop = True
            control.should_save = True
        if self._agree_on_stop():
            control.should_training_stop = True
            control.should_save = True

    def _maybe_log_save_evaluate(self, end_of_epoch: bool = False) -> None:
        """Log, evaluate and save as the control flags say (HF's ``_maybe_log_save_evaluate``), after the
        read-back (nothing is pending when the step was logged by the schedule: it was read before its
        optimizer step), so a non-finite loss is never logged, evaluated or saved."""
        control, state = self.control, self.state
        log_now = control.should_log and state.global_step > self._globalstep_last_logged
        engines = self.checkpoint_engines
        saves = bool(engines) and any(e.should_save(end_of_epoch=end_of_epoch) for e in engines)
        if log_now or control.should_evaluate or saves:
            self._read_device(mark=True)
        if log_now:
            steps = state.global_step - self._globalstep_last_logged
            logs: dict[str, float] = {"loss": self._loss_sum / steps}
            self._total_loss += self._loss_sum
            self._loss_sum = 0.0
            if self._grad_norm is not None and self._grad_norm[0] is self.last_grad_norm:
                logs["grad_norm"] = self._grad_norm[1].mean  # type: ignore[union-attr]
            elif self.last_grad_norm is not None:
                logs["grad_norm"] = float(self.last_grad_norm)
            logs["learning_rate"] = float(
                self.last_learning_rate
                if self.last_learning_rate is not None
                else self.optimizer.param_groups[0]["lr"]
            )
            logs.update(self.throughput.window(steps))
            logs.update(self._train_metrics.result())
            self._globalstep_last_logged = state.global_step
            self.log(logs)
        if not (control.should_evaluate or control.should_save or saves):
            return
        with self.throughput.paused():
            if control.should_evaluate:
                self._track_best_metric(self.evaluate())
            self._maybe_save(end_of_epoch=end_of_epoch)

    def _maybe_save(self, end_of_epoch: bool = False, end_of_training: bool = False) -> None:
        engines = [
            e
            for e in self.checkpoint_engines
            if e.should_save(end_of_epoch=end_of_epoch, end_of_training=end_of_training)
        ]
        if engines:
            self._engines_to_save = engines
            self.checkpoint()
        elif self.control.should_save and not end_of_training:
            if not self.checkpoint_engines and not self._warned_no_checkpoint:
                logger.warning(
                    "a save was requested but the recipe has no checkpoint: engines and no save_steps/"
                    "save_strategy; nothing saved"
                )
                self._warned_no_checkpoint = True
            self.control.should_save = False

    # ------------------------------------------------------------------------------------------- best model
    def _track_best_metric(self, metrics: dict[str, float]) -> None:
        """HF's ``_determine_best_metric``, after ``post-evaluate`` (HF's ``EarlyStoppingCallback`` compares
        with the best before this evaluation)."""
        config, state = self.config, self.state
        name = config.metric_for_best_model
        if name is None:
            return
        key = name if name.startswith("eval_") else f"eval_{name}"
        if key not in metrics:
            raise ValueError(
                f"metric_for_best_model is {name!r}, but the evaluation gave no {key!r} "
                f"(it gave {sorted(metrics)}). Fix: set metric_for_best_model to one of them."
            )
        value = float(metrics[key])
        greater = bool(config.greater_is_better)
        if state.best_metric is None:
            state.best_metric = -math.inf if greater else math.inf
        if value > state.best_metric if greater else value < state.best_metric:
            state.best_metric = value
            if config.save_strategy in ("steps", "epoch"):
                state.best_global_step = state.global_step

    def _record_best_checkpoint(self, engines: list[CheckpointEngine]) -> None:
        """Before a save, point ``state.best_model_checkpoint`` at the first engine's checkpoint of the best
        step, if it exists or is being written now (so the saved state names it, as in HF)."""
        state = self.state
        if not self.checkpoint_engines or not state.best_global_step:
            return
        primary = self.checkpoint_engines[0]
        path = primary.path_for(state.best_global_step)
        if (primary in engines and state.best_global_step == state.global_step) or path.is_dir():
            state.best_model_checkpoint = str(path)

    def _finish_best_model(self) -> None:
        """At the end of training: with ``load_best_model_at_end`` load the best checkpoint's weights; with
        ``save_total_limit: 1`` keep only the best checkpoint (HF's ``_finalize_training``)."""
        best = self.state.best_model_checkpoint
        if best is None or not self.checkpoint_engines:
            return
        primary = self.checkpoint_engines[0]
        if self.config.load_best_model_at_end:
            logger.info("loading the best model from %s (score: %s)", best, self.state.best_metric)
            primary.load_weights(best)
        for engine in self.checkpoint_engines:
            kept = engine.best()
            if engine.config.save_total_limit == 1 and kept is not None and kept.is_dir():
                engine.remove_all_but(kept)

    # ------------------------------------------------------------------------------------------- evaluation
    def evaluate(self) -> dict[str, float]:
        """Mean loss over the evaluation data plus the data factory's metrics, as ``eval_*``, with HF's
        ``eval_runtime``/``eval_samples_per_second``/``eval_steps_per_second``, ``eval_tokens_per_second`` and
        ``epoch``; logged."""
        start_time = time.perf_counter()
        self.engine.train_mode(False)
        self._evaluating = True
        metrics: dict[str, float] = {}
        samples = tokens = count = 0
        try:
            with self.engine.eager():
                if self.eval_dataloader is not None:
                    total = torch.zeros((), dtype=torch.float64, device=self.device)
                    with torch.no_grad():
                        for batch in self.eval_dataloader:
                            batch_samples, batch_tokens = batch_size_and_tokens(batch)
                            samples, tokens = samples + batch_samples, tokens + batch_tokens
                            total += self.prediction_step(batch).double()
                            count += 1
                    put = self.readback.put
                    readings = [put(total), *(put(torch.tensor(n)) for n in (count, samples, tokens))]
                    self.readback.read()  # the loss, the counts and the metrics of all processes at once
                    total_loss, count, samples, tokens = (r.total for r in readings)
                    count, samples, tokens = int(count), int(samples), int(tokens)
                    if count:
                        metrics["eval_loss"] = total_loss / count
                with torch.no_grad():
                    extra = self.data_factory.compute_metrics(self.model, self.tokenizer)
            extra = {**self._eval_metrics.result(), **extra}
            metrics.update({k if k.startswith("eval_") else f"eval_{k}": float(v) for k, v in extra.items()})
        finally:
            self._evaluating = False
            self.engine.train_mode(True)
        if not metrics and not self._warned_no_eval:
            logger.warning("evaluation requested but there is no evaluation data and no metric")
            self._warned_no_eval = True
        if samples:  # HF's speed figures (its steps: the batches of all processes together), and tokens
            runtime = max(time.perf_counter() - start_time, 1e-9)
            eval_batch = int(self.config.data.eval_batch_size or self.config.micro_batch_size)
            metrics["eval_runtime"] = runtime
            metrics["eval_samples_per_second"] = samples / runtime
            metrics["eval_steps_per_second"] = math.ceil(samples / (eval_batch * self.world_size)) / runtime
            metrics["eval_tokens_per_second"] = tokens / runtime
        self.log(metrics)
        self.control.should_evaluate = False
        return metrics

    def prediction_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss of one evaluation batch (called under ``torch.no_grad`` with the model in eval mode)."""
        batch = self._to_device(batch)
        return self.loss(batch).detach()

    # ------------------------------------------------------------------------------------------- log / save
    def log(self, logs: dict[str, float]) -> dict[str, float]:
        """Add the epoch to ``logs`` (in place, as HF does) and record them with the step in
        ``state.log_history``; returns them to ``post-log``."""
        logs["epoch"] = self.state.epoch
        self.state.log_history.append({**logs, "step": self.state.global_step})
        self.control.should_log = False
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("step %d: %s", self.state.global_step, _format_logs(logs))
        return logs

    def checkpoint(self) -> Path | None:
        """Save with the checkpoint engines that are due (all of them when called directly). Losses not yet
        read back are checked first, so no checkpoint is written after a non-finite loss."""
        if self._unchecked:
            self._read_device()
        engines = self.__dict__.pop("_engines_to_save", None) or self.checkpoint_engines
        self._record_best_checkpoint(engines)
        self.callback_states()
        paths = [call_with_optional(engine.save, model=self.model) for engine in engines]
        self.control.should_save = False
        return paths[0] if paths else None

    def summary(self, metrics: dict[str, float]) -> str:
        """One line on the finished run: steps, time, training loss and the last evaluation's metrics."""
        state = self.state
        text = (
            f"training done: {state.global_step} steps in {metrics['train_runtime']:.1f}s "
            f"({metrics.get('train_steps_per_second', 0.0):.2f} steps/s), "
            f"train_loss={metrics['train_loss']:.4g}"
        )
        evals = [e for e in state.log_history if any(k.startswith("eval_") for k in e)]
        last_eval = evals[-1] if evals else None
        if last_eval is not None:
            shown = {k: v for k, v in last_eval.items() if k.startswith("eval_") and k not in EVAL_RATES}
            text += f"; evaluation at step {last_eval['step']}: {_format_logs(shown)}"
        return text

    def _latest_checkpoint(self) -> Path | None:
        for engine in self.checkpoint_engines:
            latest = engine.latest()
            if latest is not None:
                return latest
        return None

    @property
    def samples_per_step(self) -> int:
        """Samples in one optimizer step over all processes."""
        return int(self.config.micro_batch_size) * self.gradient_accumulation_steps * self.world_size

    # ------------------------------------------------------------------------------------------- signals
    def _on_signal(self, signum: int, frame: Any) -> None:
        """SIGINT/SIGTERM during ``train()``: the first asks to stop after the current optimizer step (with a
        checkpoint); a second stops at once (``interrupts.Interrupted``, exit status 128 + signal)."""
        interrupts.received.append(signum)
        if self._stop_requested is not None:
            raise interrupts.Interrupted(signum)
        self._stop_requested = signum
        logger.warning(
            "%s received: finishing the current step, then saving a checkpoint and stopping (send it "
            "again to stop at once)",
            signal.Signals(signum).name,
        )

    def _agree_on_stop(self) -> bool:
        """Whether to stop after this optimizer step: a signal on any rank stops every rank after the same
        step (one all-reduce per optimizer step in a multi-process run, of a CPU tensor over a gloo group:
        it waits for the other processes, not for the GPU). Sets ``stop_signal``."""
        requested = self._stop_requested or 0
        if self.world_size > 1:
            flag = torch.tensor([requested], dtype=torch.int64)
            group = self._host_group()
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX, group=group)
            requested = int(flag[0])
        if requested:
            self.stop_signal = self.stop_signal or requested
        return self.stop_signal is not None

    def _host_group(self) -> Any:
        """A process group for CPU tensors: the default one when it runs gloo, else a gloo group made once
        (every rank reaches the first optimizer step, so every rank makes it)."""
        group = self.__dict__.get("_gloo_group", False)
        if group is False:
            backend = str(torch.distributed.get_backend())
            group = None if "gloo" in backend else torch.distributed.new_group(backend="gloo")
            self.__dict__["_gloo_group"] = group
        return group


def _non_embedding_parameters(model: torch.nn.Module) -> int:
    """Parameters counted in ``total_flos`` (6 per parameter and token), as HF's ``floating_point_ops``
    (which would count ZeRO-3's empty local tensors: those are counted at their full size)."""
    partitioned = any(hasattr(p, "ds_numel") for p in model.parameters())
    if hasattr(model, "num_parameters") and not partitioned:
        return int(model.num_parameters(exclude_embeddings=True))
    return parameter_count(model, exclude_embeddings=partitioned)


def _format_logs(logs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items())
