"""The packing benchmark runs its smallest case and prints every row (timings are not asserted)."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_packing_benchmark_prints_its_table(capsys):
    spec = importlib.util.spec_from_file_location("packing_benchmark", ROOT / "benchmarks" / "packing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for row in ("padded (batch 8)", "packed (batch 8)", "num_proc: 1", "num_proc: 2", "speed-up"):
        assert row in out
    difference = float(re.search(r"loss per token differs by ([0-9.e+-]+)", out).group(1))
    assert difference < 1e-5  # packing changes the speed, never the loss
