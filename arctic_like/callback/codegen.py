"""Generate the dispatch function of one method for one chain of callbacks.

The generated function has the method's exact signature, so arguments arrive already bound
(defaults applied) in local variables. Every callback call is written out in order: no loop,
no `inspect` and no argument binding at call time. A class-level dispatcher fires only when it
is the most derived implementation for `type(self)`; called through `super()` it forwards to
the raw method, so a chain fires once per call made from outside.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import linecache
from collections.abc import Callable, Sequence
from typing import Any

from arctic_like.callback.errors import CallbackError
from arctic_like.callback.spec import CallSpec, MethodInfo

_P = inspect.Parameter
_counter = itertools.count()
RAW_ATTR = "__al_raw__"
INSTANCE_ATTR = "__al_instance__"
ROUTES_ATTR = "__al_routes__"


def _short_type(value: Any) -> str:
    return type(value).__name__


def _add_note(exc: BaseException, self: Any, spec: CallSpec) -> None:
    exc.add_note(f"arctic_like: raised in {spec.label} of {type(self).__name__}")


def _returned_value(self: Any, spec: CallSpec, value: Any) -> None:
    takes = "observes the call" if spec.phase == "post" else "takes no method parameter"
    raise CallbackError(
        f"{type(self).__name__}: {spec.label} {takes} but returned a {_short_type(value)} "
        f"({value!r:.60}). Fix: return None, or take the value you mean to change as a parameter."
    )


def _forgot_return(self: Any, spec: CallSpec, name: str, old: Any) -> None:
    raise CallbackError(
        f"{type(self).__name__}: {spec.label} returned None for '{name}', which was a "
        f"{_short_type(old)}. Fix: return the value (changed or not) - a callback that takes a value "
        "must return it; did you forget `return`?"
    )


def _fix_tuple(self: Any, spec: CallSpec, value: Any) -> tuple:
    count = len(spec.names)
    if isinstance(value, list) and len(value) == count:
        return tuple(value)
    got = f"a {_short_type(value)} of {len(value)}" if isinstance(value, tuple | list) else repr(value)[:60]
    raise CallbackError(
        f"{type(self).__name__}: {spec.label} takes {count} parameters ({', '.join(spec.names)}) and "
        f"must return a tuple of {count} values in that order; it returned {got}. "
        "Fix: `return " + ", ".join(spec.names) + "`."
    )


def _prefix_for(names: Sequence[str]) -> str:
    prefix = "_al_"
    while any(name.startswith(prefix) for name in names):
        prefix = "_" + prefix
    return prefix


def _param_source(params: list[inspect.Parameter], defaults: dict[str, Any], prefix: str) -> str:
    parts: list[str] = []
    kinds = [p.kind for p in params]
    star_written = _P.VAR_POSITIONAL in kinds
    for i, param in enumerate(params):
        if param.kind is _P.KEYWORD_ONLY and not star_written:
            parts.append("*")
            star_written = True
        if param.kind is _P.VAR_POSITIONAL:
            parts.append(f"*{param.name}")
        elif param.kind is _P.VAR_KEYWORD:
            parts.append(f"**{param.name}")
        elif param.default is not _P.empty:
            key = f"{prefix}d{i}"
            defaults[key] = param.default
            parts.append(f"{param.name}={key}")
        else:
            parts.append(param.name)
        nxt = kinds[i + 1] if i + 1 < len(kinds) else None
        if param.kind is _P.POSITIONAL_ONLY and nxt is not _P.POSITIONAL_ONLY:
            parts.append("/")
    return ", ".join(parts)


def _call_source(params: list[inspect.Parameter]) -> str:
    parts = []
    for param in params:
        if param.kind is _P.VAR_POSITIONAL:
            parts.append(f"*{param.name}")
        elif param.kind is _P.VAR_KEYWORD:
            parts.append(f"**{param.name}")
        elif param.kind is _P.KEYWORD_ONLY:
            parts.append(f"{param.name}={param.name}")
        else:
            parts.append(param.name)
    return ", ".join(parts)


class _Writer:
    def __init__(self, prefix: str, namespace: dict[str, Any]) -> None:
        self.p = prefix
        self.ns = namespace
        self.lines: list[str] = []

    def name(self, key: str, value: Any) -> str:
        self.ns[self.p + key] = value
        return self.p + key

    def line(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def guarded_call(self, depth: int, target: str, call: str, spec_name: str, self_name: str) -> None:
        """`target = call`, with any exception annotated with the callback that raised it."""
        p = self.p
        self.line(depth, "try:")
        self.line(depth + 1, f"{target} = {call}" if target else call)
        self.line(depth, f"except BaseException as {p}e:")
        self.line(depth + 1, f"{p}note({p}e, {self_name}, {spec_name})")
        self.line(depth + 1, "raise")


def chain_key(method_name: str) -> str:
    """The attribute holding an instance's own chain for one method (None on the class: no own chain)."""
    return f"_al_chain_{method_name}"


