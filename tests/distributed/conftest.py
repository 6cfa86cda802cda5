"""Shared runs of the distributed tests: the single-process reference every 2-process run is compared with,
and the single-process DeepSpeed runs (offload, bf16, activation checkpointing) of single_process_runs.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.distributed.launch import (
    REPO,
    Result,
    ensure_deepspeed_ops,
    finish,
    launched,
    run,
    run_env,
    single_command,
    tiny_recipe,
    write_recipe,
)

REFERENCE_MICRO_BATCH = 2
"""The single process takes 2 samples per step; two processes take 1 each (the same global batch)."""


class Reference:
    """A finished single-process run: its directory, probe records and process result."""

    def __init__(self, root: Path, result: Result) -> None:
        self.root = root
        self.probe = root / "probe"
        self.result = result


@pytest.fixture(scope="session")
def deepspeed_ops() -> None:
    """DeepSpeed's C++ ops compiled for this environment before any DeepSpeed run is launched."""
    ensure_deepspeed_ops()


@pytest.fixture(scope="session")
def single_process_run(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """`arctic-like train` in one process, torch engine, micro_batch_size 2, 6 steps."""
    root = tmp_path_factory.mktemp("single")
    recipe = write_recipe(
        root / "recipe.yaml", tiny_recipe(root / "out", micro_batch_size=REFERENCE_MICRO_BATCH)
    )
    result = run(single_command(recipe), run_env(root / "probe"), root)
    assert result.returncode == 0, result.output[-4000:]
    return Reference(root, result)


class DeepSpeedRuns:
    """The started ``single_process_runs`` process; ``results()`` waits for it and reads what it recorded."""

    def __init__(self, root: Path, proc: Any) -> None:
        self.root = root
        self._proc = proc
        self._results: dict[str, dict[str, Any]] | None = None

    def results(self) -> dict[str, dict[str, Any]]:
        if self._results is None:
            result = finish(self._proc)
            assert result.returncode == 0, result.output[-4000:]
            self._results = json.loads((self.root / "results.json").read_text(encoding="utf-8"))
        return self._results


@pytest.fixture(scope="session")
def deepspeed_single_process(tmp_path_factory: pytest.TempPathFactory, deepspeed_ops: None) -> Any:
    """Start the single-process DeepSpeed runs in the background (other runs may start beside them); the
    tests call ``.results()``."""
    root = tmp_path_factory.mktemp("ds-single")
    command = [sys.executable, "-m", "tests.distributed.single_process_runs", str(root)]
    with launched(command, run_env(root / "probe"), REPO) as proc:
        yield DeepSpeedRuns(root, proc)
