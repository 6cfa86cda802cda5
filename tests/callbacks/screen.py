"""A minimal terminal: what text with carriage returns, newlines and cursor-up/erase codes leaves on screen.

Lines longer than the terminal wrap, as on a real one (so a bar that is too wide shows up as debris)."""

from __future__ import annotations

import re

_CSI = re.compile(r"\x1b\[(\d*)([A-Za-z])")


def render(raw: str, width: int = 80) -> list[str]:
    """The screen's lines after ``raw`` is written to a terminal ``width`` columns wide (lines wrap)."""
    lines = [""]
    row = col = 0
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\x1b":
            match = _CSI.match(raw, i)
            assert match, f"unknown escape sequence at {raw[i : i + 8]!r}"
            count, command = int(match.group(1) or 1), match.group(2)
            if command == "A":
                row = max(0, row - count)
            elif command == "K":
                lines[row] = lines[row][:col]
            i = match.end()
            continue
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row, col = row + 1, 0
        else:
            if col >= width:
                row, col = row + 1, 0
            while len(lines) <= row:
                lines.append("")
            line = lines[row].ljust(col)
            lines[row] = line[:col] + ch + line[col + 1 :]
            col += 1
        while len(lines) <= row:
            lines.append("")
        i += 1
    return [line.rstrip() for line in lines if line.strip()]
