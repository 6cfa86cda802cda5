"""`obj.callbacks`: the per-instance chain, a list whose every change is validated and applied.

A change is validated on a copy first, so a rejected callback leaves the list as it was. After
a change, each method whose chain now differs from its class's gets a per-instance dispatcher
in the instance's `__dict__`; one whose chain is back to the class's loses it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, SupportsIndex

from arctic_like.callback.codegen import chain_key, compile_dispatch, routes_to_instances
from arctic_like.callback.dispatchers import LOG_INIT_ATTR, class_dispatcher
from arctic_like.callback.entry import CallbackEntry, make_entry, sort_by_order
from arctic_like.callback.plan import ClassPlan, group_by_method
from arctic_like.callback.spec import CallSpec, bind_callback

LOCK = threading.RLock()
_CHAIN_ATTR = "__al_chain__"


class CallbackList(list):
    """The callbacks in effect for one instance, in run order (inherited, declared, runtime)."""

    __slots__ = ("_owner_ref", "_owner_type", "_specs")

    def __init__(self, owner: Any, plan: ClassPlan) -> None:
        super().__init__(plan.entries)
        self._owner_ref = weakref.ref(owner)  # weak: the instance must be freed with its last reference
        self._owner_type = type(owner)
        self._specs: dict[int, CallSpec] = dict(plan.specs)

    def _edit(self, change: Callable[[list], Any]) -> Any:
        with LOCK:
            items = list(self)
            result = change(items)
            self._commit(items)
            return result

    def _commit(self, items: list) -> None:
        plan: ClassPlan = self._owner_type._al_plan
        name = self._owner_type.__name__
        entries: list[CallbackEntry] = []
        specs: dict[int, CallSpec] = {}
        for item in items:
            known = self._specs.get(id(item)) if isinstance(item, CallbackEntry) else None
            if known is None or known.entry is not item:
                item = make_entry(item, "runtime", name)
                known = bind_callback(name, item, plan.methods)
            entries.append(item)
            specs[id(item)] = known
        entries = sort_by_order(entries)
        list.__setitem__(self, slice(None), entries)
        self._specs = specs
        owner = self._owner_ref()
        if owner is not None:
            apply_to_instance(owner, plan, [specs[id(entry)] for entry in entries])

    def append(self, item: Any) -> None:
        self._edit(lambda items: items.append(item))

    def insert(self, index: SupportsIndex, item: Any) -> None:
        self._edit(lambda items: items.insert(index, item))

    def extend(self, items: Iterable[Any]) -> None:
        new = list(items)
        self._edit(lambda current: current.extend(new))

    def __iadd__(self, items: Iterable[Any]) -> CallbackList:
        self.extend(items)
        return self

    def remove(self, item: Any) -> None:
        self._edit(lambda items: items.remove(item))

    def pop(self, index: SupportsIndex = -1) -> Any:
        return self._edit(lambda items: items.pop(index))

    def clear(self) -> None:
        self._edit(lambda items: items.clear())

    def __setitem__(self, index: Any, value: Any) -> None:
        new = list(value) if isinstance(index, slice) else value
        self._edit(lambda items: items.__setitem__(index, new))

    def __delitem__(self, index: Any) -> None:
        self._edit(lambda items: items.__delitem__(index))

    def sort(self, *, key: Any = None, reverse: bool = False) -> None:
        self._edit(lambda items: items.sort(key=key, reverse=reverse))

    def reverse(self) -> None:
        self._edit(lambda items: items.reverse())

    def __imul__(self, count: SupportsIndex) -> CallbackList:
        self._edit(lambda items: items.__imul__(count))
        return self

    def __reduce__(self):
        return (list, (list(self),))


def apply_to_instance(owner: Any, plan: ClassPlan, specs: list[CallSpec]) -> None:
    """Give `owner` its own chain for each method whose callbacks now differ from its class's."""
    mine = group_by_method(specs)
    namespace = owner.__dict__
    cls = type(owner)
    for info in plan.methods.values():
        chain = mine.get(info.name, ((), (), ()))
        entries = tuple(spec.entry for phase in chain for spec in phase)
        class_entries = tuple(spec.entry for phase in plan.by_method.get(info.name, ()) for spec in phase)
        key = chain_key(info.name)
        if _same(entries, class_entries):
            namespace.pop(key, None)
            continue
        if _same(getattr(namespace.get(key), _CHAIN_ATTR, None), entries):
            continue
        if not routes_to_instances(cls.__dict__.get(info.name)):
            # From now on this class's method hands calls to instances that have their own chain.
            class_chain = plan.by_method.get(info.name, ((), (), ()))
            log_init = getattr(cls.__dict__.get(info.name), LOG_INIT_ATTR, False)
            routed = class_dispatcher(info, class_chain, cls, routes=True, log_init=log_init)
            type.__setattr__(cls, key, None)  # instances without a chain of their own read this
            type.__setattr__(cls, info.name, routed)
        own = compile_dispatch(info, *chain, reuse=namespace.get(key))
        setattr(own, _CHAIN_ATTR, entries)
        namespace[key] = own


def _same(a: tuple | None, b: tuple) -> bool:
    return a is not None and len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
