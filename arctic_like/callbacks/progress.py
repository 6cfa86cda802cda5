"""Console feedback for HF-style use: a progress bar, a plain log printer and a one-off run summary."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from arctic_like.callbacks.base import Callback
from arctic_like.trainer.console import Console, compact

logger = logging.getLogger("arctic_like.callbacks.progress")


class ProgressCallback(Callback):
    """The console's progress bar driven by HF events: for HF's ``Trainer``, the harness, or a trainer
    with ``progress: false``.

    An arctic_like trainer shows its own console by default (``trainer.console``); while that is on, this
    callback shows nothing, so there is never a second bar. ``enabled=None`` (the default) shows the bar
    only when ``file`` (default: stderr) is a TTY and the recipe's ``progress`` is not false;
    ``True``/``False`` force it.
    """

    def __init__(self, enabled: bool | None = None, file: TextIO | None = None) -> None:
        super().__init__()
        self.enabled = enabled
        self.file = file
        self.console: Console | None = None

    def _active(self, state: Any) -> bool:
        if not state.is_world_process_zero:
            return False
        if getattr(self.trainer, "console", None) is not None:
            logger.debug("ProgressCallback: the trainer's console already shows progress")
            return False
        if self.enabled is not None:
            return self.enabled
        stream = self.file or sys.stderr
        progress = getattr(getattr(self.trainer, "config", None), "progress", True)
        return bool(progress) and hasattr(stream, "isatty") and stream.isatty()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._active(state):
            self.console = Console(file=self.file, mode="bar")
            self.console.start(state.max_steps, state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.console is not None:
            self.console.advance(state.global_step)

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.console is not None:
            self.console.evaluating()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if self.console is not None and logs:
            self.console.show(state.global_step, logs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.console is not None:
            self.console.stop()
            self.console = None


class PrinterCallback(Callback):
    """Print every log dict (without ``total_flos``) on the local main process, one line each."""

    def __init__(self, file: TextIO | None = None) -> None:
        super().__init__()
        self.file = file

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if state.is_local_process_zero and logs:
            shown = {k: compact(v) for k, v in logs.items() if k != "total_flos"}
            print({"step": state.global_step, **shown}, file=self.file or sys.stdout, flush=True)


def count_parameters(model: Any) -> tuple[int, int]:
    """(all parameters, trainable parameters) of a torch module."""
    params = list(model.parameters()) if model is not None else []
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _dataset_size(loader: Any) -> int | None:
    dataset = getattr(loader, "dataset", None)
    try:
        return len(dataset) if dataset is not None else None
    except TypeError:
        return None


class InfoCallback(Callback):
    """Log a summary of the run once, at train start: parameters, data sizes, device, batch sizes.

    The summary is also kept in ``self.info`` (a dict) for other callbacks and tests.
    """

    def __init__(self, file: TextIO | None = None) -> None:
        super().__init__()
        self.file = file
        self.info: dict[str, Any] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        total, trainable = count_parameters(kwargs.get("model"))
        trainer = self.trainer
        world = int(getattr(trainer, "world_size", None) or getattr(args, "world_size", 1) or 1)
        micro = int(getattr(args, "per_device_train_batch_size", 1))
        accum = int(getattr(args, "gradient_accumulation_steps", 1))
        device = getattr(trainer, "device", None)
        if device is None:
            model = kwargs.get("model")
            device = next(model.parameters()).device if model is not None else "unknown"
        self.info = {
            "parameters": total,
            "trainable_parameters": trainable,
            "train_examples": _dataset_size(kwargs.get("train_dataloader")),
            "eval_examples": _dataset_size(kwargs.get("eval_dataloader")),
            "device": str(device),
            "world_size": world,
            "micro_batch_size": micro,
            "gradient_accumulation_steps": accum,
            "effective_batch_size": micro * accum * world,
            "max_steps": state.max_steps,
        }
        if state.is_world_process_zero:
            lines = "\n".join(
                f"  {k:<28} {v:,}" if isinstance(v, int) else f"  {k:<28} {v}" for k, v in self.info.items()
            )
            logger.info("run info:\n%s", lines)
            if self.file is not None:
                print(f"run info:\n{lines}", file=self.file, flush=True)
