"""Smaller pieces: epoch strategies, signals, manual checkpoints, bf16 on CPU, the summary, batch skipping."""

import logging
import os
import signal

import pytest
import torch
from torch.utils.data import DataLoader

from arctic_like.trainer import skip_batches
from tests.trainer.helpers import build


def test_epoch_strategies(tmp_path):
    trainer = build(
        tmp_path,
        epochs=2,
        logging_strategy="epoch",
        eval_strategy="epoch",
        save_strategy="epoch",
        checkpoint=[{"type": "torch", "save_end_of_training": False}],
    )
    trainer.train()
    history = trainer.state.log_history
    assert [e["step"] for e in history if "loss" in e] == [4, 8]
    assert [e["epoch"] for e in history if "eval_loss" in e] == [1.0, 2.0]
    names = sorted(p.name for p in (tmp_path / "out" / "checkpoints").glob("checkpoint-*"))
    assert names == ["checkpoint-4", "checkpoint-8"]


def test_sigterm_finishes_the_step_saves_and_stops(tmp_path):
    trainer = build(tmp_path, epochs=3, checkpoint=[{"type": "torch", "save_end_of_training": False}])

    def interrupt(self):
        if self.state.global_step == 1 and self.accumulation_start:
            os.kill(os.getpid(), signal.SIGTERM)

    trainer.callbacks.append(("pre-step", interrupt))
    before = signal.getsignal(signal.SIGTERM)
    trainer.train()
    assert trainer.stop_signal == signal.SIGTERM
    assert trainer.state.global_step == 2  # the step in flight when the signal came was finished
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-2").is_dir()
    assert signal.getsignal(signal.SIGTERM) is before


def test_manual_checkpoint_and_summary(tmp_path, caplog):
    trainer = build(tmp_path, eval_steps=4, checkpoint=[{"type": "torch", "save_end_of_training": False}])
    with caplog.at_level(logging.INFO, logger="arctic_like.trainer"):
        metrics = trainer.train()
    assert trainer.checkpoint().name == "checkpoint-4"
    summary = trainer.summary(metrics)
    assert summary.startswith("training done: 4 steps in ")
    assert "evaluation at step 4: eval_loss=" in summary and "eval_accuracy=" in summary
    assert summary in caplog.text


def test_bf16_autocast_on_cpu_trains(tmp_path):
    trainer = build(tmp_path, precision="bf16", max_steps=2)
    dtypes = []
    trainer.callbacks.append(("post-loss", lambda self, loss: dtypes.append(loss.dtype) or loss))
    trainer.train()
    assert (
        trainer.state.global_step == 2 and dtypes and next(trainer.model.parameters()).dtype == torch.float32
    )


def test_skip_batches_uses_the_sampler():
    loader = DataLoader(list(range(10)), batch_size=2)
    assert [b.tolist() for b in skip_batches(loader, 3)] == [[6, 7], [8, 9]]
    assert len(skip_batches(loader, 3)) == 2
    assert skip_batches(loader, 0) is loader
    assert list(skip_batches(iter([1, 2, 3]), 2)) == [3]


def test_fp16_on_cpu_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"precision: fp16 needs a CUDA device"):
        build(tmp_path, precision="fp16")


def test_small_model_trains_on_one_cpu_thread(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    trainer = build(tmp_path, max_steps=1)
    torch.set_num_threads(2)
    seen = []
    trainer.callbacks.append(("pre-step", lambda self: seen.append(torch.get_num_threads())))
    trainer.train()
    assert seen == [1] and torch.get_num_threads() == 2

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    seen.clear()
    trainer = build(tmp_path, max_steps=1)
    trainer.callbacks.append(("pre-step", lambda self: seen.append(torch.get_num_threads())))
    trainer.train()
    assert seen == [2]


def test_stop_epoch_from_post_epoch_does_not_skip_an_epoch(tmp_path):
    from arctic_like.trainer import StopEpoch

    trainer = build(tmp_path, epochs=2)
    starts = []
    trainer.callbacks.append(("pre-epoch", lambda self: starts.append(self.epoch_idx)))

    def stop(self):
        raise StopEpoch

    trainer.callbacks.append(("post-epoch", stop))
    trainer.train()
    assert starts == [0, 1] and trainer.state.global_step == 8 and trainer.state.epoch == 2.0
