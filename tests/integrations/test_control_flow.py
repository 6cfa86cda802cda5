"""SkipStep, StopEpoch and StopTraining raised from HF-style callbacks do what their names say."""

import transformers

from arctic_like.trainer import SkipStep, StopEpoch, StopTraining


class Events(transformers.TrainerCallback):
    """Counts events and raises ``exc`` from ``event`` at ``step`` (the global step when it fires)."""

    def __init__(self, event, step, exc):
        self.event, self.step, self.exc = event, step, exc
        self.seen = []

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if not name.startswith("on_"):
            return attr

        def call(args, state, control, **kwargs):
            self.seen.append((name, state.global_step))
            if name == self.event and state.global_step == self.step and self.exc is not None:
                exc, self.exc = self.exc, None
                raise exc
            return attr(args, state, control, **kwargs)

        return call


def test_stop_training_from_on_step_end(make_trainer):
    trainer = make_trainer(epochs=2)
    cb = trainer.add_callback(Events("on_step_end", 2, StopTraining("enough")))
    trainer.train()
    assert trainer.state.global_step == 2
    names = [n for n, _ in cb.seen]
    assert names[-1] == "on_train_end" and "on_epoch_end" not in names  # the epoch was cut short


def test_stop_epoch_from_on_step_end(make_trainer):
    trainer = make_trainer(epochs=2)  # 8 optimizer steps per epoch
    cb = trainer.add_callback(Events("on_step_end", 3, StopEpoch()))
    trainer.train()
    assert trainer.state.global_step == 3 + 8
    assert [s for n, s in cb.seen if n == "on_epoch_begin"] == [0, 3]
    assert trainer.state.epoch == 2.0


def test_skip_step_from_on_step_begin_drops_the_micro_batch(make_trainer):
    trainer = make_trainer()  # one epoch, 8 micro-batches, no accumulation
    cb = trainer.add_callback(Events("on_step_begin", 4, SkipStep()))
    trainer.train()
    assert trainer.state.skipped_micro_batches == 1
    assert trainer.state.global_step == 7
    assert [n for n, s in cb.seen if s == 4].count("on_optimizer_step") == 1  # only the next window's


def test_skip_step_from_on_pre_optimizer_step_drops_the_update(make_trainer):
    trainer = make_trainer(gradient_accumulation_steps=2)  # 4 optimizer steps
    cb = trainer.add_callback(Events("on_pre_optimizer_step", 1, SkipStep()))
    trainer.train()
    assert trainer.state.skipped_optimizer_steps == 1
    assert trainer.state.global_step == 3
    assert [n for n, _ in cb.seen].count("on_step_end") == 3
