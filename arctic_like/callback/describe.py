"""A readable table of the callbacks in effect, per event, in run order."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from arctic_like.callback.entry import CallbackEntry, callable_name
from arctic_like.callback.events import PHASES


def callback_table(
    title: str,
    entries: Sequence[CallbackEntry],
    events: Sequence[str],
    name: Callable[[CallbackEntry], str] = lambda entry: callable_name(entry.fn),
) -> str:
    """One row per callback: event, position in its chain, `name(entry)` (by default the callback's qualified
    name), where it was declared."""
    order = {event: i for i, event in enumerate(events)}
    rows = [("event", "#", "callback", "declared in")]
    position: dict[str, int] = {}

    def rank(entry: CallbackEntry) -> tuple[int, int]:
        phase, _, event = entry.event.partition("-")
        return order.get(event, len(order)), PHASES.index(phase) if phase in PHASES else len(PHASES)

    ranked = sorted(entries, key=rank)
    for entry in ranked:
        position[entry.event] = position.get(entry.event, 0) + 1
        rows.append((entry.event, str(position[entry.event]), name(entry), entry.origin))
    if len(rows) == 1:
        return f"{title}: no callbacks"
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"{title} (run order within each event):"]
    for row in rows:
        lines.append(
            "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return "\n".join(lines)
