"""Shared session-scoped runs: each framework trains the tiny model once with every harness callback."""

from __future__ import annotations

import pytest

from arctic_like.harness import LossLogger
from tests.harness.frameworks import Run, arctic_trainer, hf_trainer, lightning_trainer


@pytest.fixture(scope="session")
def hf_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("hf")
    run = Run(trainer=None, out=out, loss_logger=LossLogger(out / "loss.jsonl"))
    run.trainer = hf_trainer(run.callbacks, out)
    run.trainer.train()
    return run


@pytest.fixture(scope="session")
def lightning_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("lightning")
    run = Run(trainer=None, out=out, loss_logger=LossLogger(out / "loss.jsonl"))
    run.trainer, module = lightning_trainer(run.callbacks, out)
    run.trainer.fit(module)
    return run


@pytest.fixture(scope="session")
def arctic_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("arctic")
    run = Run(trainer=None, out=out, loss_logger=LossLogger(out / "loss.jsonl"))
    run.trainer = arctic_trainer(run.callbacks, out)
    run.trainer.train()
    return run
