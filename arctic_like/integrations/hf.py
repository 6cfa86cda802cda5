"""Run HuggingFace ``TrainerCallback``s (and arctic_like's own callbacks) inside an arctic_like trainer.

:class:`HFCallbackSupport` installs ordinary ``(event, fn)`` entries on the trainer's ``callbacks`` list that
translate its CallbackMixin events into HF's lifecycle (see ``docs/huggingface.md`` for the table), and calls
the HF events through ``trainer.callback_handler``, a ``transformers`` ``CallbackHandler``: each callback
gets ``(args, state, control, **kwargs)`` exactly as in HF's ``Trainer``; a returned control replaces ours.

Integration into a trainer class is one line: ``class Trainer(HFCallbackSupport, CallbackMixin)``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from transformers import TrainingArguments
from transformers.trainer_callback import ExportableState

from arctic_like.integrations.hf_args import HFArgs, training_arguments_from_config
from arctic_like.integrations.hf_handler import (
    HF_EVENTS,
    TrainerCallbackHandler,
    _inherited_noop,
    check_event_names,
    describe,
)

__all__ = [
    "HF_EVENT_MAP",
    "CallbackSpecError",
    "CallbackStateError",
    "HFArgs",
    "HFCallbackSupport",
    "TrainerCallbackHandler",
    "import_object",
    "resolve_callback_spec",
    "training_arguments_from_config",
]

logger = logging.getLogger("arctic_like.integrations.hf")

# arctic_like event -> HF events it fires, for documentation and `arctic-like callbacks`. `post-step` fires
# `on_step_end` after a micro-batch that ended an optimizer step, `on_substep_end` after any other one.
HF_EVENT_MAP: dict[str, tuple[str, ...]] = {
    "post-init": ("on_init_end",),
    "pre-train": ("on_train_begin",),
    "post-train": ("on_train_end",),
    "pre-epoch": ("on_epoch_begin",),
    "post-epoch": ("on_epoch_end",),
    "pre-step": ("on_step_begin",),
    "pre-optimizer-step": ("on_pre_optimizer_step",),
    "post-optimizer-step": ("on_optimizer_step",),
    "post-step": ("on_substep_end", "on_step_end"),
    "post-log": ("on_log",),
    "post-evaluate": ("on_evaluate",),
    "post-checkpoint": ("on_save",),
    "post-prediction-step": ("on_prediction_step",),
}

CONTROL_KEY = "TrainerControl"
"""Key of the trainer's ``TrainerControl`` among the callback states (as in HF's ``stateful_callbacks``)."""


class CallbackSpecError(ValueError):
    """A recipe ``callbacks:`` entry that cannot be turned into a callback."""


class CallbackStateError(ValueError):
    """Two stateful callbacks would be saved under the same key."""


def import_object(path: str) -> Any:
    """Import ``pkg.mod.Name`` or ``pkg.mod:Name`` and return the object."""
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
    else:
        module_name, _, attr_path = path.rpartition(".")
    if not module_name or not attr_path:
        raise CallbackSpecError(
            f"callback path {path!r} is not an import path. Fix: write it as 'package.module.ClassName'."
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CallbackSpecError(
            f"callback path {path!r}: cannot import module {module_name!r} ({exc}). "
            "Fix: check the spelling, install the package, or load the file with the recipe's `code:`."
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise CallbackSpecError(
                f"callback path {path!r}: module {module_name!r} has no attribute {part!r}. "
                "Fix: check the class name."
            ) from exc
    return obj


def resolve_callback_spec(spec: Any) -> Any:
    """Turn one recipe ``callbacks:`` entry into a callback instance.

    Accepted: an import path string, a mapping or object with ``path`` and optional ``kwargs``, a callback
    class, or a callback instance.
    """
    if isinstance(spec, str):
        path, kwargs = spec, {}
    elif isinstance(spec, dict):
        unknown = set(spec) - {"path", "kwargs"}
        if "path" not in spec or unknown:
            raise CallbackSpecError(
                f"callback entry {spec!r} must have a 'path' and optional 'kwargs' "
                f"(got keys {sorted(spec)}). "
                "Fix: write {path: package.module.Class, kwargs: {...}}."
            )
        path, kwargs = spec["path"], dict(spec.get("kwargs") or {})
    elif hasattr(spec, "path") and not isinstance(spec, type):
        path, kwargs = spec.path, dict(getattr(spec, "kwargs", None) or {})
    else:
        return spec() if isinstance(spec, type) else spec
    target = import_object(str(path))
    if not callable(target):
        raise CallbackSpecError(f"callback path {path!r} names {target!r}, which cannot be called.")
    try:
        return target(**kwargs)
    except TypeError as exc:
        raise CallbackSpecError(
            f"callback {path!r} rejected kwargs {sorted(kwargs)}: {exc}. "
            "Fix: use the arguments its class accepts."
        ) from exc


def resolve_recipe_callbacks(config: Any) -> list[Any]:
    """The instances of a recipe's ``callbacks:``, in order. An entry that cannot be imported or built (wrong
    kwargs, or its ``__init__`` raising) is a ``CallbackSpecError`` naming the entry and the callback."""
    callbacks = []
    for i, spec in enumerate(getattr(config, "callbacks", None) or []):
        try:
            callbacks.append(resolve_callback_spec(spec))
        except CallbackSpecError as exc:
            raise CallbackSpecError(f"recipe callbacks[{i}]: {exc}") from exc
        except Exception as exc:
            name = getattr(spec, "path", None) or spec
            raise CallbackSpecError(
                f"recipe callbacks[{i}]: callback {name!r} raised {type(exc).__name__} while being created: "
                f"{exc}. Fix: check its kwargs, or run its constructor in Python to see the traceback."
            ) from exc
    return callbacks


def _is_stateful(cb: Any) -> bool:
    """Our own callbacks are stateful when they define ``state_dict``; HF ones via ``ExportableState``."""
    return callable(getattr(cb, "state_dict", None)) and callable(getattr(cb, "load_state_dict", None))


def _state_key(cb: Any) -> str:
    return str(getattr(cb, "state_key", None) or type(cb).__name__)


def _saved_under(cb: Any) -> str | None:
    """The key a callback's state is saved under in ``callback_states()``, None if it has no state.

    Several HF ``ExportableState`` callbacks of one class share their class name (stored as a list, as in
    HF); any other clash would lose a state."""
    if _is_stateful(cb):
        return _state_key(cb)
    if isinstance(cb, ExportableState):
        return type(cb).__name__
    return None


class HFCallbackSupport:
    """Mixin giving a CallbackMixin trainer HF-style callback management and the HF event bridge.

    It provides ``add_callback``, ``pop_callback``, ``remove_callback``, ``callback_handler``,
    ``callback_states``, ``load_callback_states``, ``hf_args`` and ``hf_callbacks``. Its
    ``post_init_callback`` resolves the recipe's ``callbacks:`` and fires ``on_init_end``. The bridge entries
    are appended to the trainer's ``callbacks`` when the first HF-style callback is added (or the handler is
    first used), so a trainer without any has none.
    """

    # ----- public API -------------------------------------------------------------------------------------
    @property
    def hf_callbacks(self) -> list[Any]:
        """The HF-style callbacks (HF's and arctic_like's own) in the order they run."""
        return self.__dict__.setdefault("_hf_callbacks", [])

    @property
    def callback_handler(self) -> TrainerCallbackHandler:
        """HF's ``CallbackHandler`` over ``hf_callbacks`` (as ``transformers.Trainer.callback_handler``)."""
        handler = self.__dict__.get("_hf_handler")
        if handler is None:
            self._hf_install()
            handler = self.__dict__["_hf_handler"] = TrainerCallbackHandler(self)
        return handler

    @property
    def hf_args(self) -> TrainingArguments:
        """The ``transformers.TrainingArguments`` HF callbacks receive, built from ``self.config``."""
        args = self.__dict__.get("_hf_args")
        if args is None:
            args = self.__dict__["_hf_args"] = self._build_hf_args(
                self.__dict__.get("_hf_args_overrides", {})
            )
        return args

    @hf_args.setter
    def hf_args(self, value: TrainingArguments) -> None:
        self.__dict__["_hf_args"] = value

    def update_hf_args(self, **overrides: Any) -> TrainingArguments:
        """Rebuild ``hf_args`` with ``overrides`` (fields the recipe has no counterpart for) on top."""
        merged = {**self.__dict__.get("_hf_args_overrides", {}), **overrides}
        self.__dict__["_hf_args"] = self._build_hf_args(merged)
        self.__dict__["_hf_args_overrides"] = merged
        return self.__dict__["_hf_args"]

    def _build_hf_args(self, overrides: dict[str, Any]) -> TrainingArguments:
        device = getattr(self, "device", None)
        return training_arguments_from_config(
            getattr(self, "config", None),
            horizon=getattr(self, "training_horizon", None),
            device=getattr(device, "type", None),
            **overrides,
        )

    def add_callback(self, callback: Any) -> Any:
        """Add an HF ``TrainerCallback`` or an arctic_like callback (class or instance); returns the instance.

        An ``on_*`` method that is not an HF event is rejected (``CallbackError``, with the closest event
        name); so is a stateful callback whose ``state_key`` is already taken. Adding a second callback of a
        class already attached warns, as HF's ``CallbackHandler.add_callback`` does.
        """
        cb = callback() if isinstance(callback, type) else callback
        check_event_names(cb)
        self._hf_install()
        key = _saved_under(cb)
        if key == CONTROL_KEY:
            raise CallbackStateError(
                f"cannot add {describe(cb)}: its state would be saved under {CONTROL_KEY!r}, where the "
                "trainer's TrainerControl is saved (as in HF). Fix: give it another `state_key`."
            )
        if key is not None:
            for other in self.hf_callbacks:
                if _saved_under(other) == key and (_is_stateful(cb) or _is_stateful(other)):
                    raise CallbackStateError(
                        f"cannot add {describe(cb)}: its state_key {key!r} is already used by "
                        f"{describe(other)} on this trainer. Fix: give one of them a different `state_key` "
                        f"(e.g. {type(cb).__name__}(..., state_key='{key}-2')) or remove the other first."
                    )
        if any(type(other) is type(cb) for other in self.hf_callbacks):
            logger.warning(
                "adding a second %s to this trainer; both will run. Callbacks now: %s",
                describe(cb),
                ", ".join(type(other).__name__ for other in self.hf_callbacks),
            )
        self.hf_callbacks.append(cb)
        self._hf_restore(len(self.hf_callbacks) - 1)
        cb = self.hf_callbacks[-1]
        if _is_ours(cb):
            cb.setup(self)
        return cb

    def pop_callback(self, callback: Any) -> Any | None:
        """Remove and return the first callback that is ``callback`` (or an instance of it, for a class)."""
        for cb in list(self.hf_callbacks):
            if (isinstance(callback, type) and isinstance(cb, callback)) or cb is callback:
                self.hf_callbacks.remove(cb)
                if _is_ours(cb) and callable(getattr(cb, "teardown", None)):
                    cb.teardown(self)
                return cb
        return None

    def remove_callback(self, callback: Any) -> None:
        """Remove the first callback that is ``callback`` (or an instance of it, for a class)."""
        self.pop_callback(callback)

    def callback_states(self) -> dict[str, Any]:
        """The state of every stateful callback and of the control, keyed like HF's ``stateful_callbacks``.

        Our callbacks are stored under their ``state_key``; HF ``ExportableState`` callbacks under their class
        name (a list when several share it), in HF's ``{"args": ..., "attributes": ...}`` form; the trainer's
        ``TrainerControl`` last, under ``"TrainerControl"``, as HF saves it. Also stored in
        ``state.stateful_callbacks``.
        """
        states: dict[str, Any] = {}
        for cb in self.hf_callbacks:
            if _is_stateful(cb):
                states[_state_key(cb)] = cb.state_dict()
            elif isinstance(cb, ExportableState):
                name = type(cb).__name__
                if name in states:
                    if not isinstance(states[name], list):
                        states[name] = [states[name]]
                    states[name].append(cb.state())
                else:
                    states[name] = cb.state()
        control = getattr(self, "control", None)
        if isinstance(control, ExportableState):
            states[CONTROL_KEY] = control.state()
        state = getattr(self, "state", None)
        if state is not None and hasattr(state, "stateful_callbacks"):
            state.stateful_callbacks = states
        return states

    def load_callback_states(self, states: dict[str, Any]) -> None:
        """Restore what ``callback_states()`` returned, into the callbacks attached now or added later.

        HF ``ExportableState`` callbacks are rebuilt from their stored args and attributes, as HF's resume
        does; ours get ``load_state_dict``; the control's flags are restored. A state whose callback is not
        attached yet (a checkpoint is loaded before the recipe's callbacks are added) waits for it; what is
        left at ``train()`` is reported.
        """
        states = dict(states)
        control_state = states.pop(CONTROL_KEY, None)
        control = getattr(self, "control", None)
        if control_state is not None and control is not None:
            for flag, value in control_state.get("args", {}).items():
                setattr(control, flag, value)
        pending = self.__dict__.setdefault("_hf_pending_states", {})
        pending.update(states)
        for i in range(len(self.hf_callbacks)):
            self._hf_restore(i)

    def _hf_restore(self, index: int) -> None:
        """Apply a pending stored state to the callback at ``index`` of ``hf_callbacks``, if there is one."""
        pending = self.__dict__.get("_hf_pending_states")
        if not pending:
            return
        cb = self.hf_callbacks[index]
        if _is_stateful(cb):
            key = _state_key(cb)
            if key in pending:
                cb.load_state_dict(pending.pop(key))
        elif isinstance(cb, ExportableState) and type(cb).__name__ in pending:
            name = type(cb).__name__
            items = pending[name] if isinstance(pending[name], list) else [pending[name]]
            data = items.pop(0)
            if isinstance(pending[name], list) and items:
                pending[name] = items
            else:
                del pending[name]
            new = type(cb)(**data.get("args", {}))
            for attr, value in data.get("attributes", {}).items():
                setattr(new, attr, value)
            self.hf_callbacks[index] = new

    def describe_hf_callbacks(self) -> str:
        """A table of the HF-style callbacks in run order, with the HF events each implements."""
        lines = ["HF-style callbacks (run order):"]
        for i, cb in enumerate(self.hf_callbacks, start=1):
            events = [e for e in sorted(HF_EVENTS) if _implements(cb, e)]
            lines.append(f"  {i:>2}  {describe(cb)}: {', '.join(events) or '(no events)'}")
        if len(lines) == 1:
            lines.append("  (none)")
        return "\n".join(lines)

    # ----- event bridge -----------------------------------------------------------------------------------
    def post_init_callback(self) -> None:
        """Add the recipe's ``callbacks:`` (the first installs the bridge), then fire ``on_init_end``.

        A trainer resolves them before building anything (``_recipe_callbacks``), so a broken one stops the
        run before a byte is written; other hosts resolve them here."""
        callbacks = self.__dict__.pop("_recipe_callbacks", None)
        if callbacks is None:
            callbacks = resolve_recipe_callbacks(getattr(self, "config", None))
        for cb in callbacks:
            self.add_callback(cb)
        self.call_hf_event("on_init_end")

    def call_hf_event(self, event: str, **kwargs: Any) -> Any:
        """Call ``event`` on every HF-style callback through HF's ``CallbackHandler``; a returned control
        replaces ours."""
        control = getattr(self, "control", None)
        if not self.hf_callbacks:
            return control
        result = getattr(self.callback_handler, event)(
            self.hf_args, getattr(self, "state", None), control, **kwargs
        )
        if result is not None and result is not control:
            control = self._hf_adopt_control(result)
        return control

    def _hf_adopt_control(self, result: Any) -> Any:
        """A returned control replaces ours: its flags are copied into the trainer's control object, which
        the loop may hold in a local variable; a control of a foreign type replaces ``self.control``."""
        current = getattr(self, "control", None)
        if current is not None and hasattr(result, "__dict__") and hasattr(current, "__dict__"):
            flags = {k: v for k, v in vars(result).items() if k.startswith("should_")}
            if flags:
                vars(current).update(flags)
                return current
        if current is not None:
            self.control = result
        return result

    def _hf_install(self) -> None:
        """Append the bridge entries to this trainer's ``callbacks`` once."""
        if self.__dict__.get("_hf_installed"):
            return
        self.__dict__["_hf_installed"] = True
        for event, fn in _BRIDGE:
            method = event.partition("-")[2].replace("-", "_")
            if callable(getattr(type(self), method, None)):
                self.callbacks.append((event, fn))

    def _hf_train_begin(self) -> None:
        leftover = self.__dict__.pop("_hf_pending_states", None)
        if leftover:
            logger.warning(
                "the checkpoint holds state for callbacks not attached to this run, ignored: %s",
                sorted(leftover),
            )
        if self.hf_callbacks:
            self.callback_handler.training_started()
        self.call_hf_event("on_train_begin")

    def _hf_step_begin(self) -> None:
        # The trainer's per-micro-batch flags: accumulation_start, accumulation_boundary, optimizer_stepped.
        if getattr(self, "accumulation_start", True):
            self.call_hf_event("on_step_begin")

    def _hf_step_end(self) -> None:
        if getattr(self, "optimizer_stepped", False):
            self.call_hf_event("on_step_end")
        elif not getattr(self, "accumulation_boundary", True):
            self.call_hf_event("on_substep_end")


