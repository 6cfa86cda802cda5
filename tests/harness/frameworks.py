"""Run harness callbacks in arctic_like, the HF Trainer and Lightning on one tiny Llama and one data set."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from arctic_like.harness import (
    GradNormMonitor,
    HarnessCallback,
    LossLogger,
    NaNGuard,
    StepTimer,
    to_arctic,
    to_hf,
    to_lightning,
)
from arctic_like.trainer import CausalTrainer

SEQ, BATCH, N_TRAIN, N_EVAL = 16, 4, 16, 4  # 4 optimizer steps per epoch

TINY_LLAMA = {
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "max_position_embeddings": SEQ,
}


@dataclass
class Parts:
    """The tiny model (initial weights) and the data every framework trains on, built once by arctic_like."""

    model: torch.nn.Module
    train: Any
    eval: Any
    collate: Any


_PARTS: list[Parts] = []


def shared_parts(root: Path) -> Parts:
    """Build (once per session) an arctic_like trainer from the tiny recipe and keep its model and data."""
    if not _PARTS:
        trainer = arctic_trainer([], root / "parts", eval_steps=None, save_steps=None)
        loader = trainer.train_dataloader
        model = copy.deepcopy(trainer.model).cpu()
        _PARTS.append(Parts(model, loader.dataset, trainer.eval_dataloader.dataset, loader.collate_fn))
    return _PARTS[0]


def tiny_model(root: Path) -> torch.nn.Module:
    """A fresh copy of the tiny Llama with the initial weights arctic_like starts from."""
    return copy.deepcopy(shared_parts(root).model)


class Trace(HarnessCallback):
    """Records every core-method call with the arguments that can be compared across frameworks."""

    optional_events = frozenset({"_on_log", "_on_exception"})

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.losses: list[float] = []
        self.metric_keys: list[list[str]] = []
        self.log_keys: list[list[str]] = []
        self.save_dirs: list[str | None] = []

    def _on_train_start(self, current_step: int, max_steps: int, epoch: int, is_main_process: bool) -> None:
        self.calls.append(("train_start", current_step, epoch))
        self.max_steps, self.is_main_process = max_steps, is_main_process

    def _on_train_end(self, current_step: int) -> None:
        self.calls.append(("train_end", current_step))

    def _on_epoch_start(self, epoch: int, current_step: int) -> None:
        self.calls.append(("epoch_start", epoch, current_step))

    def _on_epoch_end(self, epoch: int, current_step: int) -> None:
        self.calls.append(("epoch_end", epoch, current_step))

    def _on_train_batch_start(self, current_step: int) -> None:
        self.calls.append(("batch_start", current_step))

    def _on_before_optimizer_step(self, current_step: int, optimizer: Any, model: Any) -> None:
        assert any(p.grad is not None for p in model.parameters())
        assert optimizer.param_groups
        self.calls.append(("before_optimizer_step", current_step))

    def _on_train_batch_end(self, current_step: int, loss: float, learning_rate: float, batch: Any) -> None:
        assert batch["input_ids"].shape[0] == BATCH
        assert learning_rate > 0
        self.losses.append(loss)
        self.calls.append(("batch_end", current_step))

    def _on_validation_end(self, current_step: int, metrics: dict[str, float]) -> None:
        self.metric_keys.append(sorted(metrics))
        self.calls.append(("validation_end", current_step))

    def _on_save(self, current_step: int, checkpoint_dir: str | None = None) -> None:
        self.save_dirs.append(checkpoint_dir)
        self.calls.append(("save", current_step))

    def _on_log(self, current_step: int, logs: dict[str, float]) -> None:
        self.log_keys.append(sorted(logs))
        self.calls.append(("log", current_step))


def core(calls: Sequence[tuple], drop: Sequence[str] = ("log",)) -> list[tuple]:
    """The calls without the events named in ``drop``."""
    return [c for c in calls if c[0] not in drop]


def crafted_scores(values: Sequence[float]) -> Iterator[float]:
    """Yield ``values`` then keep repeating the last one."""
    yield from values
    while True:
        yield values[-1]


# ----------------------------------------------------------------------------------------------------- HF
def hf_trainer(
    callbacks: Sequence[HarnessCallback],
    out: Path,
    *,
    max_steps: int = 6,
    eval_steps: int | None = 3,
    save_steps: int | None = 3,
    scores: Iterator[float] | None = None,
    nan_at: int | None = None,
    **training_args: Any,
) -> Any:
    from transformers import Trainer, TrainingArguments

    parts = shared_parts(out.parent)
    model = tiny_model(out.parent)
    if nan_at is not None:
        calls = {"n": 0}

        def poison(module: Any, args: Any, output: Any) -> Any:
            if module.training:
                calls["n"] += 1
                if calls["n"] == nan_at:
                    output.loss = output.loss * math.nan
            return output

        model.register_forward_hook(poison)
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=max_steps,
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=BATCH,
        learning_rate=1e-3,
        eval_strategy="steps" if eval_steps else "no",
        eval_steps=eval_steps,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
        logging_steps=training_args.pop("logging_steps", 3),
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        dataloader_num_workers=0,
        **training_args,
    )

    def compute_metrics(_pred: Any) -> dict[str, float]:
        return {"score": next(scores)} if scores is not None else {}

    return Trainer(
        model=model,
        args=args,
        train_dataset=parts.train,
        eval_dataset=parts.eval,
        data_collator=parts.collate,
        callbacks=[to_hf(cb) for cb in callbacks],
        compute_metrics=compute_metrics if scores is not None else None,
    )


# ----------------------------------------------------------------------------------------------- Lightning
def lightning_trainer(
    callbacks: Sequence[HarnessCallback],
    out: Path,
    *,
    max_steps: int = 6,
    eval_steps: int | None = 3,
    save_steps: int | None = 3,
    scores: Iterator[float] | None = None,
    nan_at: int | None = None,
    **trainer_kwargs: Any,
) -> tuple[Any, Any]:
    import lightning.pytorch as pl

    class LitLM(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = tiny_model(out.parent)

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            loss = self.model(**batch).loss
            if nan_at is not None and self.global_step + 1 == nan_at:
                loss = loss * math.nan
            return loss

        def validation_step(self, batch: dict, batch_idx: int) -> None:
            self.log("val_loss", self.model(**batch).loss)

        def on_validation_epoch_end(self) -> None:
            if scores is not None:
                self.log("val_score", next(scores))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

        def train_dataloader(self) -> Any:
            parts = shared_parts(out.parent)
            return torch.utils.data.DataLoader(parts.train, BATCH, shuffle=True, collate_fn=parts.collate)

        def val_dataloader(self) -> Any:
            parts = shared_parts(out.parent)
            return torch.utils.data.DataLoader(parts.eval, BATCH, collate_fn=parts.collate)

    extra: list[Any] = []
    if save_steps:
        extra.append(
            pl.callbacks.ModelCheckpoint(
                dirpath=str(out / "ckpt"), every_n_train_steps=save_steps, save_top_k=-1
            )
        )
    trainer = pl.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=bool(save_steps),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        val_check_interval=eval_steps or 1,
        check_val_every_n_epoch=None,
        limit_val_batches=1.0 if eval_steps else 0,
        default_root_dir=str(out),
        callbacks=[*(to_lightning(cb) for cb in callbacks), *extra],
        **trainer_kwargs,
    )
    return trainer, LitLM()


# ---------------------------------------------------------------------------------------------- arctic_like
class ScoredTrainer(CausalTrainer):
    """A causal trainer whose evaluation also reports ``eval_score`` from ``self.scores`` (crafted)."""

    name = "harness-scored"

    def post_evaluate_callback(self, metrics: dict) -> dict:
        scores = self.__dict__.get("scores")
        return metrics if scores is None else {**metrics, "eval_score": next(scores)}


def arctic_trainer(
    harness_callbacks: Sequence[HarnessCallback],
    out: Path,
    *,
    max_steps: int = 6,
    eval_steps: int | None = 3,
    save_steps: int | None = 3,
    scores: Iterator[float] | None = None,
    nan_at: int | None = None,
    **overrides: Any,
) -> Any:
    from arctic_like.config import build_trainer, load_recipe

    recipe: dict[str, Any] = {
        "type": ScoredTrainer.name,
        "tokenizer": {"type": "char"},
        "data": {
            "sources": [{"type": "addition", "digits": 1, "num_samples": N_TRAIN, "eval_samples": N_EVAL}],
            "max_length": SEQ,
            "packing": False,
            "cache_dir": str(out / "cache"),
            "eval_batch_size": BATCH,
        },
        "model": {"config": dict(TINY_LLAMA)},
        "optimizer": {"lr": 1e-3},
        "micro_batch_size": BATCH,
        "epochs": 2,
        "max_steps": max_steps,
        "logging_steps": 3,
        "eval_strategy": "steps" if eval_steps else "no",
        "eval_steps": eval_steps,
        "save_strategy": "steps" if save_steps else "no",
        "save_steps": save_steps,
        "checkpoint": (
            [{"type": "torch", "save_every_n_steps": save_steps, "save_end_of_training": False}]
            if save_steps
            else []
        ),
        "output_dir": str(out / "out"),
        "device": "cpu",
        "progress": False,
        **overrides,
    }
    trainer = build_trainer(load_recipe(recipe))
    trainer.scores = scores
    if nan_at is not None:
        trainer.callbacks.append(("post-loss", _poison_at(nan_at)))
    for cb in harness_callbacks:
        to_arctic(cb, trainer)
    return trainer


def _poison_at(step: int) -> Any:
    def poison(trainer: Any, loss: torch.Tensor) -> torch.Tensor:
        return loss * math.nan if trainer.state.global_step + 1 == step else loss

    return poison


@dataclass
class Run:
    """One training run and the harness callbacks it drove."""

    trainer: Any
    out: Path
    trace: Trace = field(default_factory=Trace)
    loss_logger: LossLogger | None = None
    grad_norm: GradNormMonitor = field(default_factory=GradNormMonitor)
    timer: StepTimer = field(default_factory=StepTimer)
    nan_guard: NaNGuard = field(default_factory=NaNGuard)

    @property
    def callbacks(self) -> list[Any]:
        return [self.trace, self.loss_logger, self.grad_norm, self.timer, self.nan_guard]
