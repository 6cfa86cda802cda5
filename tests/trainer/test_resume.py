"""Exact resume: an interrupted run continued from its checkpoint gives the uninterrupted run's losses."""

from tests.trainer.helpers import build, losses

RUN = {
    "micro_batch_size": 2,
    "gradient_accumulation_steps": 2,
    "epochs": 2,
    "save_steps": 3,
    "optimizer": {"lr": 3e-3},
    "scheduler": {"type": "cosine", "warmup_steps": 2},
}


def test_resume_continues_bit_exact(tmp_path):
    # 16 problems / micro-batch 2 = 8 micro-batches = 4 optimizer steps per epoch, 8 steps in all.
    full = build(tmp_path / "full", **RUN)
    full.train()
    reference = losses(full)
    assert len(reference) == 8

    ckpt = {"checkpoint": [{"type": "torch", "auto_resume": True, "save_end_of_training": False}]}
    first = build(tmp_path / "resumed", exit_iteration=3, **RUN, **ckpt)
    first.train()
    assert first.state.global_step == 3 and losses(first) == reference[:3]
    assert first.batches_in_epoch == 6

    second = build(tmp_path / "resumed", **RUN, **ckpt)
    assert second.state.global_step == 3 and second.batches_in_epoch == 6 and second.epoch_idx == 0
    second.train()
    assert second.state.global_step == 8
    assert losses(second) == reference  # log_history restored, then steps 4..8 bit-exact