def _is_ours(cb: Any) -> bool:
    """True for arctic_like callbacks, which get ``setup(trainer)``/``teardown(trainer)``."""
    return callable(getattr(cb, "setup", None)) and getattr(cb, "__arctic_like_callback__", False)


def implemented_hf_events(cb: Any, events: tuple[str, ...]) -> list[str]:
    """Those of the HF `events` that `cb` implements itself (not ``TrainerCallback``'s empty methods)."""
    return [event for event in events if _implements(cb, event)]


def _implements(cb: Any, event: str) -> bool:
    """True when ``cb`` has its own ``event`` method (not ``TrainerCallback``'s empty one)."""
    return getattr(cb, event, None) is not None and not _inherited_noop(cb, event)


class HFBridge:
    """The ``(event, fn)`` callbacks the bridge appends to a trainer; each ``fn(self)`` gets the trainer.

    A namespace of plain functions (not closures), so a trainer carrying them pickles.
    """

    def on_train_begin(self: HFCallbackSupport) -> None:
        self._hf_train_begin()

    def on_train_end(self: HFCallbackSupport) -> None:
        self.call_hf_event("on_train_end")

    def on_epoch_begin(self: HFCallbackSupport) -> None:
        self.call_hf_event("on_epoch_begin")

    def on_epoch_end(self: HFCallbackSupport) -> None:
        self.call_hf_event("on_epoch_end")

    def on_step_begin(self: HFCallbackSupport) -> None:
        self._hf_step_begin()

    def on_step_end(self: HFCallbackSupport) -> None:
        self._hf_step_end()

    def on_pre_optimizer_step(self: HFCallbackSupport) -> None:
        self.call_hf_event("on_pre_optimizer_step")

    def on_optimizer_step(self: HFCallbackSupport) -> None:
        self.call_hf_event("on_optimizer_step")

    def keep_logs(self: HFCallbackSupport, logs: Any) -> Any:
        self.__dict__.setdefault("_hf_logs", []).append(logs)
        return logs

    def on_log(self: HFCallbackSupport, value: Any) -> Any:
        # `log()` may return nothing: then the dict it was given (and possibly completed in place) is used.
        pending = self.__dict__.get("_hf_logs") or [None]
        logs = pending.pop()
        self.call_hf_event("on_log", logs=value if isinstance(value, dict) else logs)
        return value

    def evaluation_started(self: HFCallbackSupport) -> None:
        if self.hf_callbacks:
            self.callback_handler.eval_dataloader = getattr(self, "eval_dataloader", None)

    def on_evaluate(self: HFCallbackSupport, metrics: Any) -> Any:
        self.call_hf_event("on_evaluate", metrics=metrics)
        return metrics

    def on_save(self: HFCallbackSupport) -> None:
        self.call_hf_event("on_save")

    def on_prediction_step(self: HFCallbackSupport) -> None:
        self.call_hf_event("on_prediction_step")


_BRIDGE: list[tuple[str, Callable[..., Any]]] = [
    ("pre-train", HFBridge.on_train_begin),
    ("post-train", HFBridge.on_train_end),
    ("pre-epoch", HFBridge.on_epoch_begin),
    ("post-epoch", HFBridge.on_epoch_end),
    ("pre-step", HFBridge.on_step_begin),
    ("post-step", HFBridge.on_step_end),
    ("pre-optimizer-step", HFBridge.on_pre_optimizer_step),
    ("post-optimizer-step", HFBridge.on_optimizer_step),
    ("pre-log", HFBridge.keep_logs),
    ("post-log", HFBridge.on_log),
    ("pre-evaluate", HFBridge.evaluation_started),
    ("post-evaluate", HFBridge.on_evaluate),
    ("post-checkpoint", HFBridge.on_save),
    ("post-prediction-step", HFBridge.on_prediction_step),
]
for _event, _fn in _BRIDGE:
    _fn.__al_hf_bridge__ = True  # type: ignore[attr-defined]
