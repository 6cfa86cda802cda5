"""`callback_wrapper`: give a method an explicit event name (ArcticTraining compatible)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from arctic_like.callback.events import normalize
from arctic_like.callback.plan import EVENT_ATTR

F = TypeVar("F", bound=Callable)


def callback_wrapper(name: str) -> Callable[[F], F]:
    """Make the decorated method the source of `pre-<name>`/`post-<name>`/`error-<name>`.

    Works on private methods too (which are otherwise not events), under `@abstractmethod`,
    and an override of the method keeps the name.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"callback_wrapper needs an event name string, got {name!r}")

    def mark(method: F) -> F:
        setattr(method, EVENT_ATTR, normalize(name))
        return method

    return mark