def compile_dispatch(
    info: MethodInfo,
    pre: Sequence[CallSpec],
    post: Sequence[CallSpec],
    error: Sequence[CallSpec],
    *,
    owner: type | None = None,
    routes: bool = False,
    after: Callable[[Any], None] | None = None,
    after_unless: dict | None = None,
) -> Callable:
    """Build the dispatcher for `info` with these callbacks.

    With `owner`, the class-level function: it fires only for `type(self) is owner` (a super()
    call forwards to the raw method) and, with `routes`, hands the call to the instance's own
    chain when the instance has one. Without `owner`, an instance's chain: a plain function of
    `self` kept in the instance's `__dict__`; it holds no reference to the instance, so no cycle
    is made. `after(self)`, if given, runs last unless `after_unless.get(10) is False` (the
    class-level `__init__` logs the chain with it; the dict is the logger's level cache).
    """
    params = list(info.signature.parameters.values())
    self_name = params[0].name
    prefix = _prefix_for([p.name for p in params])
    namespace: dict[str, Any] = {}
    w = _Writer(prefix, namespace)
    p = prefix
    aw = "await " if info.is_async else ""
    raw = w.name("raw", info.raw)
    w.name("note", _add_note)
    w.name("value", _returned_value)
    w.name("forgot", _forgot_return)
    w.name("tuple", _fix_tuple)

    param_src = _param_source(params, namespace, prefix)
    raw_args = _call_source(params)
    keyword = "async def" if info.is_async else "def"
    w.line(0, f"{keyword} {info.name}({param_src}):")
    if owner is not None:
        w.line(1, f"if type({self_name}) is not {w.name('owner', owner)}:")
        w.line(2, f"return {aw}{raw}({raw_args})")
        if routes:
            w.line(1, f"{p}own = {self_name}.{chain_key(info.name)}")
            w.line(1, f"if {p}own is not None:")
            w.line(2, f"return {aw}{p}own({raw_args})")

    for i, spec in enumerate(pre):
        fn = w.name(f"pre{i}", spec.entry.fn)
        label = w.name(f"pspec{i}", spec)
        args = [self_name] + [f"{n}={n}" if n in spec.keyword_names else n for n in spec.names]
        call = f"{'await ' if spec.is_async else ''}{fn}({', '.join(args)})"
        w.guarded_call(1, f"{p}v", call, label, self_name)
        if not spec.names:
            w.line(1, f"if {p}v is not None:")
            w.line(2, f"{p}value({self_name}, {label}, {p}v)")
        elif len(spec.names) == 1:
            name = spec.names[0]
            w.line(1, f"if {p}v is None and {name} is not None:")
            w.line(2, f"{p}forgot({self_name}, {label}, {name!r}, {name})")
            w.line(1, f"{name} = {p}v")
        else:
            w.line(1, f"if type({p}v) is not tuple or len({p}v) != {len(spec.names)}:")
            w.line(2, f"{p}v = {p}tuple({self_name}, {label}, {p}v)")
            w.line(1, f"{', '.join(spec.names)} = {p}v")

    raw_call = f"{aw}{raw}({raw_args})"
    if not post and not error and after is None:
        w.line(1, f"return {raw_call}")
    else:
        if error:
            w.line(1, "try:")
            w.line(2, f"{p}r = {raw_call}")
            w.line(1, f"except BaseException as {p}err:")
            for j, spec in enumerate(error):
                fn = w.name(f"err{j}", spec.entry.fn)
                label = w.name(f"espec{j}", spec)
                args = f"{self_name}, {p}err" if spec.takes_value else self_name
                w.guarded_call(2, "", f"{'await ' if spec.is_async else ''}{fn}({args})", label, self_name)
            w.line(2, "raise")
        else:
            w.line(1, f"{p}r = {raw_call}")
        for k, spec in enumerate(post):
            fn = w.name(f"post{k}", spec.entry.fn)
            label = w.name(f"qspec{k}", spec)
            args = f"{self_name}, {p}r" if spec.takes_value else self_name
            w.guarded_call(1, f"{p}v", f"{'await ' if spec.is_async else ''}{fn}({args})", label, self_name)
            if spec.takes_value:
                w.line(1, f"if {p}v is None and {p}r is not None:")
                w.line(2, f"{p}forgot({self_name}, {label}, 'the return value', {p}r)")
                w.line(1, f"{p}r = {p}v")
            else:
                w.line(1, f"if {p}v is not None:")
                w.line(2, f"{p}value({self_name}, {label}, {p}v)")
        if after is not None:
            depth = 1
            if after_unless is not None:
                w.line(1, f"if {w.name('unless', after_unless)}.get(10) is not False:")
                depth = 2
            w.line(depth, f"{w.name('after', after)}({self_name})")
        w.line(1, f"return {p}r")

    source = "\n".join(w.lines) + "\n"
    where = owner.__name__ if owner is not None else "instance chain"
    filename = f"<arctic_like dispatch {where}.{info.name} #{next(_counter)}>"
    if owner is not None:  # class-level sources are few; keep them for readable tracebacks
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    function = namespace[info.name]
    functools.update_wrapper(function, info.raw)
    setattr(function, RAW_ATTR, info.raw)
    setattr(function, ROUTES_ATTR, routes)
    if owner is None:
        setattr(function, INSTANCE_ATTR, True)
    return function


def raw_of(value: Any) -> Any:
    """The user's function behind a generated dispatcher (or `value` itself)."""
    return getattr(value, RAW_ATTR, value) if callable(value) else value


def is_dispatcher(value: Any) -> bool:
    return callable(value) and hasattr(value, RAW_ATTR)


def routes_to_instances(value: Any) -> bool:
    """True for a class-level dispatcher that hands calls to instances' own chains."""
    return getattr(value, ROUTES_ATTR, False) is True


def is_instance_dispatcher(value: Any) -> bool:
    return callable(value) and getattr(value, INSTANCE_ATTR, False) is True
