"""Class-level dispatchers: compiled per class, optionally routing to instances' own chains.

A class whose chain has callbacks also logs that chain at post-init when debug logging is on;
the check reads the logger's level cache first, so it costs one dict lookup when it is off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from arctic_like.callback.codegen import compile_dispatch
from arctic_like.callback.spec import CallSpec, MethodInfo

logger = logging.getLogger("arctic_like.callback")
LOG_INIT_ATTR = "__al_log_init__"


def log_chain(obj: Any) -> None:
    """Show an instance's callbacks at post-init, at debug level."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s", obj.describe_callbacks())


def class_dispatcher(
    info: MethodInfo,
    chain: tuple[tuple[CallSpec, ...], ...],
    cls: type,
    *,
    routes: bool,
    log_init: bool,
) -> Callable:
    """The dispatcher installed on `cls` for one method."""
    pre, post, error = chain or ((), (), ())
    dispatcher = compile_dispatch(
        info,
        pre,
        post,
        error,
        owner=cls,
        routes=routes,
        after=log_chain if log_init else None,
        after_unless=getattr(logger, "_cache", None) if log_init else None,
    )
    setattr(dispatcher, LOG_INIT_ATTR, log_init)
    return dispatcher
