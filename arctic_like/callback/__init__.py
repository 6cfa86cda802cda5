"""The callback mechanism: `CallbackMixin` turns every public method into pre/post/error events.

Depends on nothing but the standard library.
"""

from arctic_like.callback.entry import CallbackEntry, run_first, run_last
from arctic_like.callback.errors import CallbackError
from arctic_like.callback.mixin import CallbackMeta, CallbackMixin
from arctic_like.callback.wrapper import callback_wrapper

__all__ = [
    "CallbackEntry",
    "CallbackError",
    "CallbackMeta",
    "CallbackMixin",
    "callback_wrapper",
    "run_first",
    "run_last",
]
