"""Run HuggingFace ``TrainerCallback``s (and arctic_like's own callbacks) inside an arctic_like trainer.

The trainer never calls HF events itself: :class:`HFCallbackSupport` installs ordinary ``(event, fn)``
entries on the trainer's ``callbacks`` list that translate its CallbackMixin events into HF's lifecycle
(see ``docs/huggingface.md`` for the table). Each HF event is called with ``(args, state, control,
**kwargs)`` exactly as HF's ``CallbackHandler.call_event`` does; a returned control replaces the trainer's.

Integration into a trainer class is one line: ``class Trainer(HFCallbackSupport, CallbackMixin)``.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback, TrainingArguments
from transformers.trainer_callback import ExportableState

logger = logging.getLogger("arctic_like.integrations.hf")

# arctic_like event -> HF events it fires (in order), for documentation and `arctic-like callbacks`.
HF_EVENT_MAP: dict[str, tuple[str, ...]] = {
    "post-init": ("on_init_end",),
    "pre-train": ("on_train_begin",),
    "post-train": ("on_train_end",),
    "pre-epoch": ("on_epoch_begin",),
    "post-epoch": ("on_epoch_end",),
    "pre-step": ("on_step_begin",),
    "post-step": ("on_substep_end",),
    "pre-optimizer-step": ("on_pre_optimizer_step",),
    "post-optimizer-step": ("on_optimizer_step", "on_step_end"),
    "post-log": ("on_log",),
    "post-evaluate": ("on_evaluate",),
    "post-checkpoint": ("on_save",),
    "post-prediction-step": ("on_prediction_step",),
}


class CallbackSpecError(ValueError):
    """A recipe ``callbacks:`` entry that cannot be turned into a callback."""


class CallbackStateError(ValueError):
    """Two stateful callbacks would be saved under the same key."""


def _flow_exceptions() -> tuple[type[BaseException], ...]:
    """The trainer's control-flow exceptions, which must pass through untouched (imported late: the
    trainer package imports this module)."""
    from arctic_like.trainer.exceptions import TrainerFlowException

    return (TrainerFlowException,)


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


def _cfg(config: Any, name: str, default: Any = None) -> Any:
    value = getattr(config, name, default)
    return default if value is None else value


def training_arguments_from_config(config: Any, **overrides: Any) -> TrainingArguments:
    """Build a real ``transformers.TrainingArguments`` mirroring the recipe, for HF callbacks to read.

    ``overrides`` (for example ``metric_for_best_model="accuracy", greater_is_better=True``) win over the
    values taken from the recipe.
    """
    eval_steps = _cfg(config, "eval_steps")
    save_steps = _cfg(config, "save_steps")
    eval_strategy = _cfg(config, "eval_strategy", "steps" if eval_steps else "no")
    save_strategy = _cfg(config, "save_strategy", "steps" if save_steps else "no")
    if eval_strategy == "steps" and not eval_steps:
        eval_strategy = "no"
    if save_strategy == "steps" and not save_steps:
        save_strategy = "no"
    max_grad_norm = getattr(config, "max_grad_norm", 1.0)
    device = str(_cfg(config, "device", "auto"))
    kwargs: dict[str, Any] = {
        "output_dir": str(_cfg(config, "output_dir", "output")),
        "per_device_train_batch_size": int(_cfg(config, "micro_batch_size", 1)),
        "per_device_eval_batch_size": int(_cfg(config, "micro_batch_size", 1)),
        "gradient_accumulation_steps": int(_cfg(config, "gradient_accumulation_steps", 1)),
        "num_train_epochs": float(_cfg(config, "epochs", 1)),
        "max_steps": int(_cfg(config, "max_steps", -1)),
        "logging_strategy": _cfg(config, "logging_strategy", "steps"),
        "logging_steps": _cfg(config, "logging_steps", 10),
        "eval_strategy": eval_strategy,
        "save_strategy": save_strategy,
        "seed": int(_cfg(config, "seed", 42)),
        "max_grad_norm": float(max_grad_norm) if max_grad_norm is not None else 0.0,
        "use_cpu": device == "cpu",
        "disable_tqdm": not bool(getattr(config, "progress", True)),
        "report_to": "none",
    }
    optimizer = getattr(config, "optimizer", None)
    for ours, theirs in (("lr", "learning_rate"), ("weight_decay", "weight_decay")):
        if getattr(optimizer, ours, None) is not None:
            kwargs[theirs] = float(getattr(optimizer, ours))
    if eval_strategy != "no":
        kwargs["metric_for_best_model"] = "eval_loss"
        kwargs["greater_is_better"] = False
    if eval_steps:
        kwargs["eval_steps"] = eval_steps
    if save_steps:
        kwargs["save_steps"] = save_steps
    kwargs.update(overrides)
    try:
        return TrainingArguments(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"cannot build transformers.TrainingArguments from the recipe and overrides {sorted(overrides)}: "
            f"{exc}. Fix: correct the override (see HFArgs) or the recipe field it names."
        ) from exc


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


def _describe(cb: Any) -> str:
    return f"{type(cb).__module__}.{type(cb).__qualname__}"


class HFArgs:
    """Overrides for the ``TrainingArguments`` HF callbacks see, usable as a recipe ``callbacks:`` entry.

    ``{path: arctic_like.integrations.hf.HFArgs, kwargs: {metric_for_best_model: accuracy,
    greater_is_better: true}}``. It has no events: adding it only rebuilds ``trainer.hf_args``.
    """

    __arctic_like_callback__ = True

    def __init__(self, **overrides: Any) -> None:
        self.overrides = overrides

    def setup(self, trainer: Any) -> None:
        """Merge the overrides into the trainer's training arguments."""
        trainer.update_hf_args(**self.overrides)


