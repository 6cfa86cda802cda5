"""arctic_like: a training framework whose every building block is extensible through callbacks."""

from arctic_like.callback import CallbackError, CallbackMeta, CallbackMixin, callback_wrapper

__all__ = ["CallbackError", "CallbackMeta", "CallbackMixin", "callback_wrapper"]
__version__ = "0.1.0"
