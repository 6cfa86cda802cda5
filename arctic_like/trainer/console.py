"""What a run shows on the console: one progress bar on a terminal, one plain line per log elsewhere.

On a terminal (the stream is a TTY) a single tqdm bar shows step/total, ETA, it/s, the latest loss and
learning rate and every metric of the latest evaluation; while it is up, console logging handlers,
Python's last-resort handler and ``warnings`` write through tqdm (``logging_redirect_tqdm``), so their
lines appear above the bar instead of on it. Elsewhere (nohup, Slurm, a pipe, a notebook) each log is one
plain ``step N/TOTAL ... | key=value ...`` line. Every trainer has a console unless the recipe says
``progress: false``; only the world's process zero prints.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal, TextIO

from tqdm.contrib.logging import logging_redirect_tqdm
from tqdm.std import tqdm
from tqdm.utils import disp_len, disp_trim

__all__ = ["CONSOLE_CALLBACKS", "EVAL_RATES", "Console", "compact"]

Mode = Literal["auto", "bar", "lines"]

BAR_FORMAT = "{n_fmt}/{total_fmt} {desc}|{bar}| eta {remaining} {rate_fmt} {figures}"
NO_BAR_FORMATS = (
    "{n_fmt}/{total_fmt} {desc}eta {remaining} {rate_fmt} {figures}",
    "{n_fmt}/{total_fmt} {desc}<{remaining} {rate_fmt} {figures}",
)
"""The line without the bar graphic, and shorter still, for narrow terminals."""
MIN_BAR = 8
"""Narrower than this, the bar graphic is left out so that every figure stays on the line."""

EVAL_RATES = ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_tokens_per_second")
"""Evaluation figures about speed, not quality: left out of the bar and of the run's summary line."""


def compact(value: Any, digits: int = 4) -> str:
    """A number in at most ``digits`` significant digits (``0.6769``, ``0.002941``, ``3e-7``); others as
    ``str``."""
    if isinstance(value, bool) or not isinstance(value, float | int):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def _is_train_summary(logs: dict[str, Any]) -> bool:
    return "train_runtime" in logs


def _is_eval(logs: dict[str, Any]) -> bool:
    return any(k.startswith("eval_") for k in logs)


class _Bar(tqdm):
    """A tqdm bar followed by ``figures``, whose graphic gives way to them: when the line would not fit the
    terminal with a bar of at least ``MIN_BAR`` columns, the bar is left out (then the "eta" label)
    instead of squeezing the bar to nothing or cutting figures off."""

    figures = ""

    @property
    def format_dict(self) -> dict[str, Any]:
        return {**super().format_dict, "figures": self.figures}

    @staticmethod
    def format_meter(n: float, total: float, elapsed: float, ncols: int | None = None, **kwargs: Any) -> str:
        kwargs.setdefault("figures", "")
        kwargs["bar_format"] = NO_BAR_FORMATS[0]
        line = tqdm.format_meter(n, total, elapsed, **kwargs).rstrip()
        if not ncols or disp_len(line) + 3 + MIN_BAR <= ncols:
            kwargs["bar_format"] = BAR_FORMAT
            return tqdm.format_meter(n, total, elapsed, ncols=ncols, **kwargs).rstrip()
        if disp_len(line) > ncols:
            kwargs["bar_format"] = NO_BAR_FORMATS[1]
            line = tqdm.format_meter(n, total, elapsed, **kwargs).rstrip()
        return disp_trim(line, ncols)


def _is_console_handler(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.stderr)


def _console_loggers() -> list[logging.Logger]:
    """Every logger with a handler that writes to stdout/stderr (root, arctic_like, transformers, ...)."""
    loggers = [logging.root, *logging.root.manager.loggerDict.values()]
    return [
        lg
        for lg in loggers
        if isinstance(lg, logging.Logger) and any(_is_console_handler(h) for h in lg.handlers)
    ]


