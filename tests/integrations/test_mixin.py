"""HFCallbackSupport is a one-line addition to any CallbackMixin class; missing events are not bridged."""

import types

import transformers

from arctic_like.callback import CallbackMixin
from arctic_like.integrations.hf import HFCallbackSupport
from arctic_like.trainer import TrainerControl, TrainerState


class MiniTrainer(HFCallbackSupport, CallbackMixin):
    """Only train and step: no epochs, no evaluation, no accumulation flags."""

    def __init__(self, output_dir, callbacks=()):
        self.config = types.SimpleNamespace(output_dir=output_dir, callbacks=list(callbacks))
        self.state = TrainerState(max_steps=3)
        self.control = TrainerControl()

    def train(self):
        for batch in range(3):
            self.step(batch)

    def step(self, batch):
        self.state.global_step += 1


class Names(transformers.TrainerCallback):
    def __init__(self):
        self.names = []

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if not name.startswith("on_"):
            return attr

        def record(*args, **kwargs):
            self.names.append(name)
            return attr(*args, **kwargs)

        return record


def test_minimal_trainer_gets_the_events_it_has(tmp_path):
    trainer = MiniTrainer(tmp_path, callbacks=["tests.integrations.test_mixin.Names"])
    names = trainer.hf_callbacks[0]
    trainer.train()
    assert names.names == ["on_init_end", "on_train_begin", *["on_step_begin"] * 3, "on_train_end"]
    assert trainer.hf_args.output_dir == str(tmp_path)
    bridged = {e[0] for e in trainer.callbacks} - {"post-init"}  # post-init: the mixin's own method
    assert bridged == {"pre-train", "post-train", "pre-step", "post-step"}
