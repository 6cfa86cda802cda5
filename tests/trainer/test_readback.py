"""`ReadBack` and `DeviceMetrics`: device values queued without a transfer, read back together in one."""

from __future__ import annotations

import math

import pytest
import torch

from arctic_like.trainer import readback as readback_module
from arctic_like.trainer.readback import DeviceMetrics, ReadBack
from arctic_like.trainer.syncs import HostSyncCounter


def test_values_of_any_dtype_come_back_in_one_transfer_in_order() -> None:
    queue = ReadBack("cpu")
    half = torch.tensor([2.25], dtype=torch.bfloat16)
    values = [torch.tensor(1.5), torch.tensor(7), half, torch.tensor(True)]
    with HostSyncCounter() as syncs:
        readings = [queue.put(v) for v in values]
        assert len(queue) == 4 and not any(r.ready for r in readings) and syncs.calls == []
        assert queue.read() == readings
    assert [name for name, _ in syncs.calls] == ["tolist"]
    assert [r.mean for r in readings] == [1.5, 7.0, 2.25, 1.0]
    assert queue.reads == 1 and len(queue) == 0
    assert queue.read() == [] and queue.reads == 1  # nothing pending: no transfer


def test_a_value_cannot_be_used_before_it_is_read() -> None:
    reading = ReadBack("cpu").put(torch.tensor(3.0))
    with pytest.raises(RuntimeError, match=r"not been read back yet; call ReadBack.read\(\) first"):
        _ = reading.mean


def test_a_long_wait_between_reads_keeps_a_few_stacked_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readback_module, "COMPACT_AT", 8)
    queue = ReadBack("cpu")
    readings = [queue.put(torch.tensor(float(i))) for i in range(21)]
    group = next(iter(queue._groups.values()))
    assert len(group.packed) == 2 and len(group.loose) == 5
    queue.read()
    assert [r.mean for r in readings] == [float(i) for i in range(21)]


def test_values_of_several_processes_are_combined_per_value() -> None:
    reading = readback_module.Reading()
    reading.values = [1.0, 3.0]
    assert (reading.mean, reading.total) == (2.0, 4.0)


def test_metrics_are_means_or_sums_over_the_values_added_since_the_last_result() -> None:
    queue = ReadBack("cpu")
    metrics = DeviceMetrics(queue)
    for i in range(4):
        metrics.add("reward", torch.tensor(float(i)))
        metrics.add("pairs", 2, reduce="sum")
    loss = queue.put(torch.tensor(0.5))
    queue.read()  # the trainer's read brings the metrics back too
    assert loss.mean == 0.5 and queue.reads == 1
    assert metrics.result() == {"reward": 1.5, "pairs": 8.0}
    assert queue.reads == 1 and metrics.result() == {} and not metrics
    metrics.add("reward", torch.tensor(4.0))
    assert metrics.result() == {"reward": 4.0} and queue.reads == 2  # read back by result() itself


def test_a_metric_keeps_its_reduction() -> None:
    metrics = DeviceMetrics(ReadBack("cpu"))
    metrics.add("pairs", 1, reduce="sum")
    with pytest.raises(ValueError, match=r"metric 'pairs' was added with reduce='sum', now with 'mean'"):
        metrics.add("pairs", 1)
    with pytest.raises(ValueError, match=r"reduce must be 'mean' or 'sum', got 'max'"):
        metrics.add("other", 1, reduce="max")  # type: ignore[arg-type]
    assert math.isclose(metrics.result()["pairs"], 1.0)
