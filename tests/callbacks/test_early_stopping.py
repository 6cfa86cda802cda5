"""EarlyStopping: patience, threshold, mode, metric errors, state."""

import pytest

from arctic_like.callback import run_first
from arctic_like.callbacks import EarlyStopping


def test_stops_after_patience_without_improvement(make_trainer):
    trainer = make_trainer(max_steps=6, eval_steps=1)
    trainer.callbacks.append(
        ("post-evaluate", run_first(lambda self, metrics: {**metrics, "eval_loss": 1.0}))
    )
    cb = trainer.add_callback(EarlyStopping(patience=2))
    trainer.train()
    assert trainer.state.global_step == 3 and cb.stopped_at == 3
    assert cb.bad_evaluations == 2


def test_keeps_going_while_improving(make_trainer):
    trainer = make_trainer(max_steps=6, eval_steps=2, lr=0.05)
    cb = trainer.add_callback(EarlyStopping(patience=1, mode="min"))
    trainer.train()
    assert trainer.state.global_step == 6 and cb.stopped_at is None


def test_threshold_and_max_mode():
    class S:
        global_step = 1

    class C:
        should_training_stop = False

    cb = EarlyStopping(metric="accuracy", mode="max", patience=1, threshold=0.1)
    cb.on_evaluate(None, S(), C(), metrics={"eval_accuracy": 0.5})
    control = C()
    cb.on_evaluate(None, S(), control, metrics={"eval_accuracy": 0.55})  # not better by > 0.1
    assert control.should_training_stop and cb.best == 0.5


def test_missing_metric_names_the_available_ones(make_trainer):
    trainer = make_trainer(max_steps=2, eval_steps=1)
    trainer.add_callback(EarlyStopping(metric="bleu"))
    with pytest.raises(
        ValueError,
        match=r"'bleu' is not among the evaluation metrics \['epoch', 'eval_accuracy', 'eval_loss', 'eval_",
    ):
        trainer.train()


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        EarlyStopping(mode="lowest")
    with pytest.raises(ValueError, match="patience must be at least 1"):
        EarlyStopping(patience=0)


def test_state_dict_round_trip():
    cb = EarlyStopping()
    cb.best, cb.bad_evaluations = 0.25, 2
    other = EarlyStopping()
    other.load_state_dict(cb.state_dict())
    assert (other.best, other.bad_evaluations) == (0.25, 2)
