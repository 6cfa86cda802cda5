"""The arctic_like side of the TRL comparisons: the same tiny model, data and hyperparameters as
``tests/reference/trl_runs.py``, through recipes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from arctic_like.config import build_trainer, load_recipe
from arctic_like.data import DPODataFactory, SFTDataFactory


def _in_order(loader: DataLoader, training: bool) -> DataLoader:
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        shuffle=False,
        collate_fn=loader.collate_fn,
        drop_last=training,
    )


class InOrderDPOData(DPODataFactory):
    """``dpo`` data without shuffling (TRL's ``train_sampling_strategy="sequential"``)."""

    name = "dpo-in-order"

    def create_dataloader(self, dataset: Any, training: bool) -> DataLoader:
        return _in_order(super().create_dataloader(dataset, training), training)


class InOrderSFTData(SFTDataFactory):
    """``sft`` data without shuffling."""

    name = "sft-in-order"

    def create_dataloader(self, dataset: Any, training: bool) -> DataLoader:
        return _in_order(super().create_dataloader(dataset, training), training)


def recipe(model_dir: Path, output_dir: Path, rows_function: str, **overrides: Any) -> dict[str, Any]:
    """A recipe training the saved tiny model on ``rows_function``'s rows with TRL's settings."""
    base: dict[str, Any] = {
        "type": "dpo",
        "tokenizer": {"type": "huggingface", "name_or_path": str(model_dir)},
        "data": {
            "type": "dpo-in-order",
            "sources": [{"type": "callable", "function": rows_function}],
            "max_length": 64,
            "cache_dir": str(output_dir / "cache"),
        },
        "model": {"type": "huggingface", "name_or_path": str(model_dir)},
        "optimizer": {"type": "adamw", "lr": 5e-3, "weight_decay": 0.0},
        "scheduler": {"type": "constant"},
        "micro_batch_size": 4,
        "max_steps": 4,
        "logging_steps": 1,
        "max_grad_norm": 1.0,
        "seed": 0,
        "output_dir": str(output_dir),
        "device": "cpu",
        "progress": False,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def train(recipe_dict: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    """Build and train; returns the trainer and its per-step log entries."""
    trainer = build_trainer(load_recipe(recipe_dict))
    trainer.train()
    return trainer, [entry for entry in trainer.state.log_history if "loss" in entry]
