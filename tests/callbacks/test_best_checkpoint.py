"""BestCheckpoint keeps the best N checkpoints (and the latest) and deletes the rest atomically."""

import pytest

from arctic_like.callback import run_first
from arctic_like.callbacks import BestCheckpoint


def _dirs(root):
    return sorted(p.name for p in root.iterdir() if p.name.startswith("checkpoint-"))


def test_keeps_best_and_latest(make_trainer, tmp_path):
    trainer = make_trainer(max_steps=4, eval_steps=1, save_steps=1)
    values = iter([3.0, 1.0, 2.0, 4.0])
    trainer.callbacks.append(("post-evaluate", run_first(lambda self, metrics: {"eval_loss": next(values)})))
    cb = trainer.add_callback(BestCheckpoint(keep=1))
    trainer.train()
    assert _dirs(tmp_path / "out" / "checkpoints") == [
        "checkpoint-2",
        "checkpoint-4",
    ]  # best (1.0) and latest
    assert trainer.state.best_metric == 1.0
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-2")
    assert cb.best == [str(tmp_path / "out" / "checkpoints" / "checkpoint-2")]
    assert not list((tmp_path / "out" / "checkpoints").glob(".*deleting"))


def test_max_mode_keep_two(make_trainer, tmp_path):
    trainer = make_trainer(max_steps=4, eval_steps=1, save_steps=1)
    values = iter([0.1, 0.9, 0.5, 0.2])
    trainer.callbacks.append(("post-evaluate", run_first(lambda self, metrics: {"eval_acc": next(values)})))
    trainer.add_callback(BestCheckpoint(metric="acc", mode="max", keep=2))
    trainer.train()
    assert _dirs(tmp_path / "out" / "checkpoints") == ["checkpoint-2", "checkpoint-3", "checkpoint-4"]


def test_unknown_metric_and_bad_arguments(make_trainer):
    trainer = make_trainer(max_steps=1, eval_steps=1)
    trainer.add_callback(BestCheckpoint(metric="bleu"))
    with pytest.raises(ValueError, match=r"'bleu' is not among the evaluation metrics"):
        trainer.train()
    with pytest.raises(ValueError, match="keep must be at least 1"):
        BestCheckpoint(keep=0)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        BestCheckpoint(mode="up")


def test_state_round_trip_drops_missing_dirs(tmp_path):
    (tmp_path / "checkpoint-1").mkdir()
    cb = BestCheckpoint()
    cb.checkpoints = [
        {"path": str(tmp_path / "checkpoint-1"), "step": 1, "value": 0.5},
        {"path": str(tmp_path / "checkpoint-9"), "step": 9, "value": 0.1},
    ]
    other = BestCheckpoint()
    other.load_state_dict(cb.state_dict())
    assert [c["step"] for c in other.checkpoints] == [1]


def test_leaves_the_best_model_to_the_trainer_when_the_recipe_tracks_one(make_trainer, tmp_path):
    trainer = make_trainer(max_steps=4, eval_steps=1, save_steps=1, metric_for_best_model="eval_loss")
    losses, accuracies = iter([3.0, 1.0, 2.0, 4.0]), iter([0.1, 0.2, 0.9, 0.3])
    trainer.callbacks.append(
        (
            "post-evaluate",
            run_first(lambda self, metrics: {"eval_loss": next(losses), "eval_acc": next(accuracies)}),
        )
    )
    trainer.add_callback(BestCheckpoint(metric="acc", mode="max", keep=1))
    trainer.train()
    state = trainer.state
    assert (state.best_metric, state.best_global_step) == (1.0, 2)  # by eval_loss, the recipe's metric
    assert state.best_model_checkpoint.endswith("checkpoint-2")
    # BestCheckpoint keeps its own best (step 3), the newest, and never deletes the trainer's best
    assert _dirs(tmp_path / "out" / "checkpoints") == ["checkpoint-2", "checkpoint-3", "checkpoint-4"]
