"""Which callback slows my training? Time spent in every callback of the trainer and its factories."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from arctic_like.callback import CallbackMixin
from arctic_like.callbacks.base import Callback
from arctic_like.callbacks.loggers import JsonLogger

logger = logging.getLogger("arctic_like.callbacks.profiler")
_ORIGINAL = "__al_profiled__"


def _name(fn: Any) -> str:
    inner = getattr(fn, "__func__", fn)
    module = getattr(inner, "__module__", "") or ""
    qual = getattr(inner, "__qualname__", None) or type(inner).__qualname__
    return f"{module}.{qual}" if module and module != "builtins" else qual


def callback_owners(trainer: Any) -> Iterator[tuple[str, Any]]:
    """The trainer and every CallbackMixin object it holds (factories, checkpoint engines), with labels."""
    yield type(trainer).__name__, trainer
    for attr, value in list(vars(trainer).items()):
        items = value if isinstance(value, (list, tuple)) else [value]
        for i, item in enumerate(items):
            if isinstance(item, CallbackMixin) and item is not trainer:
                label = f"{attr}[{i}]" if isinstance(value, (list, tuple)) else attr
                yield f"{label}:{type(item).__name__}", item


class CallbackProfiler(Callback):
    """Time every ``(event, fn)`` callback of the trainer and its factories, and every HF-style callback.

    While attached it replaces each entry of ``obj.callbacks`` with a timing wrapper (same signature), and
    asks the HF bridge to time each HF callback; nothing is wrapped when it is not attached, so it costs
    nothing when off. At the end of training it logs a table (slowest first), prints it to ``file`` if
    given and writes it to the :class:`JsonLogger` as event ``callback_profile``. ``self.timings`` maps
    ``(owner, event, callback)`` to ``[calls, seconds]``.
    """

    def __init__(self, file: TextIO | None = None, top: int = 30) -> None:
        super().__init__()
        self.file = file
        self.top = top
        self.timings: dict[tuple[str, str, str], list[float]] = {}
        self._wrapped: list[tuple[Any, Callable[..., Any]]] = []

    def record(self, owner: str, event: str, name: str, seconds: float) -> None:
        """Add one call of ``seconds`` to the row ``(owner, event, name)``."""
        row = self.timings.setdefault((owner, event, name), [0, 0.0])
        row[0] += 1
        row[1] += seconds

    def _wrap(self, owner: str, event: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        name = _name(fn)
        record = self.record

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                record(owner, event, name, time.perf_counter() - start)

        setattr(timed, _ORIGINAL, fn)
        return timed

    def instrument(self) -> int:
        """Wrap each entry of the trainer's and its factories' callbacks not yet wrapped; return the count."""
        count = 0
        for owner, obj in callback_owners(self.trainer):
            entries = obj.callbacks
            for i, entry in enumerate(list(entries)):
                event, fn = entry[0], entry[1]
                if hasattr(fn, _ORIGINAL) or getattr(fn, "__al_hf_bridge__", False):
                    continue
                entries[i] = (event, self._wrap(owner, event, fn))
                self._wrapped.append((obj, fn))
                count += 1
        return count

    def restore(self) -> None:
        """Put the original callbacks back."""
        for _owner, obj in callback_owners(self.trainer):
            entries = obj.callbacks
            for i, entry in enumerate(list(entries)):
                original = getattr(entry[1], _ORIGINAL, None)
                if original is not None:
                    entries[i] = (entry[0], original)
        self._wrapped = []

    def setup(self, trainer: Any) -> None:
        super().setup(trainer)
        self.instrument()
        trainer.__dict__["_hf_timer"] = lambda event, name, seconds: self.record("hf", event, name, seconds)

    def teardown(self, trainer: Any) -> None:
        self.restore()
        trainer.__dict__.pop("_hf_timer", None)
        super().teardown(trainer)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.instrument()

    def rows(self) -> list[dict[str, Any]]:
        """The timings as dicts, slowest total first."""
        rows = [
            {
                "owner": owner,
                "event": event,
                "callback": name,
                "calls": int(calls),
                "total_ms": seconds * 1e3,
                "mean_ms": seconds * 1e3 / max(calls, 1),
            }
            for (owner, event, name), (calls, seconds) in self.timings.items()
        ]
        return sorted(rows, key=lambda r: r["total_ms"], reverse=True)

    def table(self) -> str:
        """A fixed-width text table of the slowest ``top`` rows."""
        rows = self.rows()[: self.top]
        header = f"{'total ms':>10} {'calls':>7} {'mean ms':>9}  {'event':<24} {'callback'}"
        lines = [header, "-" * len(header)]
        lines += [
            f"{r['total_ms']:>10.2f} {r['calls']:>7d} {r['mean_ms']:>9.3f}  {r['event']:<24} "
            f"{r['owner']}: {r['callback']}"
            for r in rows
        ]
        return "\n".join(lines)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        table = self.table()
        logger.info("callback profile:\n%s", table)
        if self.file is not None:
            print(f"callback profile:\n{table}", file=self.file, flush=True)
        json_logger = self.attached(JsonLogger)
        if json_logger is not None:
            json_logger.write("callback_profile", rows=self.rows()[: self.top])
