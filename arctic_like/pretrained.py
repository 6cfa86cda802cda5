"""Where a ``name_or_path`` of a recipe points (a local ``save_pretrained`` folder or a Hugging Face Hub name)
and loading from it quietly.

Paths are resolved relative to the recipe's folder when the recipe is validated (later, the recipe's folder
is no longer known), and stored absolute. A value that can only be a path (``./m``, ``../m``, ``/m``,
``~/m``) and does not exist is an error at once; one that could also be a hub name (``org/model``) is kept as
given unless it is missing from the local Hugging Face cache while the hub is offline.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from huggingface_hub import constants, try_to_load_from_cache
from transformers.utils import logging as hf_logging

from arctic_like.config.parts import recipe_dir, resolve_recipe_path

__all__ = ["could_be_hub_name", "load_failure", "no_progress_bars", "resolve_pretrained"]

_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def could_be_hub_name(value: str) -> bool:
    """Whether ``value`` has the shape of a hub repository id (``name`` or ``org/name``)."""
    return bool(_HUB_NAME.fullmatch(value)) and ".." not in value and "--" not in value


def _where() -> str:
    base = recipe_dir.get()
    return f"relative to the recipe's folder {str(base)!r}" if base is not None else "relative to the cwd"


def resolve_pretrained(value: str, field: str) -> str:
    """``value`` as an absolute path when it is a local directory (relative to the recipe), else unchanged.

    ``field`` names the recipe key for the error (``model.name_or_path``).
    """
    local = resolve_recipe_path(Path(value))
    if local.is_dir():
        return str(local.resolve())
    if local.exists():
        raise ValueError(
            f"{value!r} is a file ({str(local)!r}), not a directory. Fix: point {field} at the folder "
            f"save_pretrained() wrote (the one holding config.json / tokenizer.json)."
        )
    what = field.partition(".")[0]
    fix = f"Fix: correct {field} (it is read {_where()}), or save the {what} there first."
    if not could_be_hub_name(value):
        raise ValueError(f"directory {str(local)!r} does not exist. {fix}")
    cached = any(try_to_load_from_cache(value, f) for f in ("config.json", "tokenizer_config.json"))
    if constants.HF_HUB_OFFLINE and not cached:
        raise ValueError(
            f"directory {str(local)!r} does not exist, and {value!r} is not in the local "
            f"Hugging Face cache (HF_HUB_OFFLINE is set). {fix}"
        )
    return value


def load_failure(value: str, what: str, field: str, error: Exception) -> ValueError:
    """A clear error for ``from_pretrained(value)`` failing with ``error`` (``what``: model or tokenizer)."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if Path(value).is_absolute() and Path(value).is_dir():
        return ValueError(
            f"cannot load a {what} from {value!r}: {reason} Fix: point {field} at a directory written by "
            f"save_pretrained()."
        )
    return ValueError(
        f"cannot load a {what} from {value!r}: it is not a local directory (relative paths are read from the "
        f"recipe's folder) and the Hugging Face Hub / cache gave: {reason} Fix: correct {field}, or save the "
        f"{what} to that directory first."
    )


@contextlib.contextmanager
def no_progress_bars() -> Iterator[None]:
    """Silence transformers' own progress bars ("Loading weights", "Writing model shards") for a while: in the
    middle of a run they would break into the trainer's console."""
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()
