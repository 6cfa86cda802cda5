"""``trainer.callback_handler``: HF's ``CallbackHandler`` over an arctic_like trainer's HF-style callbacks.

The handler's ``on_*`` methods are HF's own (they clear the same ``TrainerControl`` flags before calling the
callbacks); :meth:`TrainerCallbackHandler.call_event` calls each callback with HF's arguments, skips objects
without the event, times it for the profiler and names the callback in any error it raises.
"""

from __future__ import annotations

import difflib
import logging
import time
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import CallbackHandler

from arctic_like.callback import CallbackError

logger = logging.getLogger("arctic_like.integrations.hf")

HF_EVENTS: frozenset[str] = frozenset(name for name in vars(TrainerCallback) if name.startswith("on_"))
"""The events of ``transformers.TrainerCallback`` (``on_init_end`` ... ``on_push_begin``)."""


def describe(cb: Any) -> str:
    """``module.QualName`` of a callback's class."""
    return f"{type(cb).__module__}.{type(cb).__qualname__}"


def check_event_names(cb: Any) -> None:
    """Reject a callback with an ``on_*`` method HF never calls (a misspelled event), suggesting the name."""
    for name in sorted(dir(type(cb))):
        if not name.startswith("on_") or name in HF_EVENTS or not callable(getattr(type(cb), name, None)):
            continue
        close = difflib.get_close_matches(name, sorted(HF_EVENTS), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise CallbackError(
            f"{describe(cb)}.{name} is not a HuggingFace TrainerCallback event, so it would never be called. "
            f"Fix: {hint}Events are {', '.join(sorted(HF_EVENTS))}; rename the method, or make it private "
            f"(_{name})."
        )


def _inherited_noop(cb: Any, event: str) -> bool:
    """True when ``cb`` only has ``TrainerCallback``'s empty implementation of ``event``."""
    return getattr(type(cb), event, None) is getattr(TrainerCallback, event, None)


def _flow_exceptions() -> tuple[type[BaseException], ...]:
    """The trainer's control-flow exceptions, which pass through untouched (imported late: the trainer
    package imports this module)."""
    from arctic_like.trainer.exceptions import TrainerFlowException

    return (TrainerFlowException,)


class TrainerCallbackHandler(CallbackHandler):
    """HF's ``CallbackHandler`` for an arctic_like trainer (``trainer.callback_handler``).

    ``callbacks`` is the trainer's ``hf_callbacks`` list; ``add_callback``/``pop_callback``/
    ``remove_callback`` are the trainer's (which also set up arctic_like callbacks and check stateful
    keys and event names). ``model``, ``processing_class``, ``optimizer``, ``lr_scheduler``,
    ``train_dataloader`` and ``eval_dataloader`` are set when HF's ``Trainer`` sets them: the model and the
    tokenizer at init, optimizer, scheduler and training data when training starts, evaluation data at the
    first evaluation. There is no ``DefaultFlowCallback`` in ``callbacks``: the trainer runs that flow itself.
    """

    def __init__(
        self, trainer: Any
    ) -> None:  # HF's __init__ would warn about the missing DefaultFlowCallback
        self.trainer = trainer
        self.callbacks = trainer.hf_callbacks
        self.model = getattr(trainer, "model", None)
        self.processing_class = getattr(trainer, "tokenizer", None)
        self.optimizer: Any = None
        self.lr_scheduler: Any = None
        self.train_dataloader: Any = None
        self.eval_dataloader: Any = None

    def add_callback(self, callback: Any) -> None:
        self.trainer.add_callback(callback)

    def pop_callback(self, callback: Any) -> Any:
        return self.trainer.pop_callback(callback)

    def remove_callback(self, callback: Any) -> None:
        self.trainer.remove_callback(callback)

    def training_started(self) -> None:
        """Attach what HF's ``Trainer`` attaches when ``train()`` starts."""
        trainer = self.trainer
        self.model = getattr(trainer, "model", None)
        self.optimizer = getattr(trainer, "optimizer", None)
        self.lr_scheduler = getattr(trainer, "scheduler", None)
        self.train_dataloader = getattr(trainer, "train_dataloader", None)

    def call_event(self, event: str, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        timer = self.trainer.__dict__.get("_hf_timer")
        for cb in list(self.callbacks):
            method = getattr(cb, event, None)
            if method is None:
                continue
            start = time.perf_counter() if timer is not None else 0.0
            try:
                result = method(
                    args,
                    state,
                    control,
                    model=self.model,
                    processing_class=self.processing_class,
                    optimizer=self.optimizer,
                    lr_scheduler=self.lr_scheduler,
                    train_dataloader=self.train_dataloader,
                    eval_dataloader=self.eval_dataloader,
                    **kwargs,
                )
            except _flow_exceptions():
                raise
            except Exception as exc:
                exc.add_note(f"raised by HF callback {describe(cb)}.{event}")
                raise
            finally:
                if timer is not None and not _inherited_noop(cb, event):
                    timer(f"hf:{event}", f"{type(cb).__qualname__}.{event}", time.perf_counter() - start)
            if result is not None:
                control = result
        return control