class _LastResortThroughBar(logging.Handler):
    """Python's last-resort handler (records with no handler at all), writing through tqdm."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(logging.WARNING)
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        _Bar.write(self.format(record), file=self.stream)


@contextlib.contextmanager
def _lines_above_bar(stream: TextIO) -> Iterator[None]:
    """Route console logging, the last-resort handler and ``warnings`` through ``tqdm.write``."""
    previous_last_resort = logging.lastResort
    previous_showwarning = warnings.showwarning

    def show_warning(message: Any, category: Any, filename: str, lineno: int, *args: Any) -> None:
        text = warnings.formatwarning(message, category, filename, lineno, None)
        _Bar.write(text.rstrip("\n"), file=stream)

    logging.lastResort = _LastResortThroughBar(stream)
    if getattr(previous_showwarning, "__module__", None) == "warnings":  # not captured by logging
        warnings.showwarning = show_warning
    loggers = _console_loggers()
    levels = [next(h.level for h in lg.handlers if _is_console_handler(h)) for lg in loggers]
    try:
        with logging_redirect_tqdm(loggers=loggers, tqdm_class=_Bar):
            for lg, level in zip(loggers, levels, strict=True):
                lg.handlers[-1].setLevel(level)  # tqdm's handler replaces the console one: same threshold
            yield
    finally:
        logging.lastResort = previous_last_resort
        warnings.showwarning = previous_showwarning


def _width(stream: TextIO) -> dict[str, Any]:
    """tqdm's width settings: follow the terminal's size, or ``COLUMNS`` when the stream has no terminal."""
    try:
        os.get_terminal_size(stream.fileno())
        return {"dynamic_ncols": True}
    except (AttributeError, OSError, ValueError):
        return {"ncols": shutil.get_terminal_size().columns - 1}


class Console:
    """The run's console output; ``start``/``advance``/``show``/``evaluating``/``stop`` drive it.

    ``mode="auto"`` draws the bar when ``file`` (default: ``sys.stderr`` at ``start``) is a TTY and prints
    plain lines otherwise; ``"bar"`` and ``"lines"`` force one. ``self.mode`` is the one in use.
    """

    def __init__(self, file: TextIO | None = None, mode: Mode = "auto") -> None:
        if mode not in ("auto", "bar", "lines"):
            raise ValueError(f"console mode must be 'auto', 'bar' or 'lines', got {mode!r}.")
        self.file = file
        self.requested: Mode = mode
        self.mode: Mode | None = None
        self.bar: tqdm | None = None
        self.total = 0
        self.latest: dict[str, Any] = {}
        self.latest_eval: dict[str, Any] = {}
        self._stack: contextlib.ExitStack | None = None
        self._started_at = 0.0
        self._initial = 0

    @property
    def stream(self) -> TextIO:
        return self.file or sys.stderr

    def start(self, total: int, initial: int = 0) -> None:
        """Open the bar (or start counting for the plain lines) at step ``initial`` of ``total``."""
        self.stop()
        stream = self.stream
        tty = bool(getattr(stream, "isatty", lambda: False)())
        self.mode = self.requested if self.requested != "auto" else ("bar" if tty else "lines")
        self.total, self._initial = int(total), int(initial)
        self._started_at = time.perf_counter()
        self.latest, self.latest_eval = {}, {}
        if self.mode == "bar":
            self._stack = contextlib.ExitStack()
            self.bar = _Bar(
                total=self.total, initial=self._initial, file=stream, mininterval=0.2, **_width(stream)
            )
            self._stack.enter_context(_lines_above_bar(stream))

    def advance(self, step: int) -> None:
        """The optimizer step now done."""
        if self.bar is not None and step > self.bar.n:
            self.bar.update(step - self.bar.n)

    def evaluating(self) -> None:
        """An evaluation runs: the bar says so until its metrics are shown."""
        if self.bar is not None and self.bar.desc != "eval ":
            self.bar.set_description_str("eval ", refresh=True)

    def show(self, step: int, logs: dict[str, Any]) -> None:
        """A log record: the bar's figures are updated, or one line is printed."""
        if self.mode is None or not logs or _is_train_summary(logs):
            return
        if _is_eval(logs):
            self.latest_eval = {k: v for k, v in logs.items() if k.startswith("eval_")}
        else:
            self.latest = logs
        if self.bar is not None:
            self.bar.set_description_str("", refresh=False)
            self.bar.figures = self.figures()
            self.bar.refresh()
        elif self.mode == "lines":
            print(self.line(step, logs), file=self.stream, flush=True)

    def figures(self) -> str:
        """The bar's figures, 3 significant digits: loss, learning rate, and the latest evaluation's
        metrics (its speed left out)."""
        parts = []
        if "loss" in self.latest:
            parts.append(f"loss={compact(self.latest['loss'], 3)}")
        if "learning_rate" in self.latest:
            parts.append(f"lr={compact(self.latest['learning_rate'], 3)}")
        shown = {k[5:]: v for k, v in self.latest_eval.items() if k not in EVAL_RATES}
        if shown:
            parts.append("eval: " + " ".join(f"{k}={compact(v, 3)}" for k, v in shown.items()))
        return " ".join(parts)

    def line(self, step: int, logs: dict[str, Any]) -> str:
        """One plain line: ``step N/TOTAL eta H:MM:SS | key=value ...`` (the ETA once a step was timed)."""
        head = f"step {step}/{self.total}"
        done = step - self._initial
        elapsed = time.perf_counter() - self._started_at
        if done > 0 and not _is_eval(logs):
            head += f" eta {tqdm.format_interval(elapsed / done * max(self.total - step, 0))}"
        figures = " ".join(f"{k}={compact(v)}" for k, v in logs.items() if k != "epoch")
        return f"{head} | {figures}"

    def stop(self) -> None:
        """Draw the final bar once and give the console back (also after an error)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self._stack is not None:
            self._stack.close()
            self._stack = None


# ------------------------------------------------------------------------------------ the trainer's hooks


def console_start(self: Any) -> None:
    """Open the console at the run's step (none on other ranks or with ``progress: false``)."""
    config = getattr(self, "config", None)
    if not getattr(config, "progress", True) or not self.state.is_world_process_zero:
        self.console = None
        return
    if getattr(self, "console", None) is None:
        self.console = Console()
    self.console.start(self.training_horizon, self.state.global_step)


def console_advance(self: Any) -> None:
    """Move the bar to the optimizer step just done (after a micro-batch: the step is counted by then)."""
    console = self.__dict__.get("console")
    if console is not None:
        console.advance(self.state.global_step)


def console_show(self: Any, logs: Any) -> Any:
    """Show a log record; the record passes on unchanged."""
    console = self.__dict__.get("console")
    if console is not None and isinstance(logs, dict):
        console.show(self.state.global_step, logs)
    return logs


def console_evaluating(self: Any) -> None:
    """Say on the bar that an evaluation runs."""
    console = self.__dict__.get("console")
    if console is not None:
        console.evaluating()


def console_stop(self: Any) -> None:
    """Draw the final bar and give the console back (after success or error)."""
    console = self.__dict__.get("console")
    if console is not None:
        console.stop()


CONSOLE_CALLBACKS: list[tuple[str, Callable[..., Any]]] = [
    ("pre-train", console_start),
    ("post-step", console_advance),
    ("post-log", console_show),
    ("post-prediction-step", console_evaluating),
    ("post-train", console_stop),
    ("error-train", console_stop),
]
"""The trainer's class-level callbacks that drive ``trainer.console`` (declared on ``Trainer``)."""
