"""Throughput, step time, memory and MFU in the trainer's logs: exact counts, no device reads per batch."""

import types

import pytest
import torch

from arctic_like.trainer import throughput
from arctic_like.trainer.readback import ReadBack
from arctic_like.trainer.throughput import Throughput, batch_size_and_tokens, flops_per_token, peak_flops
from tests.integrations.recipe import build

TRAIN_KEYS = {
    "loss",
    "grad_norm",
    "learning_rate",
    "tokens_per_second",
    "samples_per_second",
    "step_time",
    "peak_memory_gib",
    "epoch",
    "step",
}


def test_tokens_come_from_the_cpu_mask_and_never_from_device_values():
    ids = torch.ones(3, 5, dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    assert batch_size_and_tokens({"input_ids": ids, "attention_mask": mask}) == (3, 9)
    assert batch_size_and_tokens({"input_ids": ids}) == (3, 15)
    on_device = {"input_ids": ids.to("meta"), "attention_mask": mask.to("meta")}  # unreadable values
    assert batch_size_and_tokens(on_device) == (3, 15)
    assert batch_size_and_tokens([1, 2]) == (0, 0)


def test_logged_rates_add_up_to_the_tokens_and_samples_trained_on(tmp_path):
    trainer = build(tmp_path, max_steps=8, logging_steps=4, eval_steps=4)
    tokens = sum(int(b["attention_mask"].sum()) for b in trainer.train_dataloader)
    eval_samples = sum(len(b["input_ids"]) for b in trainer.eval_dataloader)
    metrics = trainer.train()
    history = trainer.state.log_history
    train_logs = [e for e in history if "loss" in e]
    assert [e["step"] for e in train_logs] == [4, 8]
    assert all(set(e) == TRAIN_KEYS for e in train_logs)  # on CPU: no MFU
    seconds = [e["step_time"] * 4 for e in train_logs]
    assert sum(e["tokens_per_second"] * s for e, s in zip(train_logs, seconds, strict=True)) == pytest.approx(
        tokens
    )
    assert [e["samples_per_second"] * s for e, s in zip(train_logs, seconds, strict=True)] == pytest.approx(
        [8, 8]
    )
    assert all(0 < e["peak_memory_gib"] < 64 for e in train_logs)
    evaluations = [e for e in history if "eval_loss" in e]
    assert [e["step"] for e in evaluations] == [4, 8]
    for e in evaluations:
        assert e["eval_samples_per_second"] * e["eval_runtime"] == pytest.approx(eval_samples)
        assert e["eval_tokens_per_second"] > 0 and e["eval_steps_per_second"] > 0
    assert metrics["train_tokens_per_second"] * metrics["train_runtime"] == pytest.approx(tokens)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now


def test_evaluation_and_checkpoint_time_is_left_out(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(throughput, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    meter = Throughput(types.SimpleNamespace(device="cpu", world_size=1, model=None))
    meter.count({"input_ids": torch.ones(4, 10, dtype=torch.long)})
    clock.now += 2.0
    with meter.paused():
        clock.now += 30.0
    logs = meter.window(steps=1)
    assert logs["step_time"] == 2.0
    assert logs["tokens_per_second"] == 20.0 and logs["samples_per_second"] == 2.0
    assert "mfu" not in logs


def test_masked_tokens_of_many_batches_are_summed_once_per_window(monkeypatch):
    """Masks are summed at the window's end (in groups, to bound what they keep alive), not per batch."""
    clock = _Clock()
    monkeypatch.setattr(throughput, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    meter = Throughput(types.SimpleNamespace(device="cpu", world_size=1, model=None))
    generator = torch.Generator().manual_seed(0)
    count = 2 * throughput.MASKS_SUMMED_AT + 3
    masks = [torch.randint(0, 2, (2, 5), generator=generator) for _ in range(count)]
    for mask in masks:
        meter.count({"input_ids": torch.ones(2, 5, dtype=torch.long), "attention_mask": mask})
    assert len(meter._masks) == 3 and len(meter._mask_sums) == 2  # two groups summed, three kept
    meter.count({"input_ids": torch.ones(1, 7, dtype=torch.long)})  # no mask: its ids count
    clock.now += 1.0
    logs = meter.window(steps=1)
    assert logs["tokens_per_second"] == sum(int(m.sum()) for m in masks) + 7
    assert logs["samples_per_second"] == 2 * len(masks) + 1


def test_mfu_where_the_gpu_and_the_model_flops_are_known(monkeypatch, tmp_path):
    model = build(tmp_path, max_steps=1).model
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 3 * 2**30)
    config = types.SimpleNamespace(precision="bf16")
    trainer = types.SimpleNamespace(
        device="cuda", world_size=2, model=model, config=config, readback=ReadBack("cpu", world_size=1)
    )
    meter = Throughput(trainer)
    meter.count({"input_ids": torch.ones(8, 128, dtype=torch.long)})
    logs = meter.window(steps=1)
    per_token = 6 * model.num_parameters(exclude_embeddings=True)
    assert flops_per_token(model) == per_token
    assert logs["peak_memory_gib"] == 3.0
    assert logs["mfu"] == pytest.approx(per_token * logs["tokens_per_second"] / (989e12 * 2))
    assert peak_flops("NVIDIA H100 PCIe", "fp32") == 51e12
    assert peak_flops("NVIDIA A100-SXM4-80GB", "bf16") == 312e12
    assert peak_flops("Some Future GPU", "bf16") is None and flops_per_token(torch.nn.Linear(2, 2)) is None
