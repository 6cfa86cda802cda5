"""Generate the dispatch function of one method for one chain of callbacks.

The generated function has the method's exact signature, so arguments arrive already bound
(defaults applied) in local variables. Every callback call is written out in order: no loop,
no `inspect` and no argument binding at call time. A class-level dispatcher fires only when it
is the most derived implementation for `type(self)`; called through `super()` it forwards to
the raw method, so a chain fires once per call made from outside.

A chain longer than `CHUNK_SIZE` is written as calls to chunk functions of at most `CHUNK_SIZE`
callbacks each. Chunks are reused from the dispatcher being replaced when their callbacks are
the same, so a change to a long chain compiles only the chunks it touched (appending to a chain
of n callbacks no longer compiles n calls).
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
CHUNKS_ATTR = "__al_chunks__"
CHUNK_SIZE = 32


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


_TYPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError)


def _blame_tuple(self: Any, exc: BaseException, changed: tuple[tuple[str, Any, Any, tuple], ...]) -> None:
    """After the method raised: if a pre callback turned a parameter into a tuple (`return batch,`), say so.

    `changed` holds (name, value before the pre callbacks, value after, the pre callbacks taking only that
    parameter). Checked only when the method fails with the kind of error a wrong type gives, so a chain
    that behaves costs nothing extra.
    """
    if not isinstance(exc, _TYPE_ERRORS) or isinstance(exc, CallbackError):
        return
    for name, old, new, specs in changed:
        if type(new) is tuple and type(old) is not tuple:
            culprit = " or ".join(spec.label for spec in specs)
            raise CallbackError(
                f"{type(self).__name__}: {culprit} takes one parameter ('{name}', a {_short_type(old)}) and "
                f"must return its new value, but a tuple of {len(new)} ({new!r:.60}) came back, and "
                f"the method then failed ({type(exc).__name__}: {exc}). Fix: `return {name}` - no "
                "trailing comma and no second value."
            ) from exc


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


def _call_source(params: list[inspect.Parameter], current: dict[str, str] | None = None) -> str:
    """The arguments passing `params` on; `current` maps a parameter to the local holding its value now."""
    current = current or {}
    parts = []
    for param in params:
        value = current.get(param.name, param.name)
        if param.kind is _P.VAR_POSITIONAL:
            parts.append(f"*{param.name}")
        elif param.kind is _P.VAR_KEYWORD:
            parts.append(f"**{param.name}")
        elif param.kind is _P.KEYWORD_ONLY:
            parts.append(f"{param.name}={value}")
        else:
            parts.append(value)
    return ", ".join(parts)


class _Writer:
    def __init__(self, prefix: str, namespace: dict[str, Any]) -> None:
        self.p = prefix
        self.ns = namespace
        self.lines: list[str] = []

    def name(self, key: str, value: Any) -> str:
        self.ns[self.p + key] = value
        return self.p + key

    def fresh(self) -> str:
        """A new local variable name."""
        self.locals = getattr(self, "locals", 0) + 1
        return f"{self.p}a{self.locals}"

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


def _write_pre(
    w: _Writer, depth: int, specs: Sequence[CallSpec], self_name: str, current: dict[str, str]
) -> None:
    """Call each pre callback in turn. What one returns goes to a new local and `current` (parameter name
    -> local holding its value now) is updated, so the parameters themselves keep their original values."""
    p = w.p
    for i, spec in enumerate(specs):
        fn = w.name(f"pre{i}", spec.entry.fn)
        label = w.name(f"pspec{i}", spec)
        given = [current[n] for n in spec.names]
        args = [self_name] + [
            f"{n}={v}" if n in spec.keyword_names else v for n, v in zip(spec.names, given, strict=True)
        ]
        call = f"{'await ' if spec.is_async else ''}{fn}({', '.join(args)})"
        if not spec.names:
            w.guarded_call(depth, f"{p}v", call, label, self_name)
            w.line(depth, f"if {p}v is not None:")
            w.line(depth + 1, f"{p}value({self_name}, {label}, {p}v)")
        elif len(spec.names) == 1:
            name, new = spec.names[0], w.fresh()
            w.guarded_call(depth, new, call, label, self_name)
            w.line(depth, f"if {new} is None and {given[0]} is not None:")
            w.line(depth + 1, f"{p}forgot({self_name}, {label}, {name!r}, {given[0]})")
            current[name] = new
        else:
            w.guarded_call(depth, f"{p}v", call, label, self_name)
            w.line(depth, f"if type({p}v) is not tuple or len({p}v) != {len(spec.names)}:")
            w.line(depth + 1, f"{p}v = {p}tuple({self_name}, {label}, {p}v)")
            news = [w.fresh() for _ in spec.names]
            w.line(depth, f"{', '.join(news)} = {p}v")
            current.update(zip(spec.names, news, strict=True))


def _write_error(w: _Writer, depth: int, specs: Sequence[CallSpec], self_name: str, err: str) -> None:
    """Call each error callback with the exception (the caller re-raises it afterwards)."""
    for j, spec in enumerate(specs):
        fn = w.name(f"err{j}", spec.entry.fn)
        label = w.name(f"espec{j}", spec)
        args = f"{self_name}, {err}" if spec.takes_value else self_name
        w.guarded_call(depth, "", f"{'await ' if spec.is_async else ''}{fn}({args})", label, self_name)


def _write_post(w: _Writer, depth: int, specs: Sequence[CallSpec], self_name: str, result: str) -> None:
    """Call each post callback; one that takes the return value replaces it with what it returns."""
    p = w.p
    for k, spec in enumerate(specs):
        fn = w.name(f"post{k}", spec.entry.fn)
        label = w.name(f"qspec{k}", spec)
        args = f"{self_name}, {result}" if spec.takes_value else self_name
        call = f"{'await ' if spec.is_async else ''}{fn}({args})"
        w.guarded_call(depth, f"{p}v", call, label, self_name)
        if spec.takes_value:
            w.line(depth, f"if {p}v is None and {result} is not None:")
            w.line(depth + 1, f"{p}forgot({self_name}, {label}, 'the return value', {result})")
            w.line(depth, f"{result} = {p}v")
        else:
            w.line(depth, f"if {p}v is not None:")
            w.line(depth + 1, f"{p}value({self_name}, {label}, {p}v)")


def _new_writer(prefix: str) -> _Writer:
    w = _Writer(prefix, {})
    w.name("note", _add_note)
    w.name("value", _returned_value)
    w.name("forgot", _forgot_return)
    w.name("tuple", _fix_tuple)
    w.name("blame", _blame_tuple)
    return w


def _exec(w: _Writer, name: str, filename: str, keep_source: bool) -> Callable:
    source = "\n".join(w.lines) + "\n"
    if keep_source:  # class-level sources are few; keep them for readable tracebacks
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), w.ns)
    return w.ns[name]


_Chunks = dict[tuple[str, tuple[int, ...]], tuple[tuple[CallSpec, ...], Callable]]


def _chunk(
    info: MethodInfo, phase: str, specs: tuple[CallSpec, ...], prefix: str, reuse: _Chunks, used: _Chunks
) -> Callable:
    """A function running `specs` (at most CHUNK_SIZE callbacks of one phase), reused when unchanged.

    pre: `(self, *named params) -> tuple of them`; post: `(self, result) -> result`; error: `(self, exc)`.
    """
    key = (phase, tuple(id(spec) for spec in specs))
    found = reuse.get(key) or used.get(key)
    if found is not None and all(a is b for a, b in zip(found[0], specs, strict=True)):
        used[key] = found
        return found[1]
    w = _new_writer(prefix)
    params = list(info.signature.parameters.values())
    self_name = params[0].name
    keyword = "async def" if info.is_async else "def"
    if phase == "pre":
        names = info.named_params
        current = {n: n for n in names}
        w.line(0, f"{keyword} {prefix}chunk({', '.join([self_name, *names])}):")
        _write_pre(w, 1, specs, self_name, current)
        w.line(1, f"return ({''.join(current[n] + ', ' for n in names)})")
    elif phase == "post":
        w.line(0, f"{keyword} {prefix}chunk({self_name}, {prefix}r):")
        _write_post(w, 1, specs, self_name, f"{prefix}r")
        w.line(1, f"return {prefix}r")
    else:
        w.line(0, f"{keyword} {prefix}chunk({self_name}, {prefix}err):")
        _write_error(w, 1, specs, self_name, f"{prefix}err")
    filename = f"<arctic_like dispatch chunk {info.name} {phase} #{next(_counter)}>"
    function = _exec(w, f"{prefix}chunk", filename, keep_source=False)
    used[key] = (specs, function)
    return function


def _pieces(specs: Sequence[CallSpec]) -> list[tuple[CallSpec, ...]]:
    return [tuple(specs[i : i + CHUNK_SIZE]) for i in range(0, len(specs), CHUNK_SIZE)]


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
    reuse: Callable | None = None,
) -> Callable:
    """Build the dispatcher for `info` with these callbacks.

    With `owner`, the class-level function: it fires only for `type(self) is owner` (a super()
    call forwards to the raw method) and, with `routes`, hands the call to the instance's own
    chain when the instance has one. Without `owner`, an instance's chain: a plain function of
    `self` kept in the instance's `__dict__`; it holds no reference to the instance, so no cycle
    is made. `after(self)`, if given, runs last unless `after_unless.get(10) is False` (the
    class-level `__init__` logs the chain with it; the dict is the logger's level cache).
    `reuse`: the dispatcher this one replaces, whose chunks are taken over where unchanged.
    """
    params = list(info.signature.parameters.values())
    self_name = params[0].name
    prefix = _prefix_for([p.name for p in params])
    w = _new_writer(prefix)
    p = prefix
    aw = "await " if info.is_async else ""
    raw = w.name("raw", info.raw)
    chunked = len(pre) + len(post) + len(error) > CHUNK_SIZE
    old_chunks: _Chunks = getattr(reuse, CHUNKS_ATTR, None) or {}
    chunks: _Chunks = {}

    param_src = _param_source(params, w.ns, prefix)
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

    current = {n: n for n in info.named_params}
    if not chunked:
        _write_pre(w, 1, pre, self_name, current)
    else:
        names = info.named_params
        for i, piece in enumerate(_pieces(pre)):
            fn = w.name(f"cpre{i}", _chunk(info, "pre", piece, prefix, old_chunks, chunks))
            call = f"{aw}{fn}({', '.join([self_name, *(current[n] for n in names)])})"
            news = [w.fresh() for _ in names]
            w.line(1, f"({''.join(n + ', ' for n in news)}) = {call}" if names else call)
            current.update(zip(names, news, strict=True))
    singles: dict[str, list[CallSpec]] = {}
    for spec in pre:
        if len(spec.names) == 1:
            singles.setdefault(spec.names[0], []).append(spec)
    changed = [
        f"({name!r}, {name}, {current[name]}, {w.name(f'b{i}', tuple(specs))})"
        for i, (name, specs) in enumerate(singles.items())
    ]
    blame = f"{p}blame({self_name}, {p}err, ({', '.join(changed)},))" if changed else ""

    raw_call = f"{aw}{raw}({_call_source(params, current)})"
    if not post and not error and after is None:
        if blame:
            w.line(1, "try:")
            w.line(2, f"return {raw_call}")
            w.line(1, f"except BaseException as {p}err:")
            w.line(2, blame)
            w.line(2, "raise")
        else:
            w.line(1, f"return {raw_call}")
    else:
        if error or blame:
            w.line(1, "try:")
            w.line(2, f"{p}r = {raw_call}")
            w.line(1, f"except BaseException as {p}err:")
            if not chunked:
                _write_error(w, 2, error, self_name, f"{p}err")
            for i, piece in enumerate(_pieces(error) if chunked else []):
                fn = w.name(f"cerr{i}", _chunk(info, "error", piece, prefix, old_chunks, chunks))
                w.line(2, f"{aw}{fn}({self_name}, {p}err)")
            if blame:
                w.line(2, blame)
            w.line(2, "raise")
        else:
            w.line(1, f"{p}r = {raw_call}")
        if not chunked:
            _write_post(w, 1, post, self_name, f"{p}r")
        for i, piece in enumerate(_pieces(post) if chunked else []):
            fn = w.name(f"cpost{i}", _chunk(info, "post", piece, prefix, old_chunks, chunks))
            w.line(1, f"{p}r = {aw}{fn}({self_name}, {p}r)")
        if after is not None:
            depth = 1
            if after_unless is not None:
                w.line(1, f"if {w.name('unless', after_unless)}.get(10) is not False:")
                depth = 2
            w.line(depth, f"{w.name('after', after)}({self_name})")
        w.line(1, f"return {p}r")

    where = owner.__name__ if owner is not None else "instance chain"
    filename = f"<arctic_like dispatch {where}.{info.name} #{next(_counter)}>"
    function = _exec(w, info.name, filename, keep_source=owner is not None)
    functools.update_wrapper(function, info.raw)
    setattr(function, RAW_ATTR, info.raw)
    setattr(function, ROUTES_ATTR, routes)
    if chunks:
        setattr(function, CHUNKS_ATTR, chunks)
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
