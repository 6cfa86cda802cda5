"""What needs a real `arctic-like` process: signals during the imports, a main thread blocked in native code
(a collective waiting for a rank that never comes), a hung rank in a 2-process run, and a disk that really
fills up (a 500 KB tmpfs in a private mount namespace).

Each run uses `ARCTIC_LIKE_STOP_GRACE_S=2`: the watchdog ends a process whose main thread cannot handle a
signal within 2 s.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.distributed.launch import finish, free_port, launched, run_env
from tests.trainer.helpers import tiny_recipe

pytestmark = pytest.mark.slow

GRACE_S = 2
SECOND_SIGNAL_S = 2


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return run_env(tmp_path / "probe", ARCTIC_LIKE_STOP_GRACE_S=str(GRACE_S), **extra)


def write_recipe(work: Path, **overrides) -> Path:
    overrides.setdefault("checkpoint", [{"type": "torch", "save_every_n_steps": 2}])
    recipe = tiny_recipe(work, **overrides)
    path = work / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def command(recipe: Path) -> list[str]:
    return [sys.executable, "-m", "arctic_like", "train", str(recipe)]


def handles(pid: int, sig: int) -> bool:
    """Whether process `pid` has a handler installed for `sig` (the SigCgt mask of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port` (rank 0's rendezvous store)."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_imports_exits_with_one_line(sig: int, tmp_path: Path) -> None:
    with launched(command(write_recipe(tmp_path)), env(tmp_path), tmp_path) as proc:
        wait_until(lambda: handles(proc.pid, signal.SIGTERM), proc)  # arctic_like's handlers are in place
        proc.send_signal(sig)
        result = finish(proc, timeout=60)
    name = signal.Signals(sig).name
    assert result.returncode == 128 + sig, result.output[-3000:]
    assert (
        f"arctic-like: error: interrupted by {name} during start-up, before training began" in result.output
    )
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_a_sigterm_while_blocked_in_a_collective_ends_the_process_promptly(tmp_path: Path) -> None:
    """Rank 0 of 2 waits in the rendezvous for a rank that never comes (native code: no Python handler can
    run); without the watchdog it would wait for the collective timeout (120 s here)."""
    port = free_port()
    extra = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"}
    with launched(
        command(write_recipe(tmp_path)), env(tmp_path, MASTER_PORT=str(port), **extra), tmp_path
    ) as proc:
        wait_until(lambda: listening(port), proc, timeout=120)
        time.sleep(1.0)  # well inside the rendezvous wait
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        result = finish(proc, timeout=60)
    elapsed = time.monotonic() - sent
    assert result.returncode == 143, result.output[-3000:]
    assert "the main thread is blocked in torch.distributed" in result.output
    assert "exiting now with status 143" in result.output and "Traceback" not in result.output
    assert elapsed < GRACE_S + 10, elapsed


HANG_ON_RANK_1 = """
import time
from pathlib import Path
from arctic_like.trainer import CausalTrainer

def hang(self):
    if self.global_rank == 1 and self.state.global_step == 2:
        Path("rank1-hangs").write_text("")
        time.sleep(600)

class Hanging(CausalTrainer):
    name = "hanging"
    callbacks = [("pre-step", hang)]
"""


@pytest.mark.distributed
def test_a_hung_rank_does_not_delay_the_shutdown(tmp_path: Path) -> None:
    """Rank 1 hangs (in Python) at step 3; rank 0 then waits in a collective. SIGTERM to rank 0 ends it in
    about the grace time; a second SIGTERM to rank 1, which handled the first one but stays stuck, ends it
    at once. Neither waits for the collective timeout."""
    (tmp_path / "hang.py").write_text(HANG_ON_RANK_1)
    recipe = write_recipe(
        tmp_path, code=str(tmp_path / "hang.py"), type="hanging", micro_batch_size=2, epochs=3
    )
    port = str(free_port())
    ranks = []
    for rank in (0, 1):
        extra = {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"}
        ranks.append(launched(command(recipe), env(tmp_path, MASTER_PORT=port, **extra), tmp_path))
    with ranks[0] as rank0, ranks[1] as rank1:
        wait_until(lambda: (tmp_path / "rank1-hangs").exists(), rank0, timeout=180)
        time.sleep(1.0)  # rank 0 is now inside the collective of step 3
        start = time.monotonic()
        for proc in (rank0, rank1):
            proc.send_signal(signal.SIGTERM)
        first = finish(rank0, timeout=60)
        rank0_s = time.monotonic() - start
        rank1.send_signal(signal.SIGTERM)
        second = finish(rank1, timeout=60)
        rank1_s = time.monotonic() - start - rank0_s
    assert first.returncode == 143, first.output[-3000:]
    assert "[rank 0] arctic-like: SIGTERM: " in first.output and "Traceback" not in first.output
    assert rank0_s < GRACE_S + 10, rank0_s
    assert second.returncode == 143, second.output[-3000:]
    assert "[rank 1] arctic-like: " in second.output
    assert rank1_s < SECOND_SIGNAL_S + 5, rank1_s
    names = sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir())
    assert names == ["checkpoint-2", "latest"]  # the last complete checkpoint stays


def test_a_disk_that_fills_up_mid_save(tmp_path: Path) -> None:
    """Checkpoints (about 330 KB each) go to a 500 KB tmpfs: checkpoint-2 fits, checkpoint-4 does not."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a private tmpfs")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a private mount namespace here: {probe.stderr.decode().strip()}")
    disk = tmp_path / "disk"
    disk.mkdir()
    recipe = write_recipe(
        tmp_path, checkpoint=[{"type": "torch", "save_every_n_steps": 2, "output_dir": str(disk / "ckpt")}]
    )
    script = (
        f"mount -t tmpfs -o size=500k tmpfs {disk} || exit 99; "
        f"{' '.join(command(recipe))}; rc=$?; "
        f"ls {disk / 'ckpt'}; cat {disk / 'ckpt' / 'latest'}; exit $rc"
    )
    with launched(["unshare", "-rm", "sh", "-c", script], env(tmp_path), tmp_path) as proc:
        result = finish(proc, timeout=180)
    if result.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {result.output.strip()}")
    assert result.returncode == 74, result.output[-3000:]
    assert (
        f"arctic-like: error: disk full: checkpoint checkpoint-4 could not be written to {disk / 'ckpt'}"
        in (result.output)
    )
    assert f"the previous checkpoint {disk / 'ckpt' / 'checkpoint-2'} is intact" in result.output
    assert "Traceback" not in result.output
    listing = result.output.splitlines()[-3:]
    assert listing == ["checkpoint-2", "latest", "checkpoint-2"], result.output[-3000:]
