"""No host sync in the hot loop: every read of a device value during `train()` is counted (``HostSyncCounter``
patches `item`, `tolist`, `cpu`, `numpy`, `bool`, `float`, `int`, `index` and `__array__` of `torch.Tensor`)
with the console, JSONL and TensorBoard on. The loop reads once per logging step, in one transfer; the reads
left are the model's own (transformers' attention-mask check), the same in any loop around that model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from arctic_like import registry
from arctic_like.config import build_trainer, load_recipe
from arctic_like.trainer import CausalTrainer, NonFiniteLossError
from arctic_like.trainer.syncs import HostSyncCounter
from tests.trainer.helpers import tiny_recipe

LOGGERS = ["arctic_like.callbacks.JsonLogger", "arctic_like.callbacks.TensorBoardLogger"]
DATA = {"sources": [{"type": "addition", "digits": 1, "num_samples": 64, "eval_samples": 0}]}


def recipe(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """8 optimizer steps of 2 micro-batches each, console and loggers on."""
    base = {
        "max_steps": 8,
        "gradient_accumulation_steps": 2,
        "progress": True,
        "callbacks": LOGGERS,
        "data": DATA,
    }
    return tiny_recipe(tmp_path, **{**base, **overrides})


def loop_reads(counter: HostSyncCounter) -> list[str]:
    """The reads made outside the model's own code."""
    return [
        f"{name} at {place.rsplit(':', 1)[0]}" for name, place in counter.calls if "transformers" not in place
    ]


def train_counting(trainer: Any) -> HostSyncCounter:
    with HostSyncCounter() as counter:
        trainer.train()
    return counter


@pytest.mark.parametrize(("logging_steps", "reads"), [(2, 4), (3, 3)])
def test_one_read_back_per_logging_step(tmp_path: Path, capsys: Any, logging_steps: int, reads: int) -> None:
    trainer = build_trainer(load_recipe(recipe(tmp_path, logging_steps=logging_steps)))
    counter = train_counting(trainer)
    # Logged steps 2, 4, 6, 8, or 3, 6 plus the run's last step (for its train_loss): one transfer each.
    assert loop_reads(counter) == ["tolist at arctic_like/trainer/readback.py"] * reads
    assert trainer.readback.reads == reads
    logged = [e for e in trainer.state.log_history if "loss" in e]
    assert [e["step"] for e in logged] == list(range(logging_steps, 9, logging_steps))
    assert all(
        torch.isfinite(torch.tensor([e["loss"], e["grad_norm"], e["tokens_per_second"]])).all()
        for e in logged
    )
    jsonl = (tmp_path / "out" / "log.jsonl").read_text().splitlines()
    assert sum('"loss"' in line for line in jsonl) == len(logged)
    assert any((tmp_path / "out" / "tensorboard").glob("events.out.tfevents*"))
    assert f"step {8 - 8 % logging_steps}/8" in capsys.readouterr().err  # the console printed its lines


def test_skip_reads_each_loss_before_its_backward(tmp_path: Path) -> None:
    """`nonfinite_loss: skip` must know before the backward: one read per micro-batch (documented), which the
    counter sees."""
    trainer = build_trainer(load_recipe(recipe(tmp_path, logging_steps=4, nonfinite_loss="skip")))
    reads = loop_reads(train_counting(trainer))
    assert reads.count("__bool__ at arctic_like/trainer/trainer.py") == 16  # one per micro-batch
    assert reads.count("tolist at arctic_like/trainer/readback.py") == 2


class MetricsTrainer(CausalTrainer):
    """Adds metrics of its own in `loss`, through `self.metrics` (no read of their own)."""

    name = "metrics-probe"

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = super().loss(batch)
        self.metrics.add("double_loss", loss * 2)
        self.metrics.add("rows", batch["input_ids"].shape[0], reduce="sum")
        return loss


registry.unregister(MetricsTrainer)  # registered only while this module's tests run


@pytest.fixture(autouse=True, scope="module")
def _metrics_trainer() -> Iterator[None]:
    registry.register(MetricsTrainer)
    yield
    registry.unregister(MetricsTrainer)


def test_a_subclass_metrics_come_back_with_the_loss(tmp_path: Path) -> None:
    data = {"sources": [{"type": "addition", "digits": 1, "num_samples": 64, "eval_samples": 8}]}
    overrides = {"type": "metrics-probe", "logging_steps": 2, "eval_steps": 4, "data": data}
    trainer = build_trainer(load_recipe(recipe(tmp_path, **overrides)))
    trainer.data_factory.compute_metrics = lambda model, tokenizer: {}
    counter = train_counting(trainer)
    logged = [e for e in trainer.state.log_history if "loss" in e]
    assert len(logged) == 4
    for entry in logged:  # equal windows: the mean over micro-batches is the mean of the step means
        assert entry["double_loss"] == pytest.approx(2 * entry["loss"], rel=1e-6)
        assert entry["rows"] == 2 * 2 * 4  # 2 steps x 2 micro-batches x 4 rows
    evaluations = [e for e in trainer.state.log_history if "eval_loss" in e]
    assert [e["step"] for e in evaluations] == [4, 8]
    for entry in evaluations:
        assert entry["eval_double_loss"] == pytest.approx(2 * entry["eval_loss"], rel=1e-6)
    # 4 logs, one read each (the evaluations read once each, with their loss)
    assert loop_reads(counter).count("tolist at arctic_like/trainer/readback.py") == 4 + 2


def nan_at_step_4(trainer: Any, loss: torch.Tensor) -> torch.Tensor:
    return loss * float("nan") if trainer.state.global_step + 1 == 4 else loss


def test_stop_between_reads_names_the_step_and_saves_nothing_after_it(tmp_path: Path) -> None:
    """With logging_steps: 3 a NaN at step 4 is read back at the checkpoint of step 5 (the first read after
    it): the run fails there, naming step 4, and checkpoint-5 is not written."""
    overrides = {
        "logging_steps": 3,
        "gradient_accumulation_steps": 1,
        "checkpoint": [{"type": "torch", "save_every_n_steps": 5}],
        "callbacks": [],
        "progress": False,
    }
    trainer = build_trainer(load_recipe(recipe(tmp_path, **overrides)))
    trainer.callbacks.append(("post-loss", nan_at_step_4))
    message = (
        r"non-finite loss \(nan\) at optimizer step 4 \(epoch 0, micro-batch 4 of the epoch\)\. Fix: .*"
        r"it was found after step 5, and nothing was logged, evaluated or saved after it"
    )
    with pytest.raises(NonFiniteLossError, match=message):
        trainer.train()
    assert trainer.state.global_step == 5
    assert trainer.state.nonfinite_losses == 2  # steps 4 and 5 (trained on NaN weights)
    assert [e["step"] for e in trainer.state.log_history if "loss" in e] == [3]
    assert not (tmp_path / "out" / "checkpoints").exists()
