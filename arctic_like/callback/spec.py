"""Validation of one callback against the method it hooks, done once when the chain changes.

The result, a `CallSpec`, says exactly how the dispatcher calls the callback, so nothing is
inspected per call.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from arctic_like.callback.entry import CallbackEntry, callable_name
from arctic_like.callback.errors import CallbackError
from arctic_like.callback.events import PHASES, parse_event

_VAR_KINDS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@dataclass(frozen=True)
class MethodInfo:
    """An event-source method: its name, the function itself and what pre callbacks may ask for."""

    name: str
    event: str
    raw: Callable
    signature: inspect.Signature
    is_async: bool

    @property
    def named_params(self) -> tuple[str, ...]:
        params = list(self.signature.parameters.values())[1:]
        return tuple(p.name for p in params if p.kind not in _VAR_KINDS)

    def describe(self, owner: str) -> str:
        return f"{owner}.{self.name}{self.signature}"


@dataclass(frozen=True)
class CallSpec:
    """How to call one validated callback: which method parameters it takes, and by keyword or not."""

    entry: CallbackEntry
    phase: str
    method: str
    names: tuple[str, ...]
    keyword_names: frozenset[str]
    takes_value: bool
    is_async: bool

    @property
    def label(self) -> str:
        return f"callback {callable_name(self.entry.fn)} on event '{self.entry.event}'"


def is_coroutine_callable(fn: Callable) -> bool:
    """True for `async def` functions, partials of them and objects with an `async def __call__`."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


def _fail(owner: str, entry: CallbackEntry, problem: str, fix: str) -> CallbackError:
    return CallbackError(
        f"{owner}: callback {callable_name(entry.fn)} on event '{entry.event}' {problem}. Fix: {fix}"
    )


def unknown_event_error(owner: str, entry: CallbackEntry, methods: dict[str, MethodInfo]) -> CallbackError:
    """The error for an event no method of the class is the source of, with the closest valid events."""
    phase, event = parse_event(entry.event) or ("pre", entry.event)
    close = difflib.get_close_matches(event, list(methods), n=3, cutoff=0.5)
    suggestions = " or ".join(repr(f"{phase}-{c}") for c in close)
    hint = f"did you mean {suggestions}?" if close else "check the method name."
    events = ", ".join(sorted(methods)) or "none"
    return _fail(
        owner,
        entry,
        f"names an unknown event ({owner} has events for: {events})",
        f"{hint} An event is 'pre-', 'post-' or 'error-' followed by a public method name.",
    )


def bind_callback(owner: str, entry: CallbackEntry, methods: dict[str, MethodInfo]) -> CallSpec:
    """Check `entry` against the method its event names; raise `CallbackError` saying what to change."""
    parsed = parse_event(entry.event)
    if parsed is None:
        phase, sep, rest = entry.event.partition("_")
        hint = f"write '{phase}-{rest}'" if sep and phase in PHASES and rest else "e.g. 'pre-step'"
        raise _fail(
            owner,
            entry,
            "has an event name without a valid prefix",
            f"start the event with 'pre-', 'post-' or 'error-' ({hint}).",
        )
    phase, event = parsed
    method = methods.get(event)
    if method is None:
        raise unknown_event_error(owner, entry, methods)
    fn = entry.fn
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise _fail(
            owner, entry, f"has no readable signature ({exc})", "use a def function or a lambda."
        ) from None
    params = list(signature.parameters.values())
    for param in params:
        if param.kind in _VAR_KINDS:
            raise _fail(
                owner,
                entry,
                f"takes *{param.name} / **{param.name}",
                "name the parameters you need explicitly; callbacks may not take *args or **kwargs.",
            )
        if param.default is not inspect.Parameter.empty:
            raise _fail(
                owner,
                entry,
                f"gives parameter '{param.name}' a default value",
                "remove the default: the dispatcher always passes every parameter the callback names.",
            )
    if not params or params[0].kind is inspect.Parameter.KEYWORD_ONLY:
        raise _fail(
            owner,
            entry,
            "does not take the instance as its first parameter",
            "write it as fn(self, ...).",
        )
    rest = params[1:]
    if phase == "pre":
        allowed = method.named_params
        for param in rest:
            if param.name not in allowed:
                accepted = ", ".join(allowed) or "nothing but self"
                raise _fail(
                    owner,
                    entry,
                    f"takes '{param.name}', which is not a parameter of {method.describe(owner)}",
                    f"a pre callback may take any of: {accepted}.",
                )
    elif len(rest) > 1:
        what = "the exception" if phase == "error" else "the return value"
        raise _fail(
            owner,
            entry,
            f"takes {len(params)} parameters",
            f"a {phase} callback takes (self) to observe, or (self, value) to receive {what}.",
        )
    is_async = is_coroutine_callable(fn)
    if is_async and not method.is_async:
        raise _fail(
            owner,
            entry,
            f"is a coroutine function but {method.describe(owner)} is not async",
            "use a plain function, or hook an `async def` method.",
        )
    names = tuple(p.name for p in rest) if phase == "pre" else ()
    keyword = frozenset(p.name for p in rest if p.kind is inspect.Parameter.KEYWORD_ONLY and phase == "pre")
    return CallSpec(
        entry=entry,
        phase=phase,
        method=method.name,
        names=names,
        keyword_names=keyword,
        takes_value=phase != "pre" and len(rest) == 1,
        is_async=is_async,
    )
