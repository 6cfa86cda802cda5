"""DeepSpeedCPUAdam through the `adamw` factory: the real op (compiled once per environment), its numbers
against torch's AdamW, the factory's events, and the log lines of a first build."""

import logging
import os
from types import SimpleNamespace

import pytest
import torch

import arctic_like.optimizer.adam as adam
from arctic_like.optimizer import AdamWOptimizerFactory, load_cpu_adam_op
from tests.distributed.launch import TORCH_EXTENSIONS_DIR


@pytest.fixture
def extensions_dir(monkeypatch):
    """Load DeepSpeed's ops from this environment's own cache (see launch.TORCH_EXTENSIONS_DIR)."""
    monkeypatch.setenv(
        "TORCH_EXTENSIONS_DIR", os.environ.get("TORCH_EXTENSIONS_DIR", str(TORCH_EXTENSIONS_DIR))
    )


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(8, 8)
        self.norm = torch.nn.LayerNorm(8)

    def forward(self, x):
        return self.norm(self.linear(x)).pow(2).sum()


@pytest.mark.slow
def test_cpu_adam_matches_torch_adamw_and_fires_the_factory_events(extensions_dir):
    seen = []

    class Recording(AdamWOptimizerFactory):
        callbacks = [("post-create-optimizer", lambda self, optimizer: seen.append(optimizer) or optimizer)]

    from deepspeed.ops.adam import DeepSpeedCPUAdam

    models = [Tiny(), Tiny()]
    optimizers = []
    for model, implementation in zip(models, ("cpu_adam", "torch"), strict=True):
        trainer = SimpleNamespace(
            model=model, device=torch.device("cpu"), config=SimpleNamespace(engine="torch")
        )
        config = Recording.config(lr=1e-2, weight_decay=0.1, implementation=implementation)
        optimizers.append(Recording(trainer, config)())
    assert seen == optimizers and isinstance(optimizers[0], DeepSpeedCPUAdam)
    assert isinstance(optimizers[1], torch.optim.AdamW)
    assert [g["weight_decay"] for g in optimizers[0].param_groups] == [0.1, 0.0]
    x = torch.randn(4, 8)
    for _ in range(3):
        for model, optimizer in zip(models, optimizers, strict=True):
            optimizer.zero_grad()
            model(x).backward()
            optimizer.step()
    initial = list(Tiny().parameters())
    for a, b, before in zip(models[0].parameters(), models[1].parameters(), initial, strict=True):
        assert not torch.equal(a, before)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


class FakeBuilder:
    """Stands in for DeepSpeed's CPUAdamBuilder: 'compiles' by writing the library into the build dir."""

    def __init__(self, build_dir):
        self.build_dir = build_dir

    def __call__(self):
        return self

    def load(self):
        (self.build_dir / "cpu_adam.so").write_bytes(b"")
        return "op"


def test_first_build_is_logged_with_its_time_and_later_loads_are_quiet(tmp_path, monkeypatch, caplog):
    import deepspeed.ops.op_builder

    monkeypatch.setattr(adam, "cpu_adam_build_dir", lambda: tmp_path)
    monkeypatch.setattr(deepspeed.ops.op_builder, "CPUAdamBuilder", FakeBuilder(tmp_path))
    with caplog.at_level(logging.INFO, logger="arctic_like.optimizer"):
        assert load_cpu_adam_op() == "op"
    first = [r.getMessage() for r in caplog.records]
    assert first[0] == (
        "compiling DeepSpeed's cpu_adam op with the C++ compiler and ninja (first use on this machine; "
        f"cached in {tmp_path} for later runs)"
    )
    assert first[1].startswith("compiled DeepSpeed's cpu_adam op in ") and first[1].endswith(" s")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="arctic_like.optimizer"):
        assert load_cpu_adam_op() == "op"
    assert caplog.records == []


def test_build_dir_is_torchs_extension_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    assert adam.cpu_adam_build_dir() == tmp_path / "cpu_adam"


def test_the_ninja_arctic_like_installs_comes_first_on_path(tmp_path, monkeypatch):
    """Another ninja on PATH (the system's) would record builds differently and make runs rebuild each
    other's ops; without any, nothing would build."""
    import shutil

    import ninja

    other = tmp_path / "ninja"
    other.write_text("#!/bin/sh\necho 1.0.0\n")
    other.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("ninja") == str(other)
    adam.ninja_on_path()
    assert os.environ["PATH"].split(os.pathsep) == [ninja.BIN_DIR, str(tmp_path)]
    adam.ninja_on_path()  # already first: PATH unchanged
    assert os.environ["PATH"].split(os.pathsep) == [ninja.BIN_DIR, str(tmp_path)]


def test_cpu_info_is_asked_once_per_process(tmp_path, monkeypatch):
    """DeepSpeed asks cpuinfo three times per DeepSpeedCPUAdam, a Python subprocess each; after the op is
    loaded the answer comes from memory (a copy each time)."""
    import cpuinfo
    import deepspeed.ops.op_builder

    calls = []
    monkeypatch.setattr(cpuinfo, "get_cpu_info", lambda: calls.append(1) or {"vendor_id_raw": "x"})
    monkeypatch.setattr(adam, "cpu_adam_build_dir", lambda: tmp_path)
    monkeypatch.setattr(deepspeed.ops.op_builder, "CPUAdamBuilder", FakeBuilder(tmp_path))
    load_cpu_adam_op()
    load_cpu_adam_op()
    first, second = cpuinfo.get_cpu_info(), cpuinfo.get_cpu_info()
    assert first == second == {"vendor_id_raw": "x"} and first is not second
    assert len(calls) == 1
