"""The recipe's ``log:`` section applied to this process: the level of the ``arctic_like`` loggers, whether
this rank prints its records, and its log file."""

from __future__ import annotations

import logging
from pathlib import Path

from arctic_like.config import LogConfig

__all__ = ["configure_run_logging"]

_PACKAGE = logging.getLogger("arctic_like")


class _Silenced(logging.Filter):
    """Lets only errors through a printing handler of a rank that does not print (``log.print_ranks``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


_SILENCED = _Silenced()
_installed: list[logging.Handler] = []


def configure_run_logging(config: LogConfig, rank: int) -> Path | None:
    """Apply ``config`` for global rank ``rank``; returns this rank's log file, if it writes one. Applying it
    again (another trainer in the process) replaces what the previous call set up."""
    if config.level is not None:
        _PACKAGE.setLevel(config.level)
    for handler in _PACKAGE.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            if config.prints(rank):
                handler.removeFilter(_SILENCED)
            else:
                handler.addFilter(_SILENCED)
    for handler in _installed:
        _PACKAGE.removeHandler(handler)
        handler.close()
    _installed.clear()
    if not config.writes(rank):
        return None
    assert config.dir is not None
    path = Path(config.dir) / f"rank_{rank}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _PACKAGE.addHandler(handler)
    _installed.append(handler)
    return path
