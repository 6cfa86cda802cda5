"""`CallbackMeta` and `CallbackMixin`: every public method becomes a source of pre/post/error events.

Module layout mirrors ArcticTraining's (`arctic_training.callback.mixin`), so ported code only
changes its import.
"""

from __future__ import annotations

import abc
from typing import Any

from arctic_like.callback.callback_list import LOCK, CallbackList
from arctic_like.callback.codegen import is_instance_dispatcher
from arctic_like.callback.describe import callback_table
from arctic_like.callback.dispatchers import class_dispatcher
from arctic_like.callback.entry import CallbackEntry
from arctic_like.callback.errors import CallbackError
from arctic_like.callback.plan import DECLARED_ATTR, EXCLUDED_OWNERS, ClassPlan
from arctic_like.callback.wrapper import callback_wrapper

_LIST_ATTR = "_al_callbacks"
_STATE_KEY = "_al_callbacks_state"


class _CallbacksAttribute:
    """`obj.callbacks` is the instance's own list; `Cls.callbacks` is what the class declared."""

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return owner.__dict__.get(DECLARED_ATTR, ())
        chain = obj.__dict__.get(_LIST_ATTR)
        if chain is None:
            with LOCK:
                chain = obj.__dict__.get(_LIST_ATTR)
                if chain is None:
                    chain = obj.__dict__[_LIST_ATTR] = CallbackList(obj, type(obj)._al_plan)
        return chain

    def __set__(self, obj: Any, value: Any) -> None:
        self.__get__(obj, type(obj))[:] = value

    def __delete__(self, obj: Any) -> None:
        self.__get__(obj, type(obj))[:] = type(obj)._al_plan.entries


class CallbackMeta(abc.ABCMeta):
    """Builds each class's chain at class creation, validates it, and installs the dispatchers."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any):
        declared = namespace.get("callbacks")
        if declared is not None and not isinstance(declared, _CallbacksAttribute):
            if not isinstance(declared, list | tuple):
                raise CallbackError(
                    f"{name}: `callbacks` must be a list of (event, callable) pairs, got "
                    f"{type(declared).__name__}. Fix: callbacks = [('pre-step', fn)]."
                )
            namespace = {k: v for k, v in namespace.items() if k != "callbacks"}
            namespace[DECLARED_ATTR] = declared
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        if cls not in EXCLUDED_OWNERS and any(isinstance(base, CallbackMeta) for base in bases):
            _install(cls)
        return cls


def _install(cls: type) -> None:
    plan = ClassPlan.build(cls)
    type.__setattr__(cls, "_al_plan", plan)
    for info in plan.methods.values():
        chain = plan.by_method.get(info.name, ((), (), ()))
        log_init = info.name == "__init__" and bool(plan.entries)
        if any(chain) or log_init:
            type.__setattr__(
                cls, info.name, class_dispatcher(info, chain, cls, routes=False, log_init=log_init)
            )
        elif getattr(cls, info.name) is not info.raw:
            type.__setattr__(cls, info.name, info.raw)
    abc.update_abstractmethods(cls)


class CallbackMixin(metaclass=CallbackMeta):
    """Base for every class whose public methods should be hookable by callbacks.

    Add callbacks with a class attribute `callbacks = [(event, fn)]`, with methods named
    `pre_<method>_callback` / `post_<method>_callback` / `error_<method>_callback`, or on one
    instance at runtime with `obj.callbacks.append((event, fn))`. Subclasses may list
    `drop_callbacks = [(event, fn)]` to drop inherited callbacks.
    """

    callbacks = _CallbacksAttribute()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Cooperative: passes arguments on, so every subclass has the `init` event (as in ArcticTraining)."""
        super().__init__(*args, **kwargs)

    def describe_callbacks(self) -> str:
        """A table of this instance's callbacks per event, in run order, with where each was declared."""
        plan: ClassPlan = type(self)._al_plan
        return callback_table(type(self).__name__, list(self.callbacks), list(plan.methods))

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k != _LIST_ATTR and not is_instance_dispatcher(v)}
        chain = self.__dict__.get(_LIST_ATTR)
        if chain is not None:
            plan: ClassPlan = type(self)._al_plan
            index = {id(entry): i for i, entry in enumerate(plan.entries)}
            encoded = [index.get(id(entry), (entry.event, entry.fn, entry.origin)) for entry in chain]
            if encoded != list(range(len(plan.entries))):
                state[_STATE_KEY] = encoded
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        encoded = state.pop(_STATE_KEY, None)
        self.__dict__.update(state)
        if encoded is not None:
            plan: ClassPlan = type(self)._al_plan
            self.__dict__[_LIST_ATTR] = chain = CallbackList(self, plan)
            chain[:] = [
                plan.entries[item] if isinstance(item, int) else CallbackEntry(*item) for item in encoded
            ]


EXCLUDED_OWNERS.add(CallbackMixin)
type.__setattr__(CallbackMixin, "_al_plan", ClassPlan.build(CallbackMixin))

__all__ = ["CallbackError", "CallbackMeta", "CallbackMixin", "callback_wrapper"]
