"""The base class of arctic_like's ready-made callbacks.

A :class:`Callback` is a ``transformers.TrainerCallback`` (so it receives the HF lifecycle events with
``(args, state, control, **kwargs)``) that also knows the arctic_like trainer it is attached to: ``setup``
gives it the trainer and installs its ``hooks()`` — plain ``(event, fn)`` entries for any CallbackMixin
event, such as ``pre-log`` — and ``teardown`` removes them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger("arctic_like.callbacks")


def check_mode(owner: str, mode: str) -> None:
    """Reject a metric mode other than 'min' or 'max', naming the callback."""
    if mode not in ("min", "max"):
        raise ValueError(f"{owner} mode must be 'min' or 'max', got {mode!r}. Fix: pass mode='min'.")


class Callback(TrainerCallback):
    """An HF-style callback with access to its arctic_like trainer.

    Stateful subclasses define ``state_dict()``/``load_state_dict()``; they are saved in checkpoints under
    ``state_key`` (the class name unless given), which must be unique on a trainer.
    """

    __arctic_like_callback__ = True
    trainer: Any = None

    def __init__(self, state_key: str | None = None) -> None:
        self.state_key = state_key or type(self).__name__
        self._installed: list[tuple[str, Callable[..., Any]]] = []

    def hooks(self) -> list[tuple[str, Callable[..., Any]]]:
        """Extra ``(event, fn)`` entries to put on the trainer's ``callbacks`` while attached."""
        return []

    def setup(self, trainer: Any) -> None:
        """Called by ``trainer.add_callback``: remember the trainer and install ``hooks()``."""
        self.trainer = trainer
        self._installed = list(self.hooks())
        trainer.callbacks.extend(self._installed)

    def teardown(self, trainer: Any) -> None:
        """Called by ``trainer.pop_callback``: remove the installed hooks."""
        for entry in self._installed:
            if entry in trainer.callbacks:
                trainer.callbacks.remove(entry)
        self._installed = []
        self.trainer = None

    def attached(self, cls: type) -> Any:
        """The first callback of type ``cls`` attached to the same trainer, or None."""
        for cb in getattr(self.trainer, "hf_callbacks", []):
            if isinstance(cb, cls):
                return cb
        return None

    def output_dir(self, args: Any) -> Path:
        """The run's output directory: the trainer's config, else the HF arguments."""
        config = getattr(self.trainer, "config", None)
        out = getattr(config, "output_dir", None) or getattr(args, "output_dir", None) or "output"
        return Path(out)
