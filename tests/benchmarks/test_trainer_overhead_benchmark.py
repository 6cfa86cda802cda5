"""`benchmarks/trainer_overhead.py --case null` keeps working: every loop runs the null model, is timed
between its own step marks, and gets a row (timings are not asserted)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_null_model_case_prints_a_row_per_loop(capsys: pytest.CaptureFixture[str]) -> None:
    module = sys.modules.get("benchmarks_trainer_overhead")
    if module is None:
        path = ROOT / "benchmarks" / "trainer_overhead.py"
        spec = importlib.util.spec_from_file_location("benchmarks_trainer_overhead", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["benchmarks_trainer_overhead"] = module
        spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        module.main(["--case", "null", "--steps", "30", "--warmup", "10", "--rounds", "1"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "null model (1 parameter), batch 4x8, steps 11-30 timed in windows of 10, 1 interleaved" in out
    assert re.search(r"^  hand +[\d.]+$", out, re.M), out
    span = r"[+-][\d.]+ \[[+-][\d.]+, [+-][\d.]+\]"
    for loop in ("arctic_like", "hf", "lightning"):
        assert re.search(rf"^  {loop} +[\d.]+ +{span} +{span}$", out, re.M), out
