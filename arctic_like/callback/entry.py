"""One callback in a chain: an `(event, fn)` pair that also knows where it was declared and its order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from arctic_like.callback.errors import CallbackError
from arctic_like.callback.events import parse_event

FIRST, NORMAL, LAST = -1, 0, 1
_ORDER_ATTR = "__al_order__"


def run_first(fn: Callable) -> Callable:
    """Mark a callback to run before the unmarked ones of its event, wherever it was declared."""
    setattr(fn, _ORDER_ATTR, FIRST)
    return fn


def run_last(fn: Callable) -> Callable:
    """Mark a callback to run after the unmarked ones of its event, wherever it was declared."""
    setattr(fn, _ORDER_ATTR, LAST)
    return fn


def callable_name(fn: Any) -> str:
    """A readable qualified name for any callable: `module.Qual.name`, or its repr."""
    name = getattr(fn, "__qualname__", None) or getattr(type(fn), "__qualname__", None) or repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}" if module and module != "builtins" else name


def canonical_event(event: str) -> str:
    """`pre-create_model` -> `pre-create-model`; strings without a valid phase are returned as they are."""
    parsed = parse_event(event)
    return f"{parsed[0]}-{parsed[1]}" if parsed else event


class CallbackEntry(tuple):
    """`(event, fn)` with the event in canonical spelling, plus where it was declared (`origin`).

    It compares equal to a plain `(event, fn)` tuple whatever the spelling of the event, so
    `obj.callbacks.remove(("pre-create_model", fn))` finds the entry.
    """

    origin: str

    def __new__(cls, event: str, fn: Callable, origin: str = "runtime") -> CallbackEntry:
        self = super().__new__(cls, (canonical_event(event), fn))
        self.origin = origin
        return self

    @property
    def event(self) -> str:
        return self[0]

    @property
    def fn(self) -> Callable:
        return self[1]

    @property
    def order(self) -> int:
        return getattr(self[1], _ORDER_ATTR, NORMAL)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, tuple) or len(other) != 2 or not isinstance(other[0], str):
            return NotImplemented
        return (self[1] is other[1] or self[1] == other[1]) and self[0] == canonical_event(other[0])

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return f"({self[0]!r}, {callable_name(self[1])})"

    def __reduce__(self):
        return (type(self), (self[0], self[1], self.origin))


def make_entry(item: Any, origin: str, owner_name: str) -> CallbackEntry:
    """Turn a user's `(event, callable)` pair into an entry, or say clearly why it is not one."""
    if isinstance(item, CallbackEntry):
        return CallbackEntry(item[0], item[1], item.origin)
    if not (
        isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str) and callable(item[1])
    ):
        raise CallbackError(
            f"{owner_name}: callback entry {item!r} is not an (event, callable) pair. "
            "Fix: write it as ('pre-<method>', fn), ('post-<method>', fn) or ('error-<method>', fn)."
        )
    return CallbackEntry(item[0], item[1], origin)


def sort_by_order(entries: list[CallbackEntry]) -> list[CallbackEntry]:
    """Stable sort: `run_first` entries, then unmarked ones, then `run_last` ones."""
    return sorted(entries, key=lambda entry: entry.order)
