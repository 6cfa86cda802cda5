"""`arctic-like train RECIPE --num-gpus N` starts the launcher itself, as ``arctic_training RECIPE`` does.

The recipe's engine picks the launcher: ``torchrun`` for ``engine: torch`` (DDP), DeepSpeed's launcher for
``engine: deepspeed`` and for any run given a ``--hostfile`` (it starts the processes of every machine listed
there, over ssh/pdsh). Each process runs ``python -m arctic_like.cli train RECIPE`` with the same ``--set``
overrides. ``--num-gpus N`` starts N processes, one per GPU; ``--num-procs N`` starts N processes on the CPU
(gloo), e.g. to try a distributed run on a laptop. Without a hostfile, a run on several machines is started on
each one with the same command and its ``--node-rank`` (torchrun's way).

Standard library only: the command builds the launch before torch is imported in the processes it starts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LAUNCHER_FLAGS", "Launch", "launcher_command", "run_launcher"]

LAUNCHER_FLAGS = ("num_gpus", "num_procs", "num_nodes", "node_rank", "hostfile", "master_addr", "master_port")
"""The ``train`` options that ask for a launch (their argparse names)."""


class LaunchError(ValueError):
    """Launch options that do not fit together; the message says which and how to fix them."""


@dataclass(frozen=True)
class Launch:
    """What the command line asked for: processes per machine, machines, and where they meet."""

    num_gpus: int | None = None
    num_procs: int | None = None
    num_nodes: int | None = None
    node_rank: int | None = None
    hostfile: Path | None = None
    master_addr: str | None = None
    master_port: int | None = None

    @classmethod
    def from_args(cls, args: Any) -> Launch | None:
        """The launch asked for by parsed ``train`` arguments, or None when none of its options is given."""
        values = {name: getattr(args, name, None) for name in LAUNCHER_FLAGS}
        if all(value is None for value in values.values()):
            return None
        return cls(**values)

    @property
    def per_node(self) -> int | None:
        return self.num_gpus if self.num_gpus is not None else self.num_procs

    def check(self) -> None:
        """Options that cannot work together are a `LaunchError`, before anything starts."""
        if os.environ.get("WORLD_SIZE") is not None or os.environ.get("LOCAL_RANK") is not None:
            raise LaunchError(
                "this process was already started by a launcher (WORLD_SIZE/LOCAL_RANK are set). Fix: drop "
                "--num-gpus/--num-procs/--num-nodes/--hostfile, or run arctic-like directly"
            )
        if self.num_gpus is not None and self.num_procs is not None:
            raise LaunchError("--num-gpus and --num-procs both given. Fix: give one (GPUs, or CPU processes)")
        for name in ("num_gpus", "num_procs", "num_nodes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise LaunchError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.per_node is None and self.hostfile is None:
            raise LaunchError(
                "how many processes per machine? Fix: add --num-gpus N (one per GPU) or --num-procs N (CPU), "
                "or --hostfile to use the slots it lists"
            )
        if self.hostfile is not None and not Path(self.hostfile).is_file():
            raise LaunchError(f"--hostfile {self.hostfile}: no such file. Fix: check the path")
        multi = (self.num_nodes or 1) > 1
        if multi and self.hostfile is None and (self.node_rank is None or self.master_addr is None):
            raise LaunchError(
                "a run on several machines without a hostfile is started on each machine. Fix: give "
                "--node-rank (0 on the first machine) and --master-addr (the first machine's address) on "
                "each, or list the machines in a --hostfile"
            )


def launcher_command(launch: Launch, engine: str, child: list[str]) -> list[str]:
    """The launcher's command line for ``launch`` of a run with ``engine``; each process runs ``child``
    (``arctic_like.cli`` arguments)."""
    launch.check()
    if engine == "deepspeed" or launch.hostfile is not None:
        return _deepspeed(launch, child)
    return _torchrun(launch, child)


def _torchrun(launch: Launch, child: list[str]) -> list[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(launch.per_node)]
    nodes = launch.num_nodes or 1
    if nodes == 1 and launch.master_addr is None:
        command += ["--standalone"]  # one machine: a rendezvous on a free local port
    else:
        port = launch.master_port or 29500
        command += ["--nnodes", str(nodes), "--node-rank", str(launch.node_rank or 0)]
        command += ["--master-addr", launch.master_addr or "127.0.0.1", "--master-port", str(port)]
    return [*command, "-m", "arctic_like.cli", *child]


def _deepspeed(launch: Launch, child: list[str]) -> list[str]:
    command = [sys.executable, "-m", "deepspeed.launcher.runner"]
    if launch.per_node is not None:
        command += ["--num_gpus", str(launch.per_node)]
    if launch.hostfile is not None:
        command += ["--hostfile", str(launch.hostfile)]
        if launch.num_nodes is not None:
            command += ["--num_nodes", str(launch.num_nodes)]
    elif (launch.num_nodes or 1) > 1:
        raise LaunchError(
            "DeepSpeed's launcher starts a run on several machines from a hostfile. Fix: list the machines "
            "and their GPU slots in a file given with --hostfile (`host1 slots=8` per line)"
        )
    command += ["--master_addr", launch.master_addr or "127.0.0.1"]
    command += ["--master_port", str(launch.master_port or _free_port())]
    return [*command, "--module", "arctic_like.cli", *child]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_launcher(command: list[str]) -> int:
    """Run the launcher and return its exit status; SIGINT/SIGTERM are passed on to it (it stops the
    processes it started), and an interrupted launch returns 128 + the signal."""
    process = subprocess.Popen(command)
    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        received.append(signum)
        process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received and status != 0:
        return 128 + received[0]
    return status
