"""Running ``arctic-like train`` in subprocesses for the distributed and fault tests: recipes, launchers, time
bounds, free loopback ports, cleanup, and reading back what the probe trainer wrote."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROBE_FILE = Path(__file__).with_name("probe_trainer.py")
FAKE_SLURM = Path(__file__).with_name("fake_slurm")
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

RUN_TIMEOUT_S = 240
"""Upper bound of one launched run: a hang fails the test instead of the suite (runs take 10-120 s)."""

TORCH_EXTENSIONS_DIR = Path(sys.prefix) / "torch_extensions"
"""Where launched runs keep DeepSpeed's compiled ops (shared-memory comm, cpu_adam): beside the virtual
environment they were built for. torch's default (~/.cache/torch_extensions) is shared by every environment
of the user, so two checkouts with their own environments rebuild each other's ops (1-2 min each)."""

DEEPSPEED_OPS = {"deepspeed_shm_comm": "ShareMemCommBuilder", "cpu_adam": "CPUAdamBuilder"}
"""DeepSpeed's C++ ops the runs load: its shared-memory collectives (every DeepSpeed run on CPU) and
DeepSpeedCPUAdam (optimizer offload); each is compiled once per environment."""

OPS_BUILD_TIMEOUT_S = 900
"""Compiling both ops on a fresh, busy 2-core machine takes 2-5 minutes."""

COLLECTIVE_TIMEOUT_S = 120
"""`ARCTIC_LIKE_DIST_TIMEOUT_S` for launched runs: a collective waiting on a dead rank gives up after this
(generous: on a fresh machine one rank may first spend ~30 s compiling DeepSpeed's shared-memory op)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_recipe(output_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A recipe for the probe trainer: a 2-layer Llama of width 32 on string reversal, a few steps.

    Every problem has the same length, so every packed row holds the same number of targets and the mean loss
    of 2 ranks x 1 row equals the mean over one batch of 2 rows (documents are packed whole, 3 or 4 to a row
    whether or not the tokenizer adds a bos token; 408 problems fill every row)."""
    recipe: dict[str, Any] = {
        "type": "probe",
        "code": str(PROBE_FILE),
        "seed": 7,
        "tokenizer": {"type": "char"},
        "data": {
            "sources": [
                {"type": "reverse", "min_length": 3, "max_length": 3, "num_samples": 408, "eval_samples": 0}
            ],
            "max_length": 32,
            "packing": True,
        },
        "model": {
            "type": "huggingface",
            "config": {
                "model_type": "llama",
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "num_key_value_heads": 2,
                "max_position_embeddings": 64,
            },
        },
        "optimizer": {"lr": 3e-3},
        "micro_batch_size": 2,
        "max_steps": 6,
        "logging_steps": 1,
        "eval_strategy": "no",
        "device": "cpu",
        "progress": False,
        "output_dir": str(output_dir),
    }
    for key, value in overrides.items():
        recipe[key] = value
    return recipe


def ensure_deepspeed_ops() -> None:
    """Compile DeepSpeed's ops into ``TORCH_EXTENSIONS_DIR`` unless they are there already, so that no
    launched run spends its time limit compiling them."""
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR", str(TORCH_EXTENSIONS_DIR)))
    missing = [b for name, b in DEEPSPEED_OPS.items() if not list(root.glob(f"{name}/{name}*.so"))]
    if not missing:
        return
    script = (
        "from arctic_like.optimizer.adam import ninja_on_path\n"
        "from deepspeed.accelerator import get_accelerator\n"
        "ninja_on_path()\n"
        f"for name in {missing!r}:\n"
        "    get_accelerator().create_op_builder(name).load()\n"
    )
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(root)}
    result = run([sys.executable, "-c", script], env, REPO, timeout=OPS_BUILD_TIMEOUT_S)
    assert result.returncode == 0, f"building DeepSpeed's ops {missing} failed:\n{result.output[-4000:]}"


