"""`nonfinite_loss: stop | skip`: a NaN loss (made by the probe trainer's `post-loss` callback at step 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from arctic_like.config import build_trainer
from arctic_like.trainer.exceptions import NonFiniteLossError
from tests.distributed.launch import tiny_recipe

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


@pytest.fixture
def nan_at_step_3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in [k for k in os.environ if k.startswith("PROBE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PROBE_NAN_STEP", "3")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_stop_names_the_step(nan_at_step_3: Path) -> None:
    trainer = build_trainer(tiny_recipe(nan_at_step_3 / "out", nonfinite_loss="stop"))
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss \(nan\) at optimizer step 3 .*nonfinite_loss: skip"
    ):
        trainer.train()
    assert trainer.state.global_step == 2
    assert trainer.state.nonfinite_losses == 1


def test_skip_drops_the_micro_batch_counts_it_and_trains_on(nan_at_step_3: Path) -> None:
    trainer = build_trainer(
        tiny_recipe(nan_at_step_3 / "out", nonfinite_loss="skip", gradient_accumulation_steps=2)
    )
    trainer.train()
    state = trainer.state
    assert state.global_step == 6
    assert state.nonfinite_losses == 1
    assert state.skipped_micro_batches == 1
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    logged = [entry["loss"] for entry in state.log_history if "loss" in entry]
    assert len(logged) == 6 and all(torch.isfinite(torch.tensor(logged)))


def test_skip_of_a_whole_window_counts_a_skipped_optimizer_step(nan_at_step_3: Path) -> None:
    trainer = build_trainer(tiny_recipe(nan_at_step_3 / "out", nonfinite_loss="skip"))
    trainer.train()
    assert trainer.state.global_step == 6
    assert trainer.state.skipped_micro_batches == 1
    assert trainer.state.skipped_optimizer_steps == 1
