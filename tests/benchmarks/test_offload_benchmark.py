"""benchmarks/offload.py still runs its smallest case; benchmarks/zero_memory.py counts and orders right."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.distributed.launch import TORCH_EXTENSIONS_DIR, ensure_deepspeed_ops

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


zero_memory = _load("zero_memory")


@pytest.mark.slow
def test_offload_benchmark_prints_both_tables():
    ensure_deepspeed_ops()
    env = {
        **os.environ,
        "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR", str(TORCH_EXTENSIONS_DIR)),
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "offload.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env=env,
    )
    lines = result.stdout.splitlines()
    zero = next(line for line in lines if line.startswith("ZeRO-2 + offload_optimizer"))
    assert "DeepSpeedCPUAdam" in zero and zero.split()[-3].endswith("x")
    assert next(line for line in lines if line.startswith("ZeRO-2 ")).split()[1] == "AdamW"
    for case in ("torch AdamW (default)", "torch AdamW foreach", "torch AdamW fused", "DeepSpeedCPUAdam"):
        row = next(line for line in lines if line.startswith(case))
        assert float(row.split()[-2]) > 0 and row.endswith("x")


def test_zero_memory_counts_the_published_sizes_and_orders_the_settings():
    assert zero_memory.model_sizes(zero_memory.MODELS["Llama-3.1-8B"])[0] == 8_030_261_248
    assert zero_memory.model_sizes(zero_memory.MODELS["Llama-3.2-1B"]) == (1_235_814_400, 262_668_288)
    params, largest = 70_553_706_496, 1_050_673_152
    gpu = {s: zero_memory.estimate(s, params, largest, 8, 1)[0] for s in zero_memory.SETTINGS}
    stages = ["stage 0 (DDP)", "stage 1", "stage 2", "stage 3"]
    assert [gpu[s] for s in stages] == sorted((gpu[s] for s in stages), reverse=True)
    assert gpu["stage 2 + offload_optimizer"] < gpu["stage 2"]
    assert (
        gpu["stage 3 + offload_optimizer + offload_param"]
        < gpu["stage 3 + offload_optimizer"]
        < gpu["stage 3"]
    )
    assert gpu["stage 0 (DDP)"] == 16 * params  # the ZeRO paper's mixed-precision Adam
    assert gpu["stage 3 + offload_optimizer + offload_param"] == 4 * largest  # one fp32 layer at a time
