"""GradNormMonitor, TextSamples and LossPlot."""

import json
import logging
import math

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from arctic_like.callbacks import (
    GradNormMonitor,
    JsonLogger,
    LossPlot,
    PrinterCallback,
    TensorBoardLogger,
    TextSamples,
)


def test_grad_norms_are_added_to_the_logs(make_trainer):
    trainer = make_trainer(max_steps=2, logging_steps=1)
    cb = trainer.add_callback(GradNormMonitor(layers=[r"layers\.0\.mlp\.down_proj"]))
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2
    for entry in logs:
        assert entry["grad_norm/total"] > 0
        assert entry["grad_norm/min"] <= entry["grad_norm/mean"] <= entry["grad_norm/max"]
        assert "grad_norm/model.layers.0.mlp.down_proj.weight" in entry
    expected = math.sqrt(sum(v**2 for k, v in cb.last.items() if k.startswith("grad_norm/model")))
    assert expected <= cb.last["grad_norm/total"]


def test_grad_norm_warns_on_nan_and_explosion(caplog):
    model = torch.nn.Linear(2, 2)
    model.weight.grad = torch.full((2, 2), float("nan"))
    model.bias.grad = torch.ones(2)

    class S:
        global_step = 0

    cb = GradNormMonitor(max_norm=1.0)
    with caplog.at_level(logging.WARNING, logger="arctic_like"):
        cb.on_pre_optimizer_step(None, S(), None, model=model)
        model.weight.grad = torch.full((2, 2), 5.0)
        cb.on_pre_optimizer_step(None, S(), None, model=model)
    assert "non-finite gradient norm" in caplog.text and "exploding gradient norm" in caplog.text
    assert cb.warnings == 2


def test_grad_norm_removed_hook_on_pop(make_trainer):
    trainer = make_trainer()
    trainer.add_callback(PrinterCallback())  # installs the HF bridge
    before = list(trainer.callbacks)
    cb = trainer.add_callback(GradNormMonitor())
    assert len(trainer.callbacks) == len(before) + 1
    trainer.pop_callback(cb)
    assert list(trainer.callbacks) == before


def test_text_samples_generate_and_log(make_trainer, tmp_path):
    trainer = make_trainer(max_steps=4, logging_steps=2)
    trainer.add_callback(JsonLogger())
    trainer.add_callback(TensorBoardLogger())
    cb = trainer.add_callback(
        TextSamples(["ab", "1+2="], every_n_steps=2, generation_config={"max_new_tokens": 3})
    )
    trainer.train()
    assert [s["step"] for s in cb.samples] == [2, 4]  # at the end too, but not twice for step 4
    assert all(len(s["samples"]) == 2 and isinstance(s["samples"][0]["completion"], str) for s in cb.samples)
    lines = [json.loads(x) for x in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    assert [x["global_step"] for x in lines if x["event"] == "text_samples"] == [2, 4]
    acc = EventAccumulator(str(tmp_path / "out" / "tensorboard"))
    acc.Reload()
    assert "samples/text_summary" in acc.Tags()["tensors"]
    assert trainer.model.training


def test_text_samples_frame_prompts_as_training_did(make_trainer):
    """A tokenizer that adds <s> (the char tokenizer does) sees it before the prompt, and no EOS after it."""
    trainer = make_trainer(max_steps=1)
    tokenizer = trainer.tokenizer
    seen = []

    class Recording(torch.nn.Module):
        training = False

        def parameters(self):
            return iter([torch.zeros(1)])

        def eval(self):
            return self

        def train(self, mode=True):
            return self

        def generate(self, input_ids, attention_mask, **config):
            seen.append(input_ids[0].tolist())
            return torch.cat([input_ids, input_ids[:, -1:]], dim=1)

    completions = TextSamples(["1+2="]).generate(Recording(), tokenizer)
    plain = tokenizer("1+2=", add_special_tokens=False)["input_ids"]
    assert seen == [[tokenizer.bos_token_id, *plain]]
    assert completions == [tokenizer.decode(plain[-1:])]


def test_text_samples_needs_prompts():
    import pytest

    with pytest.raises(ValueError, match="at least one prompt"):
        TextSamples([])


def test_loss_plot_writes_png(make_trainer, tmp_path):
    trainer = make_trainer(max_steps=4, eval_steps=2, logging_steps=1)
    cb = trainer.add_callback(LossPlot())
    trainer.train()
    png = tmp_path / "out" / "loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [s for s, _ in cb.train] == [1, 2, 3, 4] and [s for s, _ in cb.eval] == [2, 4]
    assert not list(png.parent.glob(".loss.*"))
