"""Running a benchmark script's ``main`` in the test process, leaving the registry as it was."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

from arctic_like import registry

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def benchmark_module(name: str) -> Iterator[ModuleType]:
    """``benchmarks/<name>.py`` imported; afterwards the trainers and factories it registered are removed
    (other tests list the registered names) and the torch thread count is restored."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    threads = torch.get_num_threads()
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        torch.set_num_threads(threads)
        sys.modules.pop(spec.name, None)
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == spec.name and "name" in value.__dict__:
                registry.unregister(value)
