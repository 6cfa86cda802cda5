"""Fingerprints of what processed data depends on: file contents, code (callbacks, user classes), tokenizers.

A fingerprint is a hex digest that changes when the thing changes. Code is fingerprinted by its compiled
form (bytecode, constants, names; closure and referenced global values), so it works for functions defined
in a notebook or ``exec``'d code, and ignores comments. What cannot be fingerprinted raises
:class:`Unfingerprintable` with the reason; the data factory then bypasses its cache rather than risk stale
data.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import pickle
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "Unfingerprintable",
    "callable_fingerprint",
    "class_fingerprint",
    "digest",
    "path_fingerprint",
    "tokenizer_fingerprint",
    "value_fingerprint",
]

_SIMPLE = (type(None), bool, int, float, complex, str, bytes)


class Unfingerprintable(ValueError):
    """Something the processed data depends on that has no stable fingerprint (the message says what)."""


def digest(*parts: Any) -> str:
    """A hex digest of JSON-able ``parts``."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def path_fingerprint(path: Path) -> str:
    """The content of a file, of every file under a directory, or of every file a glob pattern matches
    (with their relative names); a missing path fingerprints as missing."""
    path = Path(path)
    if any(ch in str(path) for ch in "*?["):
        anchor = Path(path.anchor or ".")
        files = sorted(anchor.glob(str(path.relative_to(anchor)) if path.is_absolute() else str(path)))
        return digest([[str(f), _file_digest(f)] for f in files if f.is_file()])
    if path.is_file():
        return _file_digest(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.endswith(".lock"))
        return digest([[str(f.relative_to(path)), _file_digest(f)] for f in files])
    return digest(["missing", str(path)])


def _const_fingerprint(const: Any) -> Any:
    if isinstance(const, types.CodeType):
        return _code_fingerprint(const)
    if isinstance(const, tuple):
        return [_const_fingerprint(c) for c in const]
    if isinstance(const, frozenset):  # its repr's order depends on the process's hash seed
        return ["frozenset", sorted(repr(c) for c in const)]
    return repr(const)


def _code_fingerprint(code: types.CodeType) -> list[Any]:
    consts = [_const_fingerprint(c) for c in code.co_consts]
    return [code.co_code.hex(), consts, list(code.co_names), code.co_argcount, code.co_kwonlyargcount]


def _library(obj: Any) -> str | None:
    """``module.name`` (with the package version) of a function or class from the standard library, an
    installed package or ``arctic_like`` (whose changes bump ``CACHE_VERSION``); ``None`` for user code."""
    module_name = getattr(obj, "__module__", None) or ""
    root = module_name.split(".")[0]
    module = sys.modules.get(module_name)
    path = str(getattr(module, "__file__", "") or "")
    if root in sys.stdlib_module_names or root == "builtins":
        version = sys.version.split()[0]
    elif root == "arctic_like" or "site-packages" in path or "dist-packages" in path:
        version = getattr(sys.modules.get(root), "__version__", None)
    else:
        return None
    return f"{module_name}.{getattr(obj, '__qualname__', type(obj).__qualname__)}@{version}"


def value_fingerprint(value: Any, _seen: set[int] | None = None) -> Any:
    """A JSON-able stand-in for ``value`` that changes when it does (code included)."""
    seen = set() if _seen is None else _seen
    if isinstance(value, _SIMPLE):
        return repr(value)
    if isinstance(value, Path):
        return ["path", str(value)]
    if isinstance(value, types.ModuleType):
        return ["module", value.__name__]
    if id(value) in seen:
        return ["cycle"]
    seen.add(id(value))
    if isinstance(value, list | tuple):
        return [type(value).__name__, [value_fingerprint(v, seen) for v in value]]
    if isinstance(value, set | frozenset):
        return ["set", sorted(json.dumps(value_fingerprint(v, seen), default=str) for v in value)]
    if isinstance(value, dict):
        items = [[value_fingerprint(k, seen), value_fingerprint(v, seen)] for k, v in value.items()]
        return ["dict", sorted(items, key=lambda kv: json.dumps(kv, default=str))]
    if isinstance(value, type):
        return class_fingerprint(value, seen)
    if callable(value):
        return callable_fingerprint(value, seen)
    return _pickled(value)


def _pickled(value: Any) -> list[str]:
    try:
        return ["pickle", type(value).__qualname__, hashlib.blake2b(pickle.dumps(value)).hexdigest()]
    except Exception as error:
        raise Unfingerprintable(
            f"a value of type {type(value).__qualname__} cannot be pickled ({error})"
        ) from None


