"""The DPO benchmark's smallest case still runs and prints every row (a smoke test; timings not asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_dpo_benchmark_quick_prints_its_tables():
    pytest.importorskip("trl")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "dpo.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = (
        "arctic_like copy",
        "trl copy",
        "arctic_like precomputed",
        "trl precomputed",
        "arctic_like / trl, copy",
        "arctic_like / trl, precomputed",
        "full fine-tuning",
        "LoRA r=8, all linear layers",
        "LoRA optimizer state:",
    )
    for row in rows:
        assert row in result.stdout, result.stdout
