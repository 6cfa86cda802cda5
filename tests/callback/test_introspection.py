"""Seeing the chain: `obj.callbacks`, `describe_callbacks()`, and the debug log at post-init."""

import logging

from arctic_like.callback import CallbackMixin


def clip(self, batch):
    return batch


class Trainer(CallbackMixin):
    callbacks = [("pre-step", clip)]

    def __init__(self):
        self.steps = 0

    def step(self, batch):
        return batch

    def post_step_callback(self, out):
        return out


def test_describe_callbacks_table():
    trainer = Trainer()
    trainer.callbacks.append(("pre-step", clip))
    lines = trainer.describe_callbacks().splitlines()
    assert lines[0] == "Trainer (run order within each event):"
    assert lines[1].split() == ["event", "#", "callback", "declared", "in"]
    assert lines[2].split() == ["pre-step", "1", f"{__name__}.clip", "Trainer.callbacks"]
    assert lines[3].split() == ["pre-step", "2", f"{__name__}.clip", "runtime"]
    assert lines[4].split() == [
        "post-step",
        "1",
        f"{__name__}.Trainer.post_step_callback",
        "Trainer.post_step_callback",
    ]


def test_describe_without_callbacks():
    class Empty(CallbackMixin):
        def step(self):
            pass

    assert Empty().describe_callbacks() == "Empty: no callbacks"


def test_chain_is_logged_at_post_init_only_with_debug_logging(caplog):
    with caplog.at_level(logging.INFO, logger="arctic_like"):
        Trainer()
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG, logger="arctic_like"):
        Trainer()
    assert "pre-step" in caplog.text and "Trainer.callbacks" in caplog.text
