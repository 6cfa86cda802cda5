"""Golden event trace: a recording callback on every event of a small loop, the exact order asserted."""

import pytest

from arctic_like.callback import CallbackMixin


class MiniTrainer(CallbackMixin):
    def __init__(self, batches):
        self.batches = batches

    def train(self):
        for _ in range(2):
            self.epoch()

    def epoch(self):
        for batch in self.batches:
            self.step(batch)

    def step(self, batch):
        return self.loss(batch) * 2

    def loss(self, batch):
        if batch < 0:
            raise ValueError("negative batch")
        return batch


def recorder(trace, event):
    def record(self):
        trace.append(event)

    return record


def attach_everywhere(obj, trace):
    for event in ("train", "epoch", "step", "loss"):
        for phase in ("pre", "post", "error"):
            obj.callbacks.append((f"{phase}-{event}", recorder(trace, f"{phase}-{event}")))


def test_golden_trace_of_nested_calls():
    trace = []
    trainer = MiniTrainer([1, 2])
    attach_everywhere(trainer, trace)
    trainer.train()
    one_step = ["pre-step", "pre-loss", "post-loss", "post-step"]
    one_epoch = ["pre-epoch", *one_step, *one_step, "post-epoch"]
    assert trace == ["pre-train", *one_epoch, *one_epoch, "post-train"]


def test_golden_trace_when_the_innermost_method_raises():
    trace = []
    trainer = MiniTrainer([1, -1])
    attach_everywhere(trainer, trace)
    with pytest.raises(ValueError, match="negative batch"):
        trainer.train()
    assert trace == [
        "pre-train",
        "pre-epoch",
        "pre-step",
        "pre-loss",
        "post-loss",
        "post-step",
        "pre-step",
        "pre-loss",
        "error-loss",
        "error-step",
        "error-epoch",
        "error-train",
    ]
