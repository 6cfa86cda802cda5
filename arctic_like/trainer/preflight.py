"""Checks a run passes before the trainer builds anything, so a mistake is reported in a second, not after
the data and the model are built.

What can be checked from the recipe alone: the directories the run will write to (they must be directories,
or creatable, and writable), the engine's package and the DeepSpeed config it will build, the ``compile:``
backend (and a C++ compiler for inductor on CPU), the checkpoints named by ``resume_from``, and the recipe's
``callbacks:`` (imported and constructed here, then attached at ``post-init``). The model's settings (type,
keys, size, local directory) are checked earlier still, when the recipe is validated. What needs the built
parts (a checkpoint's checksums and shapes, the data size) is checked while building, which writes nothing
either.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from arctic_like.checkpoint.manifest import check_exists
from arctic_like.config import RecipeError, TrainerConfig, resolve_factory
from arctic_like.engine.base import launched_world_size
from arctic_like.engine.compiling import check_compile
from arctic_like.engine.deepspeed_config import build_deepspeed_config
from arctic_like.integrations.hf import resolve_recipe_callbacks

__all__ = ["check_writable_dir", "output_dirs", "preflight"]


def preflight(trainer_cls: type, config: TrainerConfig) -> list[Any]:
    """Run every check; returns the recipe's callbacks, constructed. Raises a ``RecipeError``,
    ``CheckpointError`` or ``CallbackSpecError`` naming the problem and the fix."""
    for what, path in output_dirs(trainer_cls, config):
        check_writable_dir(path, what)
    _check_engine(config)
    if config.compile is not None:
        import torch

        on_gpu = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
        check_compile(config.compile, "cuda" if on_gpu else "cpu")
    for cfg in config.checkpoint:
        resume_from = getattr(cfg, "resume_from", None)
        if resume_from is not None:
            check_exists(Path(resume_from))
    return resolve_recipe_callbacks(config)


def output_dirs(trainer_cls: type, config: TrainerConfig) -> list[tuple[str, Path]]:
    """``(setting, directory)`` for every directory the run writes to."""
    out = Path(config.output_dir)
    dirs = [("output_dir", out)]
    data = config.data
    if getattr(data, "use_cache", False):
        dirs.append(("data.cache_dir", Path(data.cache_dir) if data.cache_dir else out / "data-cache"))
    for i, cfg in enumerate(config.checkpoint):
        engine = resolve_factory(trainer_cls, "checkpoint", cfg.type)
        given = getattr(cfg, "output_dir", None)
        dirs.append((f"checkpoint[{i}].output_dir", Path(given) if given else out / engine.default_subdir))
    return dirs


def check_writable_dir(path: Path, what: str) -> None:
    """Raise a ``RecipeError`` unless ``path`` is a writable directory or can be created as one."""
    if path.exists() and not path.is_dir():
        raise RecipeError(
            f"{what}: {path} is a file, not a directory. Fix: give a directory path, or move the file away.",
            path=what,
        )
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RecipeError(
            f"{what}: {path} cannot be created because {existing} is a file. Fix: choose another path.",
            path=what,
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        detail = "is not writable" if existing == path else f"cannot be created: {existing} is not writable"
        raise RecipeError(
            f"{what}: {path} {detail}. Fix: choose a directory you can write to, or change its permissions.",
            path=what,
        )


def _check_engine(config: TrainerConfig) -> None:
    if config.engine != "deepspeed":
        return
    if importlib.util.find_spec("deepspeed") is None:
        raise RecipeError(
            "engine: deepspeed needs the deepspeed package, which is not installed. "
            "Fix: pip install 'arctic-like[deepspeed]', or set engine: torch.",
            path="engine",
        )
    try:  # the DeepSpeed config the engine will build, for the world size the launcher announced
        build_deepspeed_config(config, launched_world_size())
    except ValueError as error:
        raise RecipeError(str(error), path="deepspeed") from None
