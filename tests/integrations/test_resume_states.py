"""Stateful callbacks (HF ExportableState and ours) are saved with checkpoints and restored on resume."""

import torch
import transformers

from arctic_like.callback import run_first
from arctic_like.callbacks import BestCheckpoint, EarlyStopping
from tests.integrations.recipe import build

CALLBACKS = [
    {"path": "transformers.EarlyStoppingCallback", "kwargs": {"early_stopping_patience": 10}},
    {"path": "arctic_like.callbacks.EarlyStopping", "kwargs": {"patience": 10}},
    {"path": "arctic_like.callbacks.BestCheckpoint", "kwargs": {"keep": 2}},
]


def _of(trainer, cls):
    return next(cb for cb in trainer.hf_callbacks if isinstance(cb, cls))


def test_recipe_callbacks_get_their_state_back_on_auto_resume(tmp_path):
    recipe = {
        "eval_steps": 1,
        "save_steps": 2,
        "metric_for_best_model": "eval_loss",
        "checkpoint": [{"type": "torch", "auto_resume": True}],
        "callbacks": CALLBACKS,
    }
    first = build(tmp_path, max_steps=3, **recipe)
    first.add_callback(transformers.TrainerCallback())  # stateless ones do not matter
    first.callbacks.append(("post-evaluate", run_first(lambda self, metrics: {**metrics, "eval_loss": 2.0})))
    first.train()
    saved = torch.load(
        tmp_path / "out" / "checkpoints" / "checkpoint-3" / "callback_states.pt", weights_only=False
    )
    assert saved["EarlyStoppingCallback"]["attributes"]["early_stopping_patience_counter"] == 2
    assert saved["EarlyStopping"] == {"best": 2.0, "bad_evaluations": 2}

    second = build(tmp_path, max_steps=5, **recipe)
    assert second.state.global_step == 3
    assert _of(second, transformers.EarlyStoppingCallback).early_stopping_patience_counter == 2
    ours = _of(second, EarlyStopping)
    assert (ours.best, ours.bad_evaluations) == (2.0, 2)
    assert [c["step"] for c in _of(second, BestCheckpoint).checkpoints] == [2]
    second.callbacks.append(("post-evaluate", run_first(lambda self, metrics: {**metrics, "eval_loss": 2.0})))
    second.train()
    assert (ours.best, ours.bad_evaluations) == (2.0, 4)
