"""Name-keyed registry of trainers, factories and checkpoint engines.

A recipe names each part by ``type: <name>``; the registry turns that name into a class. A class is registered
under its ``name`` class attribute, and looked up through a *base* class: ``get(ModelFactory, "huggingface")``
returns the most recently registered subclass of ``ModelFactory`` whose ``name`` is ``"huggingface"``. Names
are therefore scoped by base (a ``huggingface`` model factory and a ``huggingface`` tokenizer factory
coexist), and registering a new subclass under an existing name replaces the old one for that base (how a user
overrides a built-in part).

Bases register their subclasses automatically: inherit from :class:`Registrable` (or call :func:`register`
from your own ``__init_subclass__``). Only classes that define ``name`` in their own body are registered, so
an intermediate abstract class without a ``name`` stays out of the registry.
"""

from __future__ import annotations

import difflib
import logging
from typing import Any, TypeVar

__all__ = ["Registrable", "RegistryError", "get", "names", "register", "unregister"]

logger = logging.getLogger("arctic_like.registry")

T = TypeVar("T", bound=type)

# name -> registered classes, oldest first (lookups scan newest first).
_REGISTRY: dict[str, list[type]] = {}


class RegistryError(ValueError):
    """A class name that is not registered, or a class that cannot be registered."""


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register(cls: T) -> T:
    """Register ``cls`` under its ``name`` class attribute; usable as a decorator.

    Re-registering a class with the same qualified name (a module imported twice, e.g. a recipe's ``code:``
    file) replaces the earlier entry instead of adding a duplicate.
    """
    if not isinstance(cls, type):
        raise RegistryError(f"register() expects a class, got {cls!r}. Fix: pass the class itself.")
    name = cls.__dict__.get("name", getattr(cls, "name", None))
    if not isinstance(name, str) or not name:
        raise RegistryError(
            f"cannot register {_qualname(cls)}: it has no `name` class attribute. "
            f'Fix: add `name = "my-name"` to the class body.'
        )
    entries = _REGISTRY.setdefault(name, [])
    entries[:] = [c for c in entries if _qualname(c) != _qualname(cls)]
    entries.append(cls)
    logger.debug("registered %s as %r", _qualname(cls), name)
    return cls


def unregister(cls: type) -> None:
    """Remove ``cls`` from the registry (used by tests and by code that replaces a class at runtime)."""
    entries = _REGISTRY.get(getattr(cls, "name", ""), [])
    if cls in entries:
        entries.remove(cls)


def names(base: type) -> list[str]:
    """Sorted names of the registered subclasses of ``base``."""
    return sorted(n for n, entries in _REGISTRY.items() if any(issubclass(c, base) for c in entries))


def get(base: type, name: str) -> type[Any]:
    """The class registered as ``name`` among the subclasses of ``base``.

    Raises :class:`RegistryError` naming the base, the name asked for, the names available and, when one is
    close, the likely intended name.
    """
    for cls in reversed(_REGISTRY.get(name, [])):
        if issubclass(cls, base):
            return cls
    available = names(base)
    msg = f"no {base.__name__} named {name!r}; available: {', '.join(available) or '(none registered)'}."
    close = difflib.get_close_matches(str(name), available, n=1)
    if close:
        msg += f" Did you mean {close[0]!r}?"
    msg += (
        f" Fix: use one of the available names, or define a {base.__name__} subclass with "
        f"`name = {name!r}` in a file listed under `code:` in the recipe."
    )
    raise RegistryError(msg)


class Registrable:
    """Mixin for registry bases: every subclass that defines its own ``name`` is registered on creation."""

    name: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            register(cls)
