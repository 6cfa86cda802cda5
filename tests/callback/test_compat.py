"""ArcticTraining compatibility: `callback_wrapper`, module layout, and code written for its mixin."""

import abc

import pytest

from arctic_like.callback import CallbackMixin, callback_wrapper
from arctic_like.callback.mixin import CallbackMixin as FromMixinModule
from arctic_like.callback.wrapper import callback_wrapper as from_wrapper_module


def test_arctic_training_module_layout():
    assert FromMixinModule is CallbackMixin
    assert from_wrapper_module is callback_wrapper


def test_callback_wrapper_names_an_event_and_makes_private_methods_sources():
    log = []

    class T(CallbackMixin):
        @callback_wrapper("forward-pass")
        def _forward(self, x):
            return x + 1

        def run(self, x):
            return self._forward(x)

        def pre_forward_pass_callback(self, x):
            log.append(x)
            return x * 10

    assert T().run(1) == 11
    assert log == [1]


def test_callback_wrapper_under_abstractmethod_and_inherited_by_overrides():
    class Base(abc.ABC, CallbackMixin):
        @callback_wrapper("compute")
        @abc.abstractmethod
        def _impl(self, x): ...

    class Impl(Base):
        callbacks = [("post-compute", lambda self, r: r * 2)]

        def _impl(self, x):
            return x + 1

    with pytest.raises(TypeError, match="abstract"):
        Base()
    assert Impl()._impl(1) == 4


def test_callback_wrapper_needs_a_name():
    with pytest.raises(TypeError, match="needs an event name string"):
        callback_wrapper("")


def test_code_written_for_arctic_training_mixin():
    # Straight from the ArcticTraining callback docs, with only the import changed.
    output = []

    def pre_init_callback(self):
        output.append(f"{self.__class__.__name__} initializing")

    def pre_loss_callback_2(self, batch):
        output.append(f"Loss callback triggered with batch {batch}")
        return batch

    def post_loss_callback(self, return_value):
        output.append(f"Loss callback triggered with return value {return_value}")
        return return_value

    class Trainer(CallbackMixin):
        name = "my_trainer"
        callbacks = [("pre-init", pre_init_callback), ("pre-loss", pre_loss_callback_2)]

        def __init__(self):
            pass

        def loss(self, batch):
            return sum(batch)

        def pre_step_callback(self, batch):
            output.append(f"Step callback triggered with batch {batch}")
            return batch

        def step(self, batch):
            return self.loss(batch)

    trainer = Trainer()
    trainer.callbacks.append(("post-loss", post_loss_callback))
    assert trainer.step([1, 2]) == 3
    assert output == [
        "Trainer initializing",
        "Step callback triggered with batch [1, 2]",
        "Loss callback triggered with batch [1, 2]",
        "Loss callback triggered with return value 3",
    ]
