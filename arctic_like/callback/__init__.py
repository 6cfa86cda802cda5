"""Placeholder callback core (being replaced by the real implementation)."""

import abc
import functools
import inspect


class CallbackError(ValueError):
    pass


def callback_wrapper(name):
    def deco(fn):
        fn.__al_event__ = name
        return fn

    return deco


def _event_of(name):
    return {"__init__": "init", "__call__": "call"}.get(name, name.replace("_", "-"))


class CallbackMeta(abc.ABCMeta):
    def __new__(mcls, name, bases, ns, **kw):
        cls = super().__new__(mcls, name, bases, ns, **kw)
        for attr, fn in list(ns.items()):
            if not inspect.isfunction(fn) or attr.endswith("_callback"):
                continue
            if attr.startswith("_") and attr not in ("__init__", "__call__") and not hasattr(fn, "__al_event__"):
                continue
            setattr(cls, attr, _wrap(fn, getattr(fn, "__al_event__", _event_of(attr))))
        return cls


def _wrap(fn, event):
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        if "_callbacks" not in self.__dict__:
            cbs = []
            for k in reversed(type(self).__mro__):
                cbs += list(k.__dict__.get("callbacks", []) if isinstance(k.__dict__.get("callbacks"), list) else [])
                for a, v in k.__dict__.items():
                    if a.endswith("_callback") and a.startswith(("pre_", "post_")) and inspect.isfunction(v):
                        pre, _, rest = a[: -len("_callback")].partition("_")
                        cbs.append((f"{pre}-{rest.replace('_', '-')}", v))
            self.__dict__["_callbacks"] = cbs
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for ev, cb in list(self.__dict__["_callbacks"]):
            if ev.replace("_", "-") == f"pre-{event}":
                names = list(inspect.signature(cb).parameters)[1:]
                out = cb(self, *[bound.arguments[n] for n in names])
                if len(names) == 1:
                    bound.arguments[names[0]] = out
                elif names:
                    for n, v in zip(names, out, strict=True):
                        bound.arguments[n] = v
        result = fn(*bound.args, **bound.kwargs)
        for ev, cb in list(self.__dict__["_callbacks"]):
            if ev.replace("_", "-") == f"post-{event}":
                if len(inspect.signature(cb).parameters) == 2:
                    result = cb(self, result)
                else:
                    cb(self)
        return result

    return wrapper


class CallbackMixin(metaclass=CallbackMeta):
    @property
    def callbacks(self):
        if "_callbacks" not in self.__dict__:
            self.__dict__["_callbacks"] = []
        return self.__dict__["_callbacks"]
