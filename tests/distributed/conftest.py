"""Shared runs of the distributed tests: the single-process reference every 2-process run is compared with."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.distributed.launch import Result, run, run_env, single_command, tiny_recipe, write_recipe

REFERENCE_MICRO_BATCH = 2
"""The single process takes 2 samples per step; two processes take 1 each (the same global batch)."""


class Reference:
    """A finished single-process run: its directory, probe records and process result."""

    def __init__(self, root: Path, result: Result) -> None:
        self.root = root
        self.probe = root / "probe"
        self.result = result


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
