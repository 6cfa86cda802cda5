"""The dispatch benchmark still runs and prints every row (a smoke test; timings are not asserted)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dispatch_benchmark_prints_its_table():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "dispatch.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = ("plain method", "mixin, 0 callbacks", "floor, k=20", "mixin, 20 at runtime", "super() call")
    for row in rows:
        assert row in result.stdout
