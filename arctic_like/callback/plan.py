"""What a class offers and declares: its event-source methods and its chain of callbacks.

The chain of a class is built from its MRO, base first: for each class, the entries of its
`callbacks` list, then its `pre_/post_/error_<name>_callback` methods in definition order; a
class's `drop_callbacks` removes inherited entries; `run_first`/`run_last` marks reorder the
result (stably).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from arctic_like.callback.codegen import raw_of
from arctic_like.callback.entry import (
    CallbackEntry,
    callable_name,
    canonical_event,
    make_entry,
    sort_by_order,
)
from arctic_like.callback.errors import CallbackError
from arctic_like.callback.events import (
    SPECIAL_METHODS,
    callback_method_event,
    is_callback_method_name,
    method_event,
    normalize,
)
from arctic_like.callback.spec import CallSpec, MethodInfo, bind_callback

EVENT_ATTR = "__al_event__"
DECLARED_ATTR = "_al_declared_callbacks"
EXCLUDED_OWNERS: set[type] = set()  # CallbackMixin: its helpers are not events, its __init__ is


def _explicit_event(cls: type, name: str) -> str | None:
    """An event name given with `callback_wrapper` to this method or to any definition it overrides."""
    for klass in cls.__mro__:
        value = klass.__dict__.get(name)
        event = getattr(raw_of(value), EVENT_ATTR, None) if value is not None else None
        if event:
            return event
    return None


def collect_methods(cls: type) -> dict[str, MethodInfo]:
    """Every event-source method of `cls`, keyed by event name (e.g. `create-model`)."""
    methods: dict[str, MethodInfo] = {}
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        for name, value in klass.__dict__.items():
            if name in seen or (klass in EXCLUDED_OWNERS and name != "__init__"):
                continue
            seen.add(name)
            raw = raw_of(value)
            if not inspect.isfunction(raw) or is_callback_method_name(name):
                continue
            explicit = _explicit_event(cls, name)
            if explicit is None and name.startswith("_") and name not in SPECIAL_METHODS:
                continue
            signature = inspect.signature(raw, follow_wrapped=False)
            if not signature.parameters or next(iter(signature.parameters.values())).kind not in (
                inspect.Parameter.POSITIONAL_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
            ):
                continue
            event = normalize(explicit) if explicit else method_event(name)
            if event in methods:
                raise CallbackError(
                    f"{cls.__name__}: methods '{methods[event].name}' and '{name}' are both the source of "
                    f"event '{event}'. Fix: give one another name with @callback_wrapper('<name>')."
                )
            methods[event] = MethodInfo(name, event, raw, signature, inspect.iscoroutinefunction(raw))
    return methods


def _declared(klass: type) -> Iterable[Any]:
    if DECLARED_ATTR in klass.__dict__:
        return klass.__dict__[DECLARED_ATTR]
    value = klass.__dict__.get("callbacks", ())
    return value if isinstance(value, list | tuple) else ()


def _drop(entries: list[CallbackEntry], klass: type, item: Any) -> None:
    if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
        raise CallbackError(
            f"{klass.__name__}: drop_callbacks entry {item!r} is not an (event, callback) pair. "
            "Fix: write ('post-epoch', Parent.post_epoch_callback) or ('post-epoch', 'qualified.name')."
        )
    event, target = canonical_event(item[0]), item[1]
    kept = [
        entry
        for entry in entries
        if not (
            entry.event == event
            and (entry.fn is target or entry.fn == target or callable_name(entry.fn).endswith(str(target)))
        )
    ]
    if len(kept) == len(entries):
        inherited = ", ".join(repr(e) for e in entries if e.event == event) or "none"
        raise CallbackError(
            f"{klass.__name__}: drop_callbacks names ({item[0]!r}, {target!r}) but no inherited callback "
            f"matches (inherited on that event: {inherited}). Fix: name the function or its qualified name."
        )
    entries[:] = kept


def collect_entries(cls: type) -> list[CallbackEntry]:
    """The class-level chain of `cls`, in run order."""
    entries: list[CallbackEntry] = []
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        owner = klass.__name__
        for item in _declared(klass):
            entry = make_entry(item, f"{owner}.callbacks", cls.__name__)
            if entry not in entries:  # `callbacks = Parent.callbacks + [...]` must not run Parent's twice
                entries.append(entry)
        for name, value in klass.__dict__.items():
            event = callback_method_event(name)
            if event is not None and callable(value) and not isinstance(value, staticmethod | classmethod):
                entries.append(CallbackEntry(event, value, f"{owner}.{name}"))
        for item in klass.__dict__.get("drop_callbacks", ()):
            _drop(entries, klass, item)
    return sort_by_order(entries)


@dataclass
class ClassPlan:
    """The validated class-level chain of one class, grouped by method."""

    owner: str
    methods: dict[str, MethodInfo]
    entries: tuple[CallbackEntry, ...]
    specs: dict[int, CallSpec] = field(default_factory=dict)
    by_method: dict[str, tuple[tuple[CallSpec, ...], ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, klass: type) -> ClassPlan:
        methods = collect_methods(klass)
        entries = tuple(collect_entries(klass))
        plan = cls(klass.__name__, methods, entries)
        plan.specs = {id(entry): bind_callback(plan.owner, entry, methods) for entry in entries}
        plan.by_method = group_by_method(plan.specs[id(entry)] for entry in entries)
        return plan

    def method_by_name(self, name: str) -> MethodInfo | None:
        for info in self.methods.values():
            if info.name == name:
                return info
        return None


def group_by_method(specs: Iterable[CallSpec]) -> dict[str, tuple[tuple[CallSpec, ...], ...]]:
    """{method name: (pre specs, post specs, error specs)} in run order."""
    grouped: dict[str, tuple[list[CallSpec], list[CallSpec], list[CallSpec]]] = {}
    for spec in specs:
        phases = grouped.setdefault(spec.method, ([], [], []))
        phases[("pre", "post", "error").index(spec.phase)].append(spec)
    return {name: tuple(tuple(p) for p in phases) for name, phases in grouped.items()}