def write_recipe(path: Path, recipe: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def run_env(probe_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a launched run: one thread per process, offline, bounded collectives, probes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBE_") and k not in LAUNCHER_VARIABLES}
    env.update(
        {
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
            "ARCTIC_LIKE_DIST_TIMEOUT_S": str(COLLECTIVE_TIMEOUT_S),
            "PROBE_DIR": str(probe_dir),
            "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR", str(TORCH_EXTENSIONS_DIR)),
        }
    )
    env.update(extra)
    return env


def single_command(recipe: Path) -> list[str]:
    return [sys.executable, "-m", "arctic_like.cli", "train", str(recipe)]


def torchrun_command(recipe: Path, nproc: int = 2) -> list[str]:
    """torchrun as docs/scaling.md shows it (``--standalone``: a rendezvous on a free local port)."""
    return [
        str(BIN / "torchrun"),
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        "--monitor-interval",
        "0.2",
        "-m",
        "arctic_like.cli",
        "train",
        str(recipe),
    ]


def deepspeed_command(recipe: Path, nproc: int = 2) -> list[str]:
    """DeepSpeed's launcher, as a user types it (it appends ``--local_rank=N``, which the CLI accepts)."""
    return [
        str(BIN / "deepspeed"),
        "--num_gpus",
        str(nproc),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "--module",
        "arctic_like.cli",
        "train",
        str(recipe),
    ]


def slurm_command(recipe: Path) -> list[str]:
    """examples/slurm/train.sbatch as a batch job runs it (``slurm_env`` provides the job and fake Slurm)."""
    return ["bash", str(REPO / "examples" / "slurm" / "train.sbatch"), str(recipe)]


def slurm_env(env: dict[str, str], nodes: int = 2) -> dict[str, str]:
    """``env`` plus a Slurm job of ``nodes`` one-process nodes on this machine: the job variables, a free
    rendezvous port, and tests/distributed/fake_slurm's ``srun``/``scontrol`` with this environment's
    ``torchrun`` on ``PATH``."""
    return {
        **env,
        "PATH": f"{FAKE_SLURM}:{BIN}:{env.get('PATH', '')}",
        "SLURM_NNODES": str(nodes),
        "SLURM_JOB_NODELIST": f"node[0-{nodes - 1}]",
        "SLURM_JOB_ID": "4242",
        "NPROC_PER_NODE": "1",
        "MASTER_PORT": str(free_port()),
    }


@dataclass
class Result:
    returncode: int
    output: str
    seconds: float


@contextlib.contextmanager
def launched(command: Sequence[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen]:
    """Start ``command`` in its own process group; on exit kill whatever of the group is still alive."""
    proc = subprocess.Popen(
        list(command),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=10)


def finish(proc: subprocess.Popen, timeout: float = RUN_TIMEOUT_S) -> Result:
    """Wait for a ``launched`` process within ``timeout`` seconds (a timeout fails the test, after a kill)."""
    start = time.monotonic()
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=10)
        raise AssertionError(
            f"{' '.join(proc.args)} did not finish within {timeout} s; output:\n{output[-6000:]}"
        ) from None
    return Result(proc.returncode, output, time.monotonic() - start)


def run(command: Sequence[str], env: dict[str, str], cwd: Path, timeout: float = RUN_TIMEOUT_S) -> Result:
    """Run to completion within ``timeout`` seconds (a timeout fails the test, after killing the run)."""
    with launched(command, env, cwd) as proc:
        return finish(proc, timeout)


def read_jsonl(probe_dir: Path, kind: str, rank: int = 0) -> list[dict[str, Any]]:
    path = probe_dir / f"{kind}-rank{rank}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def losses(probe_dir: Path, rank: int = 0) -> dict[int, float]:
    """Per-optimizer-step training loss as logged (``logging_steps: 1``); a re-run step keeps its last."""
    return {r["step"]: r["loss"] for r in read_jsonl(probe_dir, "losses", rank)}


def epochs(probe_dir: Path, rank: int = 0) -> dict[int, float]:
    """The fractional epoch logged with each step's loss."""
    return {r["step"]: r["epoch"] for r in read_jsonl(probe_dir, "losses", rank)}


def events(probe_dir: Path, event: str, rank: int = 0) -> list[dict[str, Any]]:
    return [r for r in read_jsonl(probe_dir, "events", rank) if r["event"] == event]


def wait_for(predicate: Any, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` s or when ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) before the awaited condition")
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.1)