def _function_fingerprint(fn: types.FunctionType, seen: set[int]) -> list[Any]:
    code = fn.__code__
    closure = [value_fingerprint(cell.cell_contents, seen) for cell in fn.__closure__ or ()]
    names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        names.update(current.co_names)
        stack += [c for c in current.co_consts if isinstance(c, types.CodeType)]
    global_values = {
        name: value_fingerprint(fn.__globals__[name], seen)
        for name in sorted(names)
        if name in fn.__globals__
    }
    defaults = value_fingerprint(fn.__defaults__, seen), value_fingerprint(fn.__kwdefaults__, seen)
    return [f"{fn.__module__}.{fn.__qualname__}", _code_fingerprint(code), closure, global_values, defaults]


def _state(obj: Any) -> Any:
    """An object's attributes, or the object itself (pickled) when it has no ``__dict__``."""
    return vars(obj) if hasattr(obj, "__dict__") else obj


def callable_fingerprint(fn: Callable[..., Any], _seen: set[int] | None = None) -> Any:
    """What a callback computes: its qualified name and compiled code, closure and referenced global values;
    for ``functools.partial``, the function and its arguments; for a callable object, its class and state."""
    seen = set() if _seen is None else _seen
    library = _library(fn) if isinstance(fn, types.FunctionType | type) else None
    if library is not None:
        return ["library", library]
    if isinstance(fn, functools.partial):
        return [
            "partial",
            callable_fingerprint(fn.func, seen),
            value_fingerprint((fn.args, fn.keywords), seen),
        ]
    if isinstance(fn, types.MethodType):
        owner = fn.__self__
        # A factory's or source's own state is its config, already in the key; other objects count whole.
        state = None if hasattr(type(owner), "_al_plan") or isinstance(owner, type) else _state(owner)
        return [
            "method",
            callable_fingerprint(fn.__func__, seen),
            class_fingerprint(type(owner), seen),
            value_fingerprint(state, seen),
        ]
    if isinstance(fn, types.FunctionType):
        return _function_fingerprint(fn, seen)
    if isinstance(fn, types.BuiltinFunctionType | types.BuiltinMethodType):
        return ["builtin", getattr(fn, "__module__", None), fn.__qualname__]
    if hasattr(fn, "__dict__"):
        return ["object", class_fingerprint(type(fn), seen), value_fingerprint(vars(fn), seen)]
    return _pickled(fn)


def class_fingerprint(cls: type, _seen: set[int] | None = None) -> Any:
    """A class's qualified name and the fingerprint of the methods and public values defined in its body and
    its bases' bodies (library classes, ``arctic_like``'s included, count by name and version)."""
    seen = set() if _seen is None else _seen
    parts: list[Any] = [f"{cls.__module__}.{cls.__qualname__}"]
    for klass in cls.__mro__:
        if _library(klass) is not None:
            continue
        body = []
        for name, member in sorted(vars(klass).items()):
            code = inspect.isfunction(member) or isinstance(member, staticmethod | classmethod | property)
            if (name.startswith("__") and name not in ("__init__", "__call__")) or (
                name.startswith("_") and not code  # bookkeeping (the callback plan, abc caches)
            ):
                continue
            if inspect.isfunction(member) and _library(inspect.unwrap(member)) is not None:
                continue  # an inherited library method (an event dispatcher the mixin put here)
            body.append([name, _member_fingerprint(member, seen)])
        parts.append([klass.__qualname__, body])
    return parts


def _member_fingerprint(member: Any, seen: set[int]) -> Any:
    if isinstance(member, staticmethod | classmethod):
        return callable_fingerprint(member.__func__, seen)
    if isinstance(member, property):
        return [callable_fingerprint(f, seen) for f in (member.fget, member.fset) if f is not None]
    if inspect.isfunction(member):  # a method made an event is a dispatcher wrapping the method
        return callable_fingerprint(inspect.unwrap(member), seen)
    try:
        return value_fingerprint(member, seen)
    except Unfingerprintable:
        return ["opaque", type(member).__qualname__]


def tokenizer_fingerprint(tokenizer: Any, extra: Iterable[Any] = ()) -> str:
    """Everything of a tokenizer that changes token ids: its full ``tokenizers`` definition (vocabulary,
    merges, normalizer, pre-tokenizer, post-processor, added tokens) or vocabulary, special tokens and chat
    template."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    definition = backend.to_str() if backend is not None else sorted(tokenizer.get_vocab().items())
    return digest(
        type(tokenizer).__qualname__,
        definition,
        len(tokenizer),
        tokenizer.special_tokens_map,
        getattr(tokenizer, "chat_template", None),
        list(extra),
    )
