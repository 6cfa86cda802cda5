"""`RecipeError`: a recipe that cannot be loaded, with where it went wrong."""

from __future__ import annotations

__all__ = ["RecipeError", "where"]


class RecipeError(ValueError):
    """A recipe that cannot be loaded; ``file``, ``line`` and ``path`` say where."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, path: str | None = None
    ):
        super().__init__(message)
        self.file, self.line, self.path = file, line, path


def where(file: str | None, line: int | None) -> str:
    """``file:line: `` (or ``file: ``, or nothing) to start a message about a place in a recipe."""
    if file and line:
        return f"{file}:{line}: "
    return f"{file}: " if file else ""
