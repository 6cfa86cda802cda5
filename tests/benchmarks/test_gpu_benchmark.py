"""`benchmarks/gpu.py` keeps working: without a GPU it runs its smallest case (tiny model, torch engine) on
CPU; the same batches and initial weights give both loops the same first loss, and each reads device values
once per logging step (timings are not asserted)."""

from __future__ import annotations

import re

import pytest
import torch

from tests.benchmarks.loading import benchmark_module


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the full benchmark is the check")
def test_the_smallest_case_runs_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    with benchmark_module("gpu") as gpu:
        gpu.main(["--steps", "4", "--warmup", "2", "--logging-steps", "2", "--length", "16"])
    out = capsys.readouterr().out
    assert "on cpu (no GPU: the smallest case" in out
    pattern = r"^tiny +[\d.]+M torch +4x16 +(\d+) +(\d+) +([\d.]+) +([\d.]+)\+([\d.]+) +([\d.]+)\+"
    row = re.search(pattern, out, re.M)
    assert row is not None, out
    bare, arctic, ratio = float(row[1]), float(row[2]), float(row[3])
    assert bare > 0 and arctic > 0 and ratio == pytest.approx(arctic / bare, abs=1e-3)
    assert float(row[4]) == float(row[6]) == 0.5  # one read per logging step of 2, in both loops
    first = re.search(r"tiny/torch: first logged loss bare ([\d.]+), arctic_like ([\d.]+)", out)
    assert first is not None and first[1] == first[2]
    assert "arctic_like reads in the counted steps: " in out and "readback.py" in out
