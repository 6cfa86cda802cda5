"""A trainer for the distributed and fault tests, loaded by a recipe's ``code:``.

Every rank writes what it saw into ``$PROBE_DIR`` (one file per rank, appended line by line so a SIGKILL loses
nothing already written); environment variables make it misbehave on purpose:

``PROBE_RAISE_RANK``/``PROBE_RAISE_STEP``: raise ``RuntimeError`` on that rank after that optimizer step.
``PROBE_KILL_STEP`` (with ``PROBE_KILL=1``): SIGKILL this process after that optimizer step.
``PROBE_KILL_IN_SAVE_STEP`` (with ``PROBE_KILL=1``): SIGKILL while the checkpoint of that step is being
written (the files are in the temporary directory, the manifest is not).
``PROBE_NAN_STEP``: make the first micro-batch loss of that optimizer step NaN (once; only on rank
``PROBE_NAN_RANK`` when that is set).
``PROBE_STEP_SLEEP_S``: sleep after every optimizer step (gives a test time to send a signal).
``PROBE_WATCH_DIR``: record (audit hook plus wrappers of ``torch.save`` and safetensors' ``save_model``,
from import on) every file or directory this process creates, writes, renames or deletes below that
directory; written to ``writes-rank<r>.jsonl`` at the end of training.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from arctic_like.trainer.causal import CausalTrainer

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_MUTATING_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree", "tempfile.mkdtemp"}
_writes: list[tuple[str, str]] = []


def _watch(event: str, args: tuple[Any, ...]) -> None:
    """Audit hook: remember mutations of paths below ``PROBE_WATCH_DIR``."""
    if event != "open" and event not in _MUTATING_EVENTS:
        return
    root = os.environ.get("PROBE_WATCH_DIR")
    if not args or not root or not isinstance(args[0], str | os.PathLike):
        return
    path = os.path.abspath(os.fspath(args[0]))
    if not path.startswith(root):
        return
    if event == "open":
        mode, flags = args[1], args[2]
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & _WRITE_FLAGS)
        if not writing:
            return
    _writes.append((event, os.path.relpath(path, root)))


def _watch_native_writers() -> None:
    """``torch.save`` and safetensors write from C++/Rust, unseen by audit hooks: record their targets too."""
    import arctic_like.checkpoint.torch_engine as torch_checkpoint

    def recording(write: Any) -> Any:
        def wrapper(obj: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(target, str | os.PathLike):
                _watch("open", (target, "wb", 0))
            return write(obj, target, *args, **kwargs)

        return wrapper

    torch.save = recording(torch.save)
    torch_checkpoint.save_model = recording(torch_checkpoint.save_model)


if os.environ.get("PROBE_WATCH_DIR"):
    sys.addaudithook(_watch)
    _watch_native_writers()


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def _out(trainer: Any, kind: str) -> Path | None:
    root = os.environ.get("PROBE_DIR")
    if not root:
        return None
    Path(root).mkdir(parents=True, exist_ok=True)
    return Path(root) / f"{kind}-rank{trainer.global_rank}.jsonl"


def _append(trainer: Any, kind: str, record: dict[str, Any]) -> None:
    path = _out(trainer, kind)
    if path is not None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({**record, "time": time.time()}) + "\n")


def parameter_hash(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes, in order (equal on ranks whose weights are bit-identical); ZeRO-3
    partitioned parameters are gathered first (a collective: every rank calls this)."""
    partitioned = [p for p in model.parameters() if hasattr(p, "ds_id")]
    gathered: Any = contextlib.nullcontext()
    if partitioned:
        import deepspeed

        gathered = deepspeed.zero.GatheredParameters(partitioned)
    digest = hashlib.sha256()
    with gathered:
        for name, p in model.named_parameters():
            digest.update(name.encode())
            digest.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def _armed(step_var: str, step: int) -> bool:
    return os.environ.get("PROBE_KILL") == "1" and _env_int(step_var) == step


def _after_init(self: Any) -> None:
    original = {engine: engine._write for engine in self.checkpoint_engines}

    def make_write(engine: Any) -> Any:
        def write(tmp: Path) -> None:
            original[engine](tmp)
            if _armed("PROBE_KILL_IN_SAVE_STEP", engine.step):
                _append(self, "events", {"event": "kill-in-save", "step": engine.step, "tmp": str(tmp)})
                os.kill(os.getpid(), signal.SIGKILL)

        return write

    for engine in self.checkpoint_engines:
        engine._write = make_write(engine)
    _append(
        self,
        "events",
        {
            "event": "init",
            "rank": self.global_rank,
            "local_rank": self.local_rank,
            "world_size": self.world_size,
            "is_world_process_zero": self.state.is_world_process_zero,
            "is_local_process_zero": self.state.is_local_process_zero,
            "global_step": self.state.global_step,
        },
    )


def _loss(self: Any, loss: torch.Tensor) -> torch.Tensor:
    step = self.state.global_step + 1
    rank = _env_int("PROBE_NAN_RANK")
    if rank is not None and rank != self.global_rank:
        return loss
    if _env_int("PROBE_NAN_STEP") == step and self.accumulation_start and not self.__dict__.get("_probe_nan"):
        self._probe_nan = True  # once: a skipped window does not advance the step, the next one must be fine
        return loss * float("nan")
    return loss


def _after_step(self: Any) -> None:
    if not self.optimizer_stepped:
        return
    step = self.state.global_step
    _append(self, "events", {"event": "step", "step": step})
    if _env_int("PROBE_RAISE_RANK") == self.global_rank and _env_int("PROBE_RAISE_STEP") == step:
        raise RuntimeError(f"probe failure on rank {self.global_rank} at step {step}")
    if _armed("PROBE_KILL_STEP", step):
        os.kill(os.getpid(), signal.SIGKILL)
    sleep = os.environ.get("PROBE_STEP_SLEEP_S")
    if sleep:
        time.sleep(float(sleep))


def _after_log(self: Any, logs: dict[str, float]) -> dict[str, float]:
    if "loss" in logs and "train_runtime" not in logs:
        record = {"step": self.state.global_step, "loss": logs["loss"], "epoch": logs.get("epoch")}
        _append(self, "losses", record)
    return logs


def _after_train(self: Any) -> None:
    for event, path in list(_writes):
        _append(self, "writes", {"event": event, "path": path})
    _append(
        self,
        "events",
        {
            "event": "train-end",
            "step": self.state.global_step,
            "params": parameter_hash(self.engine.unwrap()),
            "nonfinite_losses": getattr(self.state, "nonfinite_losses", None),
            "skipped_micro_batches": getattr(self.state, "skipped_micro_batches", None),
            "skipped_optimizer_steps": getattr(self.state, "skipped_optimizer_steps", None),
        },
    )


class ProbeTrainer(CausalTrainer):
    """The causal trainer plus the probes above."""

    name = "probe"
    callbacks = [
        ("post-init", _after_init),
        ("post-loss", _loss),
        ("post-step", _after_step),
        ("post-log", _after_log),
        ("post-train", _after_train),
    ]
