"""The engine's prefetcher: batches one ahead, in order, moved to the device; on CPU the loader as it is."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from arctic_like.engine import TorchEngine
from arctic_like.engine.prefetch import Prefetcher, move_batch
from tests.trainer.helpers import build, losses


class Loader:
    """An iterable that records which batches were taken and when its iterator was made."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.taken: list[int] = []
        self.iterators = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.iterators += 1  # made when iter() is called, as a DataLoader's iterator is
        return self._batches()

    def _batches(self) -> Iterator[dict[str, Any]]:
        for i in range(self.n):
            self.taken.append(i)
            yield {"input_ids": torch.full((2, 3), i), "meta": [torch.tensor(i), "text"], "n": i}


def test_batches_come_in_order_with_the_next_one_already_taken() -> None:
    loader = Loader(3)
    batches = Prefetcher(loader, torch.device("cpu"))
    assert loader.iterators == 1 and loader.taken == []  # iter(loader) at once, nothing taken yet
    first = next(batches)
    assert first["n"] == 0 and loader.taken == [0, 1]  # batch 1 was taken (and moved) before batch 0 is used
    assert [b["n"] for b in batches] == [1, 2]
    assert torch.equal(first["input_ids"], torch.zeros(2, 3, dtype=torch.long))
    assert first["meta"][1] == "text" and torch.equal(first["meta"][0], torch.tensor(0))
    with pytest.raises(StopIteration):
        next(batches)
    assert list(Prefetcher([], torch.device("cpu"))) == []


def test_move_batch_reaches_nested_tensors() -> None:
    batch = {"a": torch.ones(2), "b": (torch.zeros(1), [torch.ones(1)]), "c": 3}
    moved = move_batch(batch, torch.device("meta"))
    assert moved["a"].device.type == "meta" and moved["b"][0].device.type == "meta"
    assert isinstance(moved["b"], tuple) and moved["b"][1][0].device.type == "meta" and moved["c"] == 3


def test_on_cpu_the_engine_gives_the_loader_as_it_is() -> None:
    config = SimpleNamespace(gradient_accumulation_steps=1, precision="fp32")
    engine = TorchEngine(SimpleNamespace(config=config, device=torch.device("cpu")))
    assert not isinstance(engine.prefetch([1, 2]), Prefetcher)
    assert list(engine.prefetch([1, 2])) == [1, 2]


def test_training_with_the_prefetcher_is_the_same_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forced on CPU: loading one batch ahead changes no loss, also when a resumed epoch starts mid-way."""
    run = {"micro_batch_size": 2, "gradient_accumulation_steps": 2, "epochs": 2, "save_steps": 3}
    reference = build(tmp_path / "plain", **run)
    reference.train()
    monkeypatch.setattr(TorchEngine, "prefetch", lambda self, batches: Prefetcher(batches, self.device))
    ckpt = {"checkpoint": [{"type": "torch", "auto_resume": True, "save_end_of_training": False}]}
    first = build(tmp_path / "ahead", exit_iteration=3, **run, **ckpt)
    first.train()
    second = build(tmp_path / "ahead", **run, **ckpt)
    second.train()
    assert losses(second) == losses(reference) and len(losses(reference)) == 8
