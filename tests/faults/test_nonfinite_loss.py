"""`nonfinite_loss: stop | skip`: a `post-loss` callback (added at run time) makes one loss NaN.

In process, with the plain `causal` trainer (the 2-process case, a NaN on one rank only, is in
test_graceful_stop.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from arctic_like.config import build_trainer
from arctic_like.trainer.exceptions import NonFiniteLossError
from tests.distributed.launch import tiny_recipe

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

NAN_STEP = 3


def nan_once_at_step_3(trainer: Any, loss: torch.Tensor) -> torch.Tensor:
    """The first micro-batch loss of optimizer step 3 becomes NaN (once: a skipped window repeats step 3)."""
    if trainer.state.global_step + 1 == NAN_STEP and not trainer.__dict__.get("_nan_done"):
        trainer._nan_done = True
        return loss * float("nan")
    return loss


def _trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Any:
    monkeypatch.chdir(tmp_path)
    recipe = tiny_recipe(tmp_path / "out", **overrides)
    del recipe["code"]
    recipe["type"] = "causal"
    trainer = build_trainer(recipe)
    trainer.callbacks.append(("post-loss", nan_once_at_step_3))
    return trainer


def test_stop_names_the_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = _trainer(tmp_path, monkeypatch, nonfinite_loss="stop")
    message = r"non-finite loss \(nan\) at optimizer step 3 .*nonfinite_loss: skip"
    with pytest.raises(NonFiniteLossError, match=message):
        trainer.train()
    assert trainer.state.global_step == 2
    assert trainer.state.nonfinite_losses == 1


def test_skip_drops_the_micro_batch_counts_it_and_trains_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = _trainer(tmp_path, monkeypatch, nonfinite_loss="skip", gradient_accumulation_steps=2)
    trainer.train()
    state = trainer.state
    assert state.global_step == 6
    assert (state.nonfinite_losses, state.skipped_micro_batches, state.skipped_optimizer_steps) == (1, 1, 0)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    logged = [entry["loss"] for entry in state.log_history if "loss" in entry]
    assert len(logged) == 6 and all(torch.isfinite(torch.tensor(logged)))


def test_skip_of_a_whole_window_counts_a_skipped_optimizer_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = _trainer(tmp_path, monkeypatch, nonfinite_loss="skip")
    trainer.train()
    state = trainer.state
    assert state.global_step == 6
    assert (state.nonfinite_losses, state.skipped_micro_batches, state.skipped_optimizer_steps) == (1, 1, 1)
