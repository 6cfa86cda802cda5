"""Shared session-scoped runs: each framework trains the tiny model once with every harness callback."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from arctic_like.harness import GradNormMonitor, LossLogger, NaNGuard, StepTimer
from tests.harness.frameworks import Trace, arctic_trainer, hf_trainer, lightning_trainer


@dataclass
class Run:
    """One training run and the harness callbacks it drove."""

    trainer: Any
    out: Path
    trace: Trace = field(default_factory=Trace)
    loss_logger: LossLogger | None = None
    grad_norm: GradNormMonitor = field(default_factory=GradNormMonitor)
    timer: StepTimer = field(default_factory=StepTimer)
    nan_guard: NaNGuard = field(default_factory=NaNGuard)

    @property
    def callbacks(self) -> list[Any]:
        return [self.trace, self.loss_logger, self.grad_norm, self.timer, self.nan_guard]


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
