"""SIGINT/SIGTERM for the `arctic-like` command and the trainer (standard library only, so the command can
install it before importing torch).

* Start-up: `abort` raises `Interrupted` at once (nothing is written before training starts).
* Training: the trainer's handler (see `Trainer.train`) records the first signal and stops after the
  current optimizer step, with a checkpoint; a second signal raises `Interrupted` at once.
* Every signal is appended to `received` before anything is raised, so a signal whose exception got
  swallowed (raised inside a `__del__`, a garbage-collector callback or a native extension that checks
  signals and drops the error) is still acted on when the command next looks.
* `start_watchdog`, in the command's own process only, ends the process with status 128+signal when the main
  thread cannot even run its handler (it is blocked in native code, typically a collective waiting for a
  hung rank), when it stays blocked in a `torch.distributed` call after a stop was requested, and shortly
  after a second signal in any case.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["SIGNALS", "Interrupted", "abort", "install", "received", "restore", "start_watchdog"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
received: list[int] = []
"""Every SIGINT/SIGTERM an arctic_like handler has seen in this process, in order."""

DEFAULT_GRACE_S = 10.0
"""How long the main thread may stay blocked after a signal before the watchdog ends the process (overridden
by the environment variable ``ARCTIC_LIKE_STOP_GRACE_S``)."""

SECOND_SIGNAL_GRACE_S = 2.0
"""After a second signal the process has this long to stop by itself before the watchdog ends it."""


class Interrupted(KeyboardInterrupt):
    """Raised by the handlers to stop at once; a ``KeyboardInterrupt``, so cleanup written for Ctrl-C runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The conventional exit status: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


def abort(signum: int, frame: FrameType | None) -> None:
    """Start-up handler: record the signal and stop at once."""
    received.append(signum)
    raise Interrupted(signum)


def install(handler: Callable[[int, FrameType | None], Any]) -> dict[int, Any]:
    """Install `handler` for SIGINT and SIGTERM and return the previous handlers (for `restore`).

    Does nothing outside the main thread (Python delivers signals there only) and leaves a signal alone
    that was ignored when the process started (``nohup`` and background jobs ignore SIGINT).
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, handler)
    return previous


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers `install` replaced."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _grace_s() -> float:
    try:
        return float(os.environ.get("ARCTIC_LIKE_STOP_GRACE_S", DEFAULT_GRACE_S))
    except ValueError:
        return DEFAULT_GRACE_S


def _main_frame() -> FrameType | None:
    return sys._current_frames().get(threading.main_thread().ident or -1)


def _position(frame: FrameType | None) -> tuple[int, int] | None:
    return None if frame is None else (id(frame), frame.f_lasti)


def _in_collective(frame: FrameType | None) -> str | None:
    """The `torch.distributed` function the main thread is inside, if any."""
    marker = os.sep.join(("torch", "distributed", ""))
    while frame is not None:
        if marker in frame.f_code.co_filename:
            return frame.f_code.co_name
        frame = frame.f_back
    return None


def _where(frame: FrameType | None) -> str:
    collective = _in_collective(frame)
    if collective is not None:
        return f"in torch.distributed {collective}, waiting for another rank"
    if frame is None:
        return "outside Python code"
    return f"in {frame.f_code.co_name} ({os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno})"


def _exit(signum: int, why: str) -> None:
    name = signal.Signals(signum).name
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = f"[rank {os.environ.get('RANK', '0')}] " if world > 1 else ""
    message = (
        f"\n{rank}arctic-like: {name}: {why}; exiting now with status {128 + signum}, without a "
        "checkpoint of the current step (the last complete checkpoint is kept).\n"
    )
    try:
        os.write(2, message.encode())
    finally:
        os._exit(128 + signum)


class _Watchdog:
    """Reads the signal numbers the C-level handler writes to the wakeup fd, in a daemon thread."""

    def __init__(self, reader: socket.socket, grace_s: float) -> None:
        self.reader = reader
        self.grace_s = grace_s
        self.handled_before = len(received)
        self.seen: list[tuple[int, float]] = []
        """(signal, arrival time) of each SIGINT/SIGTERM."""
        self.main_at_first: tuple[int, int] | None = None
        self.stuck: tuple[tuple[int, int] | None, float] | None = None

    def run(self) -> None:
        while True:
            self.reader.settimeout(0.25 if self.seen else None)
            try:
                data = self.reader.recv(64)
            except TimeoutError:
                data = b""
            except OSError:
                return
            for signum in data:
                if signum in SIGNALS:
                    self.seen.append((signum, time.monotonic()))
                    if len(self.seen) == 1:
                        self.main_at_first = _position(_main_frame())
            if self.seen:
                self.check(time.monotonic(), _main_frame())

    def check(self, now: float, frame: FrameType | None) -> None:
        signum, first_at = self.seen[0]
        if len(self.seen) >= 2:
            last, last_at = self.seen[-1]
            if now - last_at >= SECOND_SIGNAL_GRACE_S:
                _exit(last, f"second signal, and the process did not stop by itself ({_where(frame)})")
            return
        if len(received) <= self.handled_before:  # the Python-level handler has not run yet
            if _position(frame) == self.main_at_first and now - first_at >= self.grace_s:
                _exit(signum, f"the main thread is blocked {_where(frame)} and cannot stop gracefully")
            return
        if _in_collective(frame) is None:
            self.stuck = None
        elif self.stuck is None or self.stuck[0] != _position(frame):
            self.stuck = (_position(frame), now)
        elif now - self.stuck[1] >= self.grace_s:
            _exit(signum, f"a stop was requested but the main thread stays blocked {_where(frame)}")


_watchdog: tuple[socket.socket, socket.socket, threading.Thread] | None = None


def start_watchdog() -> None:
    """Start the watchdog of this process (once, from the main thread, in the command's own process).

    Python runs signal handlers only between bytecodes of the main thread; the C-level handler also writes
    the signal number to a wakeup fd, which a thread reads even while the main thread is blocked.
    """
    global _watchdog
    if _watchdog is not None:
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    watchdog = _Watchdog(reader, _grace_s())
    thread = threading.Thread(target=watchdog.run, name="arctic-like-signal-watchdog", daemon=True)
    thread.start()
    _watchdog = (reader, writer, thread)
