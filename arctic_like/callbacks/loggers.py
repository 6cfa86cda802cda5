"""Structured run logs: one JSON object per line, and TensorBoard event files."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import platform
from pathlib import Path
from typing import Any

from arctic_like.callbacks.base import Callback

logger = logging.getLogger("arctic_like.callbacks.loggers")


def _jsonable(value: Any) -> Any:
    """Numbers stay numbers (non-finite ones become strings), tensors become floats, the rest strings."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def recipe_dict(trainer: Any) -> dict[str, Any] | None:
    """The trainer's recipe as plain JSON data (pydantic ``model_dump``), or None without a trainer."""
    config = getattr(trainer, "config", None)
    if config is None:
        return None
    if hasattr(config, "model_dump"):
        return _jsonable(config.model_dump(mode="json"))
    return _jsonable(dict(vars(config)))


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as one level with dotted keys: ``{"optimizer": {"lr": 3e-3}}`` gives
    ``{"optimizer.lr": 3e-3}``; list items are numbered (``checkpoint.0.type``)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat.update(flatten({str(i): v for i, v in enumerate(value)}, f"{name}."))
        else:
            flat[name] = value
    return flat


def _is_eval_log(logs: dict[str, Any]) -> bool:
    """An evaluation's metrics as they reach ``on_log``."""
    keys = [k for k in logs if k != "epoch"]
    return bool(keys) and all(k.startswith("eval_") for k in keys)


class JsonLogger(Callback):
    """Append one JSON object per event to ``<output_dir>/log.jsonl`` (or ``path``), on rank 0 only.

    The first line of a run is ``{"event": "run", ...}`` with the recipe and run metadata; then one line per
    ``train_begin``, ``log``, ``evaluate``, ``save``, ``epoch_end`` and ``train_end`` with ``timestamp``,
    ``global_step``, ``epoch`` and ``metrics``. An evaluation's metrics reach both ``on_log`` and
    ``on_evaluate`` (as in HF); they are written once, as an ``evaluate`` line. Other callbacks add lines
    with :meth:`write`.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        self.path = Path(path) if path is not None else None
        self._started = False
        self._state: Any = None

    def _resolve(self, args: Any) -> Path:
        if self.path is None:
            self.path = self.output_dir(args) / "log.jsonl"
        return self.path

    def write(self, event: str, metrics: dict[str, Any] | None = None, **extra: Any) -> None:
        """Append one line for ``event`` (called by the HF events below and by other callbacks)."""
        state = self._state
        if self.path is None or (state is not None and not state.is_world_process_zero):
            return
        record = {
            "event": event,
            "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
            "global_step": getattr(state, "global_step", None),
            "epoch": getattr(state, "epoch", None),
            "metrics": _jsonable(metrics or {}),
            **{k: _jsonable(v) for k, v in extra.items()},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._state = state
        self._resolve(args)
        if not self._started:
            self._started = True
            self.write(
                "run",
                recipe=recipe_dict(self.trainer),
                run={
                    "host": platform.node(),
                    "python": platform.python_version(),
                    "trainer": type(self.trainer).__name__ if self.trainer is not None else None,
                    "max_steps": state.max_steps,
                    "resumed_at_step": state.global_step,
                },
            )
        self.write("train_begin")

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        self.write("evaluate" if _is_eval_log(logs or {}) else "log", logs)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.write("save")

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.write("epoch_end")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.write("train_end")


class TensorBoardLogger(Callback):
    """Write scalars (``train/loss``, ``eval/loss``, ...), the recipe as text and hyper-parameters.

    Scalars are named as by HF's TensorBoard callback (``eval_x`` as ``eval/x``, others as ``train/x``).
    The hyper-parameters are the recipe's fields flattened with dotted names (``optimizer.lr``). Events go
    to ``<output_dir>/tensorboard`` unless ``log_dir`` is given; only rank 0 writes.
    """

    def __init__(self, log_dir: str | Path | None = None) -> None:
        super().__init__()
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.writer: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        from torch.utils.tensorboard import SummaryWriter

        if self.log_dir is None:
            self.log_dir = self.output_dir(args) / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        recipe = recipe_dict(self.trainer)
        if recipe is not None:
            self.writer.add_text(
                "recipe", "```\n" + json.dumps(recipe, indent=2) + "\n```", state.global_step
            )
        hparams = {k: v for k, v in flatten(recipe or {}).items() if isinstance(v, int | float | str | bool)}
        if hparams:
            self.writer.add_hparams(hparams, {}, run_name=".")

    def add_text(self, tag: str, text: str, step: int) -> None:
        """Add a text entry (used by :class:`TextSamples`)."""
        if self.writer is not None:
            self.writer.add_text(tag, text, step)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if self.writer is None or not logs:
            return
        for key, value in logs.items():
            if hasattr(value, "item"):
                value = value.item()
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if key.startswith("eval_"):
                    tag = f"eval/{key[5:]}"
                elif key.startswith(("train/", "eval/")):
                    tag = key
                else:
                    tag = f"train/{key}"
                self.writer.add_scalar(tag, value, state.global_step)
        self.writer.flush()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
