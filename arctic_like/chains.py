"""What `arctic-like callbacks RECIPE` prints: every callback chain of a recipe's run, built from the classes
the recipe selects, without building the run.

A chain depends on the classes (their declared callbacks) and on what is attached at run time: the recipe's
`callbacks:` (their own hooks, and the HF bridge that calls their HF events). So the trainer, factories and
checkpoint engines are created without running their `__init__` (no data set, model or file), and the
recipe's callbacks are attached to that trainer as `post-init` would attach them. Entries a custom
`__init__` appends itself are not shown.
"""

from __future__ import annotations

from typing import Any

from arctic_like.callback import CallbackEntry
from arctic_like.callback.describe import callback_table
from arctic_like.callback.entry import callable_name
from arctic_like.config import TrainerConfig, resolve_factory
from arctic_like.integrations.hf import HF_EVENT_MAP, implemented_hf_events, resolve_recipe_callbacks

__all__ = ["describe_chains", "unbuilt_run"]

_PARTS = (
    ("data", "data_factory"),
    ("tokenizer", "tokenizer_factory"),
    ("model", "model_factory"),
    ("optimizer", "optimizer_factory"),
    ("scheduler", "scheduler_factory"),
)


def _unbuilt(cls: type, trainer: Any, config: Any) -> Any:
    obj = cls.__new__(cls)
    obj.trainer, obj.config = trainer, config
    return obj


def unbuilt_run(config: TrainerConfig) -> tuple[list[tuple[str, Any]], dict[int, str]]:
    """``(label, object)`` for the trainer and each factory and checkpoint engine in build order, created
    without their ``__init__``, the recipe's callbacks attached to the trainer; and, per entry they added
    (by ``id``), the callback that added it."""
    trainer_cls = config.trainer_class()
    trainer = trainer_cls.__new__(trainer_cls)
    trainer.config = config
    owners: list[tuple[str, Any]] = [("trainer", trainer)]
    for part, label in _PARTS:
        part_config = getattr(config, part)
        owners.append(
            (label, _unbuilt(resolve_factory(trainer_cls, part, part_config.type), trainer, part_config))
        )
    for i, cfg in enumerate(config.checkpoint):
        engine_cls = resolve_factory(trainer_cls, "checkpoint", cfg.type)
        owners.append((f"checkpoint_engines[{i}]", _unbuilt(engine_cls, trainer, cfg)))
    added_by: dict[int, str] = {}
    for i, cb in enumerate(resolve_recipe_callbacks(config)):
        before = {id(entry) for entry in trainer.callbacks}
        trainer.add_callback(cb)
        for entry in trainer.callbacks:
            if id(entry) not in before and not getattr(entry.fn, "__al_hf_bridge__", False):
                added_by[id(entry)] = f"recipe callbacks[{i}] ({type(cb).__name__})"
    return owners, added_by


def _trainer_rows(trainer: Any, added_by: dict[int, str], show_bridge: bool) -> tuple[list, dict[int, str]]:
    """The trainer's entries for display, with the HF bridge folded: one row per event naming the recipe
    callbacks' HF methods it calls (none: no row), unless `show_bridge`."""
    rows, names = [], {}
    for entry in trainer.callbacks:
        bridge = getattr(entry.fn, "__al_hf_bridge__", False)
        if id(entry) in added_by:
            entry = CallbackEntry(entry.event, entry.fn, added_by[id(entry)])
        elif bridge and not show_bridge:
            events = HF_EVENT_MAP.get(entry.event, ())
            called = [
                f"{type(cb).__name__}.{event}"
                for cb in trainer.hf_callbacks
                for event in implemented_hf_events(cb, events)
            ]
            if not called:
                continue
            entry = CallbackEntry(entry.event, entry.fn, "HF bridge (recipe callbacks)")
            names[id(entry)] = ", ".join(called)
        rows.append(entry)
    return rows, names


def describe_chains(config: TrainerConfig, *, show_bridge: bool = False) -> str:
    """Every chain of the recipe's run, per owner, in run order within each event."""
    owners, added_by = unbuilt_run(config)
    trainer = owners[0][1]
    blocks = []
    for label, obj in owners:
        entries, names = list(obj.callbacks), {}
        if label == "trainer":
            entries, names = _trainer_rows(trainer, added_by, show_bridge)
        table = callback_table(
            type(obj).__name__,
            entries,
            list(type(obj)._al_plan.methods),
            lambda entry, names=names: names.get(id(entry)) or callable_name(entry.fn),
        )
        blocks.append(f"[{label}] {table}")
    recipe = [
        f"{i}: {type(cb).__module__}.{type(cb).__qualname__}" for i, cb in enumerate(trainer.hf_callbacks)
    ]
    blocks.append("recipe callbacks: " + ("; ".join(recipe) if recipe else "none"))
    if show_bridge:
        blocks.append(trainer.describe_hf_callbacks())
    return "\n\n".join(blocks)
