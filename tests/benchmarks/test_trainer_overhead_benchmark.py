"""`benchmarks/trainer_overhead.py --case null` keeps working: every loop runs the null model, is timed
between its own step marks, and gets a row (timings are not asserted)."""

from __future__ import annotations

import re

import pytest

from tests.benchmarks.loading import benchmark_module


@pytest.mark.slow
def test_the_null_model_case_prints_a_row_per_loop(capsys: pytest.CaptureFixture[str]) -> None:
    with benchmark_module("trainer_overhead") as overhead:
        overhead.main(["--case", "null", "--steps", "30", "--warmup", "10", "--rounds", "1"])
    out = capsys.readouterr().out
    assert "null model (1 parameter), batch 4x8, steps 11-30 timed in windows of 10, 1 interleaved" in out
    assert re.search(r"^  hand +[\d.]+$", out, re.M), out
    span = r"[+-][\d.]+ \[[+-][\d.]+, [+-][\d.]+\]"
    for loop in ("arctic_like", "hf", "lightning"):
        assert re.search(rf"^  {loop} +[\d.]+ +{span} +{span}$", out, re.M), out