class HFCallbackSupport:
    """Mixin giving a CallbackMixin trainer HF-style callback management and the HF event bridge.

    It provides ``add_callback``, ``pop_callback``, ``remove_callback``, ``callback_states``,
    ``load_callback_states``, ``hf_args`` and ``hf_callbacks``. Its ``post_init_callback`` resolves the
    recipe's ``callbacks:`` and fires ``on_init_end``. The bridge entries are appended to the trainer's
    ``callbacks`` when the first HF-style callback is added, so a trainer without any has none.
    """

    # ----- public API -------------------------------------------------------------------------------------
    @property
    def hf_callbacks(self) -> list[Any]:
        """The HF-style callbacks (HF's and arctic_like's own) in the order they run."""
        return self.__dict__.setdefault("_hf_callbacks", [])

    @property
    def hf_args(self) -> TrainingArguments:
        """The ``transformers.TrainingArguments`` HF callbacks receive, built from ``self.config``."""
        args = self.__dict__.get("_hf_args")
        if args is None:
            args = training_arguments_from_config(
                getattr(self, "config", None), **self.__dict__.get("_hf_args_overrides", {})
            )
            self.__dict__["_hf_args"] = args
        return args

    @hf_args.setter
    def hf_args(self, value: TrainingArguments) -> None:
        self.__dict__["_hf_args"] = value

    def update_hf_args(self, **overrides: Any) -> TrainingArguments:
        """Rebuild ``hf_args`` with ``overrides`` on top of the recipe values (and earlier overrides)."""
        merged = {**self.__dict__.get("_hf_args_overrides", {}), **overrides}
        self.__dict__["_hf_args"] = training_arguments_from_config(getattr(self, "config", None), **merged)
        self.__dict__["_hf_args_overrides"] = merged
        return self.__dict__["_hf_args"]

    def add_callback(self, callback: Any) -> Any:
        """Add an HF ``TrainerCallback`` or an arctic_like callback (class or instance); returns the instance.

        A stateful callback whose ``state_key`` is already taken is rejected, naming both callbacks.
        """
        cb = callback() if isinstance(callback, type) else callback
        self._hf_install()
        key = _saved_under(cb)
        if key is not None:
            for other in self.hf_callbacks:
                if _saved_under(other) == key and (_is_stateful(cb) or _is_stateful(other)):
                    raise CallbackStateError(
                        f"cannot add {_describe(cb)}: its state_key {key!r} is already used by "
                        f"{_describe(other)} on this trainer. Fix: give one of them a different `state_key` "
                        f"(e.g. {type(cb).__name__}(..., state_key='{key}-2')) or remove the other first."
                    )
        if key is None and any(type(other) is type(cb) for other in self.hf_callbacks):
            logger.warning("adding a second %s to this trainer; both will run", _describe(cb))
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
        """The state of every stateful callback, keyed like HF's ``TrainerState.stateful_callbacks``.

        Our callbacks are stored under their ``state_key``; HF ``ExportableState`` callbacks under their class
        name (a list when several share it), in HF's ``{"args": ..., "attributes": ...}`` form.
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
        state = getattr(self, "state", None)
        if state is not None and hasattr(state, "stateful_callbacks"):
            state.stateful_callbacks = states
        return states

    def load_callback_states(self, states: dict[str, Any]) -> None:
        """Restore what ``callback_states()`` returned, into the callbacks attached now or added later.

        HF ``ExportableState`` callbacks are rebuilt from their stored args and attributes, as HF's resume
        does; ours get ``load_state_dict``. A state whose callback is not attached yet (a checkpoint is loaded
        before the recipe's callbacks are added) waits for it; what is left at ``train()`` is reported.
        """
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
            events = [
                e for e in sorted({e for es in HF_EVENT_MAP.values() for e in es}) if _implements(cb, e)
            ]
            lines.append(f"  {i:>2}  {_describe(cb)}: {', '.join(events) or '(no events)'}")
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
        """Call ``event`` on every HF-style callback as HF does; a returned control replaces ours."""
        control = getattr(self, "control", None)
        callbacks = [(cb, getattr(cb, event, None)) for cb in self.hf_callbacks]
        callbacks = [(cb, method) for cb, method in callbacks if method is not None]
        if not callbacks:
            return control
        args = self.hf_args
        state = getattr(self, "state", None)
        full = {
            "model": getattr(self, "model", None),
            "processing_class": getattr(self, "tokenizer", None),
            "tokenizer": getattr(self, "tokenizer", None),
            "optimizer": getattr(self, "optimizer", None),
            "lr_scheduler": getattr(self, "scheduler", None),
            "train_dataloader": getattr(self, "train_dataloader", None),
            "eval_dataloader": getattr(self, "eval_dataloader", None),
            **kwargs,
        }
        timer = self.__dict__.get("_hf_timer")
        for cb, method in callbacks:
            start = time.perf_counter() if timer is not None else 0.0
            try:
                result = method(args, state, control, **full)
            except _flow_exceptions():
                raise
            except Exception as exc:
                exc.add_note(f"raised by HF callback {_describe(cb)}.{event}")
                raise
            finally:
                if timer is not None and not _inherited_noop(cb, event):
                    timer(f"hf:{event}", f"{type(cb).__qualname__}.{event}", time.perf_counter() - start)
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
        # HF fills the state before on_train_begin (a resumed state may hold an older horizon); the trainer
        # sets the same values in train(), after its pre-train callbacks.
        state, config = getattr(self, "state", None), getattr(self, "config", None)
        horizon = getattr(self, "training_horizon", None)
        if state is not None and horizon:
            state.max_steps = int(horizon)
            state.num_train_epochs = int(getattr(self, "num_epochs", 0) or _cfg(config, "epochs", 1))
            state.logging_steps = int(_cfg(config, "logging_steps", state.logging_steps))
            state.eval_steps = _cfg(config, "eval_steps", state.eval_steps)
            state.save_steps = _cfg(config, "save_steps", state.save_steps)
            state.train_batch_size = int(_cfg(config, "micro_batch_size", 1))
        self.call_hf_event("on_train_begin")

    def _hf_step_begin(self) -> None:
        # `accumulation_start` / `accumulation_boundary` are the trainer's per-micro-batch flags.
        if getattr(self, "accumulation_start", True):
            self.call_hf_event("on_step_begin")

    def _hf_substep_end(self) -> None:
        if not getattr(self, "accumulation_boundary", True):
            self.call_hf_event("on_substep_end")

    def _hf_optimizer_step(self) -> None:
        self.call_hf_event("on_optimizer_step")
        self.call_hf_event("on_step_end")

    def _hf_evaluate(self, metrics: Any) -> None:
        self.call_hf_event("on_evaluate", metrics=metrics)
        if self.hf_callbacks:
            _update_best_metric(self.hf_args, getattr(self, "state", None), metrics)


def _is_ours(cb: Any) -> bool:
    """True for arctic_like callbacks, which get ``setup(trainer)``/``teardown(trainer)``."""
    return callable(getattr(cb, "setup", None)) and getattr(cb, "__arctic_like_callback__", False)


def implemented_hf_events(cb: Any, events: tuple[str, ...]) -> list[str]:
    """Those of the HF `events` that `cb` implements itself (not ``TrainerCallback``'s empty methods)."""
    return [event for event in events if _implements(cb, event)]


def _implements(cb: Any, event: str) -> bool:
    """True when ``cb`` has its own ``event`` method (not ``TrainerCallback``'s empty one)."""
    return getattr(cb, event, None) is not None and not _inherited_noop(cb, event)


def _inherited_noop(cb: Any, event: str) -> bool:
    """True when ``cb`` only has ``TrainerCallback``'s empty implementation of ``event``."""
    return getattr(type(cb), event, None) is getattr(TrainerCallback, event, None)


def _update_best_metric(args: TrainingArguments, state: Any, metrics: Any) -> None:
    """Track ``state.best_metric`` like HF's ``_determine_best_metric`` (EarlyStoppingCallback reads it)."""
    name = args.metric_for_best_model
    if name is None or state is None or not isinstance(metrics, dict):
        return
    key = name if name.startswith("eval_") else f"eval_{name}"
    if key not in metrics:
        return
    value = float(metrics[key])
    if math.isnan(value):
        return
    best = state.best_metric
    better = best is None or (value > best if args.greater_is_better else value < best)
    if better:
        state.best_metric = value
        state.best_global_step = state.global_step


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

    def on_substep_end(self: HFCallbackSupport) -> None:
        self._hf_substep_end()

    def on_pre_optimizer_step(self: HFCallbackSupport) -> None:
        self.call_hf_event("on_pre_optimizer_step")

    def on_optimizer_step(self: HFCallbackSupport) -> None:
        self._hf_optimizer_step()

    def keep_logs(self: HFCallbackSupport, logs: Any) -> Any:
        self.__dict__.setdefault("_hf_logs", []).append(logs)
        return logs

    def on_log(self: HFCallbackSupport, value: Any) -> Any:
        # `log()` may return nothing: then the dict it was given (and possibly completed in place) is used.
        pending = self.__dict__.get("_hf_logs") or [None]
        logs = pending.pop()
        self.call_hf_event("on_log", logs=value if isinstance(value, dict) else logs)
        return value

    def on_evaluate(self: HFCallbackSupport, metrics: Any) -> Any:
        self._hf_evaluate(metrics)
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
    ("post-step", HFBridge.on_substep_end),
    ("pre-optimizer-step", HFBridge.on_pre_optimizer_step),
    ("post-optimizer-step", HFBridge.on_optimizer_step),
    ("pre-log", HFBridge.keep_logs),
    ("post-log", HFBridge.on_log),
    ("post-evaluate", HFBridge.on_evaluate),
    ("post-checkpoint", HFBridge.on_save),
    ("post-prediction-step", HFBridge.on_prediction_step),
]
for _event, _fn in _BRIDGE:
    _fn.__al_hf_bridge__ = True  # type: ignore[attr-defined]
