"""The neutral harness: a callback written once against fixed, explicit event signatures.

A :class:`HarnessCallback` overrides some of the closed set of event methods in :data:`EVENTS`. Each method
declares, as parameter names, exactly the values it wants from :data:`VOCABULARY`. A framework adapter
(``to_arctic``, ``to_hf``, ``to_lightning``) checks every declared name against what that framework can
supply for that event when it is built, then extracts only the declared values at run time and applies the
:class:`HarnessControl` a method returns through the framework's own mechanism.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

logger = logging.getLogger("arctic_like.harness")

# What every framework supplies at every event; each adapter adds the event-specific names.
COMMON_ARGUMENTS = frozenset(
    {"current_step", "max_steps", "epoch", "model", "optimizer", "learning_rate", "is_main_process"}
)

EVENTS: dict[str, str] = {
    "_on_train_start": "training is about to run its first batch",
    "_on_train_end": "training finished (normally or stopped by a callback)",
    "_on_epoch_start": "a training epoch begins",
    "_on_epoch_end": "a training epoch ended",
    "_on_train_batch_start": "an optimizer step begins (first micro-batch of the accumulation cycle)",
    "_on_train_batch_end": "an optimizer step finished (after the optimizer and scheduler stepped)",
    "_on_before_optimizer_step": "gradients are ready and the optimizer is about to step",
    "_on_validation_end": "an evaluation pass finished and its metrics are known",
    "_on_log": "the framework emitted a dict of logged values",
    "_on_save": "the framework wrote a checkpoint",
    "_on_exception": "training raised an exception (the exception still propagates)",
}
"""The closed set of harness events: method name -> when it fires."""

VOCABULARY: dict[str, str] = {
    "current_step": "int: optimizer steps completed (at batch end: including this one)",
    "max_steps": "int: the planned number of optimizer steps",
    "epoch": "int: 0-based index of the current epoch",
    "loss": "float: the training loss of this optimizer step (mean over its micro-batches)",
    "learning_rate": "float: first parameter group's learning rate (at batch end: the one this step used)",
    "metrics": "dict[str, float]: the metrics of the evaluation that just ended, as the framework names them",
    "logs": "dict[str, float]: the values the framework is logging",
    "model": "torch.nn.Module: the model being trained (unwrapped where the framework allows)",
    "optimizer": "torch.optim.Optimizer: the optimizer",
    "batch": "the (last) micro-batch of this step, as the framework feeds it to the model",
    "is_main_process": "bool: True on the process that should write files (global rank 0)",
    "checkpoint_dir": "str: directory of the checkpoint just written",
    "exception": "BaseException: the exception training raised",
}
"""The names an event method may declare: name -> meaning."""


class HarnessError(ValueError):
    """A harness callback that cannot run in a framework, or a callback that returned something unusable."""


@dataclass
class HarnessControl:
    """What a harness event method asks the framework to do; return one (or ``None``) from any event."""

    stop_training: bool = False
    save: bool = False
    evaluate: bool = False
    log: dict[str, float] = field(default_factory=dict)
    """Values to log; they go out with the framework's next log record (the framework's own keys win)."""
    reason: str | None = None

    @classmethod
    def stop(cls, reason: str) -> HarnessControl:
        """Ask the framework to stop training after the current step, saying why."""
        return cls(stop_training=True, reason=reason)

    def apply_flags(self, control: Any, pending_logs: dict[str, float]) -> None:
        """Set the flags of an HF-style ``TrainerControl`` (arctic_like's too) and queue the log values."""
        if self.stop_training:
            control.should_training_stop = True
        if self.save:
            control.should_save = True
        if self.evaluate:
            control.should_evaluate = True
        pending_logs.update(self.log)


class HarnessCallback:
    """Base of write-once callbacks: override :data:`EVENTS`, with parameters from :data:`VOCABULARY`.

    ``optional_events`` names events the callback can live without in a framework that never fires them
    (otherwise building an adapter for such a framework is an error). ``state_dict`` / ``load_state_dict``
    carry state through each framework's checkpoints; ``state_key`` tells instances of one class apart there.
    """

    optional_events: ClassVar[frozenset[str]] = frozenset()

    def _on_train_start(self) -> HarnessControl | None:
        """Training is about to run its first batch."""

    def _on_train_end(self) -> HarnessControl | None:
        """Training finished."""

    def _on_epoch_start(self) -> HarnessControl | None:
        """A training epoch begins."""

    def _on_epoch_end(self) -> HarnessControl | None:
        """A training epoch ended."""

    def _on_train_batch_start(self) -> HarnessControl | None:
        """An optimizer step begins."""

    def _on_train_batch_end(self) -> HarnessControl | None:
        """An optimizer step finished."""

    def _on_before_optimizer_step(self) -> HarnessControl | None:
        """Gradients are ready; the optimizer is about to step."""

    def _on_validation_end(self) -> HarnessControl | None:
        """An evaluation pass finished."""

    def _on_log(self) -> HarnessControl | None:
        """The framework logged values."""

    def _on_save(self) -> HarnessControl | None:
        """The framework wrote a checkpoint."""

    def _on_exception(self) -> HarnessControl | None:
        """Training raised an exception."""

    @property
    def state_key(self) -> str:
        """Key of this callback's state in every framework's checkpoints (``Harness[<class>]`` by default).

        Assign a different one to run two instances of one class in a trainer.
        """
        return self.__dict__.get("_state_key") or f"Harness[{type(self).__name__}]"

    @state_key.setter
    def state_key(self, value: str) -> None:
        self.__dict__["_state_key"] = value

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state to put into checkpoints (default: none)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    # An arctic_like trainer's ``add_callback`` (and a recipe's ``callbacks:`` list) accepts a harness
    # callback directly: it calls ``setup``, which attaches an arctic_like adapter (``teardown`` detaches).
    __arctic_like_callback__: ClassVar[bool] = True

    def setup(self, trainer: Any) -> None:
        """Attach this callback to an arctic_like ``trainer`` (through an arctic_like adapter)."""
        from arctic_like.harness.arctic import ArcticHarnessCallback

        adapter = ArcticHarnessCallback(self)
        adapter.setup(trainer)
        self.__dict__.setdefault("_arctic_adapters", {})[id(trainer)] = adapter

    def teardown(self, trainer: Any) -> None:
        """Detach what :meth:`setup` attached to ``trainer``."""
        adapter = self.__dict__.get("_arctic_adapters", {}).pop(id(trainer), None)
        if adapter is not None:
            adapter.teardown(trainer)


def implemented_events(callback: HarnessCallback) -> list[str]:
    """The events ``callback``'s class overrides, in :data:`EVENTS` order."""
    return [ev for ev in EVENTS if getattr(type(callback), ev) is not getattr(HarnessCallback, ev)]


@dataclass(frozen=True)
class _Param:
    name: str
    required: bool


def _declared(callback: HarnessCallback, event: str, framework: str) -> list[_Param]:
    cls = type(callback).__name__
    params = []
    for p in inspect.signature(getattr(callback, event)).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            stars = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
            raise HarnessError(
                f"{cls}.{event} declares '{stars}{p.name}', but harness events take named parameters only "
                f"(building the {framework} adapter). Fix: name each value you need, e.g. "
                f"'def {event}(self, current_step, loss)'."
            )
        params.append(_Param(p.name, p.default is inspect.Parameter.empty))
    return params


def build_plan(
    callback: HarnessCallback, framework: str, supplies: Mapping[str, frozenset[str]]
) -> dict[str, tuple[str, ...]]:
    """Check ``callback`` against what ``framework`` supplies per event; return event -> names to extract.

    Raises :class:`HarnessError` naming callback class, method, parameter, framework and what is available.
    A parameter with a default that the framework cannot supply keeps its default.
    """
    if not isinstance(callback, HarnessCallback):
        raise HarnessError(
            f"{framework} adapter got {type(callback).__name__}, which is not a HarnessCallback. "
            "Fix: subclass arctic_like.harness.HarnessCallback."
        )
    cls = type(callback).__name__
    plan: dict[str, tuple[str, ...]] = {}
    for event in implemented_events(callback):
        if event not in supplies:
            if event in callback.optional_events:
                continue
            fired = ", ".join(e for e in EVENTS if e in supplies)
            raise HarnessError(
                f"{cls}.{event}: {framework} never fires {event}. Events {framework} fires: {fired}. "
                f"Fix: remove the method, or add '{event}' to {cls}.optional_events if the callback works "
                "without it."
            )
        available = supplies[event]
        names = []
        for param in _declared(callback, event, framework):
            if param.name not in VOCABULARY:
                raise HarnessError(
                    f"{cls}.{event} asks for '{param.name}', which is not in the harness vocabulary "
                    f"(building the {framework} adapter). Vocabulary: {', '.join(VOCABULARY)}. "
                    "Fix: rename the parameter to one of these."
                )
            if param.name in available:
                names.append(param.name)
            elif param.required:
                raise HarnessError(
                    f"{cls}.{event} asks for '{param.name}', which {framework} cannot supply at {event}. "
                    f"Available there: {', '.join(n for n in VOCABULARY if n in available)}. "
                    "Fix: take it from another event, or give the parameter a default."
                )
        plan[event] = tuple(names)
    return plan


class Dispatcher:
    """Shared part of every adapter: the validated plan and lazy argument extraction."""

    framework: ClassVar[str] = ""
    supplies: ClassVar[Mapping[str, frozenset[str]]] = {}

    def __init__(self, callback: HarnessCallback) -> None:
        self.callback = callback
        self.plan = build_plan(callback, self.framework, self.supplies)
        self.needed = frozenset(n for names in self.plan.values() for n in names)

    def fire(self, event: str, getters: Mapping[str, Callable[[], Any]]) -> HarnessControl | None:
        """Call ``event`` on the callback with only its declared values, each computed on demand."""
        names = self.plan.get(event)
        if names is None:
            return None
        result = getattr(self.callback, event)(**{name: getters[name]() for name in names})
        if result is not None and not isinstance(result, HarnessControl):
            raise HarnessError(
                f"{type(self.callback).__name__}.{event} returned {type(result).__qualname__}; "
                "harness events return None or a HarnessControl. Fix: return HarnessControl(...)."
            )
        if result is not None and result.reason:
            logger.warning("%s: %s", type(self.callback).__name__, result.reason)
        return result


def to_float(value: Any) -> float:
    """A Python float from a number or a one-element tensor (the only place a device sync happens)."""
    return float(value.item()) if hasattr(value, "item") else float(value)


def float_dict(values: Mapping[str, Any]) -> dict[str, float]:
    """Numeric entries of ``values`` as floats; other entries are dropped."""
    out = {}
    for key, value in values.items():
        try:
            out[key] = to_float(value)
        except (TypeError, ValueError, RuntimeError):
            continue
    return out


class StepLosses:
    """Loss tensors of the current optimizer step's micro-batches, detached, reduced only on demand."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def reset(self) -> None:
        self.values = []

    def add(self, loss: Any) -> None:
        self.values.append(loss.detach() if hasattr(loss, "detach") else loss)

    def mean(self) -> float:
        """The mean loss of the step (nan when no loss was seen); this is where ``.item()`` happens."""
        if not self.values:
            return math.nan
        return sum(to_float(v) for v in self.values) / len(self.values)
