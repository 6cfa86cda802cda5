"""Golden event trace: every trainer event over a 2-epoch run with accumulation 2, evaluation and saving."""

from tests.trainer.helpers import build

MICRO = ["pre-step", "pre-loss", "post-loss", "pre-backward", "post-backward"]
FIRST_MICRO = [*MICRO, "post-step"]
LAST_MICRO = [*MICRO, "pre-optimizer-step", "post-optimizer-step", "post-step"]
LOG = ["pre-log", "post-log"]
PREDICT = ["pre-prediction-step", "pre-loss", "post-loss", "post-prediction-step"]
EVALUATE = ["pre-evaluate", *PREDICT, *PREDICT, *LOG, "post-evaluate"]
SAVE = ["pre-checkpoint", "post-checkpoint"]

# 16 problems, micro-batch 4 -> 4 micro-batches per epoch -> 2 optimizer steps per epoch, 4 in all.
# logging every step, evaluation every 2 steps (2 eval batches), a checkpoint at step 3 and at the end.
EXPECTED = [
    "pre-init",
    "post-init",
    "pre-train",
    "pre-epoch",
    *FIRST_MICRO, *LAST_MICRO, *LOG,                 # step 1
    *FIRST_MICRO, *LAST_MICRO, *LOG, *EVALUATE,      # step 2
    "post-epoch",
    "pre-epoch",
    *FIRST_MICRO, *LAST_MICRO, *LOG, *SAVE,          # step 3
    *FIRST_MICRO, *LAST_MICRO, *LOG, *EVALUATE, *SAVE,  # step 4 (max_steps: evaluate and save)
    "post-epoch",
    *LOG,                                            # the train_* summary
    "post-train",
]  # fmt: skip


def test_golden_event_trace(tmp_path, recording_trainer_type):
    trainer = build(
        tmp_path,
        trainer_type=recording_trainer_type,
        epochs=2,
        gradient_accumulation_steps=2,
        eval_steps=2,
        save_steps=3,
        checkpoint=[{"type": "torch"}],
    )
    trainer.train()
    assert trainer.trace == EXPECTED
    assert trainer.state.global_step == 4 and trainer.state.epoch == 2.0
    assert trainer.state.micro_step == 8
    saved = sorted(p.name for p in (tmp_path / "out" / "checkpoints").glob("checkpoint-*"))
    assert saved == ["checkpoint-3", "checkpoint-4"]
