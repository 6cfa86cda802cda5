"""``TrainerConfig`` and how each part of a recipe finds its factory class.

How a trainer declares its factories
------------------------------------
A trainer class names, for each part, the factory base it accepts (the *type hint*) and the factory used when
the recipe gives no ``type:`` (the *class attribute*)::

    class Trainer(CallbackMixin, Registrable):
        config: TrainerConfig                       # the trainer's config class (a TrainerConfig subclass)
        tokenizer_factory: TokenizerFactory = CharTokenizerFactory
        data_factory: DataFactory = CausalDataFactory
        model_factory: ModelFactory = HFModelFactory
        optimizer_factory: OptimizerFactory = AdamWOptimizerFactory
        scheduler_factory: SchedulerFactory = CosineSchedulerFactory
        checkpoint_engine: CheckpointEngine = TorchCheckpointEngine   # default type of each checkpoint: entry

A hint may be a union (``model_factory: HFModelFactory | MyModelFactory``) to allow only those classes (and
their subclasses); without a class attribute, the first union member that has a ``name`` is the default.
Subclasses inherit and may override both. ArcticTraining's way, a hint with no assignment in a subclass
(``model_factory: MyModelFactory``), makes that class the default unless the inherited class attribute is
one of the hinted classes. A part's ``type: <name>`` is looked up in the registry among the
subclasses of the allowed classes; the chosen factory's ``config`` class attribute validates that part of the
recipe.

Recipe part → trainer attribute: ``tokenizer`` → ``tokenizer_factory``, ``data`` → ``data_factory``,
``model`` → ``model_factory``, ``optimizer`` → ``optimizer_factory``, ``scheduler`` → ``scheduler_factory``,
``checkpoint`` (a list) → ``checkpoint_engine`` (``checkpoint_engines`` is accepted too).
The trainer builds a part with ``config.factory_class("model")(self, config.model)``.

The trainer class itself is the registered subclass of ``arctic_like.trainer.Trainer`` named by ``type`` (the
base is imported lazily, on first use, so this module does not depend on the trainer package).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SerializeAsAny, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from arctic_like import registry
from arctic_like.config.base import BaseConfig, HumanInt
from arctic_like.config.parts import (
    CallbackSpec,
    CheckpointConfig,
    DataConfig,
    LogConfig,
    ModelConfig,
    OptimizerConfig,
    PartConfig,
    SchedulerConfig,
    TokenizerConfig,
    resolve_recipe_path,
)

__all__ = [
    "PARTS",
    "TRAINER_BASE",
    "CompileConfig",
    "TrainerConfig",
    "factory_choice",
    "import_code_file",
    "import_object",
    "resolve_factory",
    "resolve_trainer_class",
    "trainer_config_class",
]

logger = logging.getLogger("arctic_like.config")

TRAINER_BASE = "arctic_like.trainer:Trainer"
"""Import path of the base class whose registered subclasses a recipe's ``type`` chooses from."""

PARTS: dict[str, tuple[tuple[str, ...], str, type[PartConfig]]] = {
    "tokenizer": (("tokenizer_factory",), "arctic_like.tokenizer:TokenizerFactory", TokenizerConfig),
    "data": (("data_factory",), "arctic_like.data:DataFactory", DataConfig),
    "model": (("model_factory",), "arctic_like.model:ModelFactory", ModelConfig),
    "optimizer": (("optimizer_factory",), "arctic_like.optimizer:OptimizerFactory", OptimizerConfig),
    "scheduler": (("scheduler_factory",), "arctic_like.scheduler:SchedulerFactory", SchedulerConfig),
    "checkpoint": (
        ("checkpoint_engine", "checkpoint_engines"),
        "arctic_like.checkpoint:CheckpointEngine",
        CheckpointConfig,
    ),
}
"""Recipe part → (trainer attributes declaring its factory, fallback base import path, base config class)."""


def import_object(path: str) -> Any:
    """Import ``pkg.mod:obj`` or ``pkg.mod.obj`` (the ``:`` form also allows ``obj.attr``)."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ImportError(f"{path!r} is not an import path; write it as 'package.module:name'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"module {module_name!r} has no attribute {attr!r} (from {path!r})") from None
    return obj


def import_code_file(path: str | Path) -> types.ModuleType:
    """Import a user code file (``code:`` in a recipe) so the classes it defines register themselves.

    The module is importable afterwards under the file's stem (or a unique name when that stem is taken by
    another module), which keeps its classes picklable. Importing the same unchanged file again is a no-op.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"code file {str(path)!r} does not exist")
    stat = path.stat()
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == str(path) and getattr(module, "__al_mtime__", None) == (
            stat.st_mtime_ns,
            stat.st_size,
        ):
            return module
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) != str(path):
        name = f"_arctic_like_code_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.__al_mtime__ = (stat.st_mtime_ns, stat.st_size)  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    logger.debug("imported code file %s as module %r", path, name)
    return module


def _trainer_base() -> type:
    return import_object(TRAINER_BASE)


def resolve_trainer_class(name: str) -> type:
    """The trainer class registered as ``name`` (a :class:`~arctic_like.registry.RegistryError` if none)."""
    return registry.get(_trainer_base(), name)


def trainer_config_class(trainer_cls: type) -> type[TrainerConfig]:
    """The trainer's config class: its ``config`` class attribute or type hint (default ``TrainerConfig``)."""
    value = getattr(trainer_cls, "config", None)
    if isinstance(value, type) and issubclass(value, TrainerConfig):
        return value
    for hint in _hint_classes(trainer_cls, "config"):
        if issubclass(hint, TrainerConfig):
            return hint
    return TrainerConfig


def _class_hint(cls: type, attr: str) -> Any:
    for klass in cls.__mro__:
        annotations = inspect.get_annotations(klass)
        if attr in annotations:
            hint = annotations[attr]
            if isinstance(hint, str):
                namespace = {**vars(sys.modules.get(klass.__module__, types.ModuleType("x"))), **vars(klass)}
                try:
                    hint = eval(hint, namespace)
                except Exception:
                    logger.debug("cannot evaluate annotation %r of %s.%s", hint, klass.__name__, attr)
                    return None
            return hint
    return None


def _hint_classes(cls: type, attr: str) -> list[type]:
    """Classes named by ``cls``'s type hint for ``attr``: unions, ``list[X]`` and ``type[X]`` unwrapped."""
    out: list[type] = []

    def walk(hint: Any) -> None:
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType, list, type, typing.Annotated, tuple, typing.ClassVar):
            args = typing.get_args(hint)
            for arg in args[:1] if origin is typing.Annotated else args:
                walk(arg)
        elif isinstance(hint, type) and hint is not type(None):
            out.append(hint)

    walk(_class_hint(cls, attr))
    return out


def factory_choice(trainer_cls: type | None, part: str) -> tuple[tuple[type, ...], type | None]:
    """(allowed factory classes, default factory class) that ``trainer_cls`` declares for ``part``."""
    slots, fallback_path, _ = PARTS[part]
    allowed: list[type] = []
    default: type | None = None
    for slot in slots if trainer_cls is not None else ():
        allowed = _hint_classes(trainer_cls, slot)
        value = getattr(trainer_cls, slot, None)
        # A bare hint (``model_factory: MyModelFactory``) overrides an inherited default it does not allow.
        if isinstance(value, type) and (not allowed or issubclass(value, tuple(allowed))):
            default = value
        if allowed or default is not None:
            break
    if not allowed:
        try:
            allowed = [import_object(fallback_path)]
        except ImportError:
            if default is None:
                raise
            allowed = [default]
    if default is None:  # the first allowed class with a name of its own, else with an inherited one
        named = [c for c in allowed if "name" in c.__dict__] + [c for c in allowed if hasattr(c, "name")]
        default = named[0] if named else None
    return tuple(allowed), default


def resolve_factory(trainer_cls: type | None, part: str, type_name: str | None) -> type:
    """The factory class for ``part`` given its recipe ``type`` (``None``: the trainer's default)."""
    allowed, default = factory_choice(trainer_cls, part)
    if type_name is None:
        if default is None:
            available = sorted({n for a in allowed for n in registry.names(a)})
            raise registry.RegistryError(
                f"no default {allowed[0].__name__} for {part!r}; available: "
                f"{', '.join(available) or '(none registered)'}. Fix: set `{part}.type`."
            )
        return default
    # A default that inherits its name (so is not registered under it) is picked by that name: a trainer that
    # declares a variant of the `sft` data factory gets it for `type: sft`.
    if default is not None and "name" not in default.__dict__ and getattr(default, "name", None) == type_name:
        return default
    errors = []
    for base in allowed:
        try:
            return registry.get(base, type_name)
        except registry.RegistryError as error:
            errors.append(error)
    if len(allowed) == 1:
        raise errors[0]
    available = sorted({n for a in allowed for n in registry.names(a)})
    raise registry.RegistryError(
        f"no {' | '.join(a.__name__ for a in allowed)} named {type_name!r}; "
        f"available: {', '.join(available)}. Fix: use one of the available names."
    )


def _type_error(message: str, value: Any) -> ValidationError:
    return ValidationError.from_exception_data(
        "TrainerConfig",
        [
            InitErrorDetails(
                type=PydanticCustomError("registry", "{msg}", {"msg": message}), loc=("type",), input=value
            )
        ],
    )


def _validate_part(trainer_cls: type | None, part: str, value: Any) -> PartConfig:
    base_config = PARTS[part][2]
    if isinstance(value, PartConfig):
        type_name = value.type
        data = value.model_dump(exclude_unset=True)
    elif isinstance(value, dict):
        type_name = value.get("type")
        data = dict(value)
    elif isinstance(value, str):
        type_name, data = value, {}  # `optimizer: sgd` is short for `optimizer: {type: sgd}`
    elif value is None:
        type_name, data = None, {}
    else:
        return value  # let pydantic report the wrong kind of value
    if type_name is not None and not isinstance(type_name, str):
        raise _type_error(f"type must be a string, got {type_name!r}", type_name)
    try:
        factory = resolve_factory(trainer_cls, part, type_name)
    except (registry.RegistryError, ImportError) as error:
        raise _type_error(str(error), type_name) from None
    config_cls = getattr(factory, "config", None)
    if not (isinstance(config_cls, type) and issubclass(config_cls, base_config)):
        raise _type_error(
            f"{factory.__qualname__}.config must be a {base_config.__name__} subclass, got {config_cls!r}. "
            f"Fix: set `config = My{base_config.__name__}` in the factory class.",
            type_name,
        )
    data["type"] = factory.name
    if isinstance(value, config_cls) and value.type == factory.name:
        return value
    return config_cls.model_validate(data)


def _tokenizer_from_model(trainer_cls: type, value: Any, model: Any) -> Any:
    """Without a tokenizer ``type``, the tokenizer the model names (``ModelConfig.tokenizer_defaults()``, e.g.
    the model's own ``name_or_path``) fills the tokenizer section."""
    defaults = model.tokenizer_defaults() if isinstance(model, ModelConfig) else {}
    given = {} if value is None else value
    if not defaults or not isinstance(given, dict) or given.get("type") not in (None, defaults["type"]):
        return value
    try:
        resolve_factory(trainer_cls, "tokenizer", defaults["type"])
    except (registry.RegistryError, ImportError):
        return value  # this trainer does not take that kind of tokenizer: keep its own default
    return {**defaults, **given, "type": defaults["type"]}


class CompileConfig(BaseConfig):
    """``compile:`` as a mapping: the arguments of ``torch.compile`` (``compile: true``: the defaults)."""

    mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] | None = None
    backend: str = "inductor"
    fullgraph: bool = False
    dynamic: bool | None = None


class TrainerConfig(BaseConfig):
    """The whole recipe. ``code`` is imported first, then ``type`` picks the trainer, whose type hints pick
    the factory (and so the config class) of each part."""

    code: list[Path] = Field(default_factory=list)
    type: str = "causal"
    # `model` is validated before `tokenizer`, whose default may come from it (a loaded model's tokenizer).
    model: SerializeAsAny[ModelConfig] = Field(default_factory=dict, validate_default=True)
    tokenizer: SerializeAsAny[TokenizerConfig] = Field(default_factory=dict, validate_default=True)
    data: SerializeAsAny[DataConfig] = Field(default_factory=dict, validate_default=True)
    optimizer: SerializeAsAny[OptimizerConfig] = Field(default_factory=dict, validate_default=True)
    scheduler: SerializeAsAny[SchedulerConfig] = Field(default_factory=dict, validate_default=True)
    engine: Literal["torch", "deepspeed"] = "torch"
    deepspeed: dict[str, Any] = Field(default_factory=dict)
    checkpoint: list[SerializeAsAny[CheckpointConfig]] = Field(default_factory=list)
    callbacks: list[CallbackSpec] = Field(default_factory=list)
    seed: int = Field(default=42, ge=0, lt=2**63)
    epochs: HumanInt = Field(default=1, ge=1)
    max_steps: HumanInt | None = Field(default=None, ge=1)
    micro_batch_size: HumanInt = Field(default=1, ge=1)
    gradient_accumulation_steps: HumanInt = Field(default=1, ge=1)
    logging_steps: HumanInt = Field(default=10, ge=1)
    eval_steps: HumanInt | None = Field(default=None, ge=1)
    save_steps: HumanInt | None = Field(default=None, ge=1)
    logging_strategy: Literal["steps", "epoch", "no"] = "steps"
    eval_strategy: Literal["steps", "epoch", "no"] | None = None
    save_strategy: Literal["steps", "epoch", "no"] | None = None
    load_best_model_at_end: bool = False
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    output_dir: Path = Path("output")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    exit_iteration: HumanInt | None = Field(default=None, ge=0)
    exit_at_step: HumanInt | None = Field(default=None, ge=1)
    """Stop when the global step reaches this (ArcticTraining's ``exit_iteration``); the schedule still spans
    the whole run."""
    min_steps: HumanInt | None = Field(default=None, ge=1)
    """Repeat the training data until an epoch holds at least this many optimizer steps."""
    kill_switch_path: Path | None = None
    log: LogConfig = Field(default_factory=LogConfig)
    progress: bool = True
    nonfinite_loss: Literal["stop", "skip"] = "stop"
    nonfinite_loss_patience: HumanInt = Field(default=10, ge=1)
    """With ``nonfinite_loss: skip``: the run fails after this many non-finite losses in a row."""
    compile: CompileConfig | None = None
    """``torch.compile`` the model for training: ``true``, or a mapping of its arguments (``false``: off)."""

    @field_validator("code", mode="before")
    @classmethod
    def _import_code(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            value = [value]
        if not isinstance(value, list):
            return value
        paths = [resolve_recipe_path(Path(v)) if isinstance(v, str | Path) else v for v in value]
        for path in paths:
            if isinstance(path, Path):
                try:
                    import_code_file(path)
                except Exception as error:
                    raise ValueError(
                        f"cannot import code file {str(path)!r}: {type(error).__name__}: {error}"
                    ) from error
        return paths

    @field_validator("compile", mode="before")
    @classmethod
    def _compile_switch(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        if value is None or isinstance(value, dict | CompileConfig):
            return value
        raise ValueError(
            f"{value!r} is not a compile setting. Fix: write compile: true, compile: false, or a mapping "
            "such as compile: {mode: max-autotune, backend: inductor, fullgraph: false, dynamic: null}"
        )

    @field_validator("deepspeed")
    @classmethod
    def _deepspeed_needs_its_engine(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        engine = info.data.get("engine")
        if value and engine != "deepspeed":
            raise ValueError(
                f"settings for DeepSpeed ({', '.join(sorted(value))}) but engine is {engine!r}, which would "
                "ignore them. Fix: set engine: deepspeed, or remove the deepspeed: section"
            )
        return value

    @field_validator("type")
    @classmethod
    def _known_trainer(cls, value: str) -> str:
        resolve_trainer_class(value)
        return value

    @field_validator("tokenizer", "data", "model", "optimizer", "scheduler", mode="before")
    @classmethod
    def _resolve_part(cls, value: Any, info: ValidationInfo) -> Any:
        """The part's config, of the class its factory declares; the tokenizer may default from the model."""
        trainer_cls = _trainer_or_none(info.data.get("type"))
        if trainer_cls is None:
            return PARTS[info.field_name][2].model_construct()
        if info.field_name == "tokenizer":
            value = _tokenizer_from_model(trainer_cls, value, info.data.get("model"))
        return _validate_part(trainer_cls, info.field_name, value)

    @field_validator("checkpoint", mode="before")
    @classmethod
    def _resolve_checkpoints(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict | str):
            value = [value]
        if not isinstance(value, list):
            return value
        trainer_cls = _trainer_or_none(info.data.get("type"))
        if trainer_cls is None:
            return []
        items = [{"type": v} if isinstance(v, str) else v for v in value]
        if info.data.get("engine") == "deepspeed":  # a DeepSpeed run checkpoints through DeepSpeed by default
            items = [
                {**v, "type": "deepspeed"} if isinstance(v, dict) and v.get("type") is None else v
                for v in items
            ]
        out, errors = [], []
        for index, item in enumerate(items):
            try:
                out.append(_validate_part(trainer_cls, "checkpoint", item))
            except ValidationError as error:
                errors += [
                    InitErrorDetails(
                        type=PydanticCustomError(e["type"], "{msg}", {"msg": e["msg"]}),
                        loc=(index, *e["loc"]),
                        input=e["input"],
                    )
                    for e in error.errors()
                ]
        if errors:
            raise ValidationError.from_exception_data("TrainerConfig", errors)
        return out

    @model_validator(mode="after")
    def _strategies(self) -> TrainerConfig:
        if self.eval_strategy is None:
            self.__dict__["eval_strategy"] = "steps" if self.eval_steps is not None else "no"
        if self.save_strategy is None:
            self.__dict__["save_strategy"] = "steps" if self.save_steps is not None else "no"
        if self.eval_strategy == "steps" and self.eval_steps is None:
            self.__dict__["eval_steps"] = self.logging_steps
        if self.save_strategy == "steps" and self.save_steps is None:
            raise ValueError("save_strategy is 'steps' but save_steps is not set; set save_steps: N")
        if self.load_best_model_at_end:
            check_best_model_schedule(
                self.eval_strategy, self.save_strategy, self.eval_steps, self.save_steps
            )
            if self.metric_for_best_model is None:
                self.__dict__["metric_for_best_model"] = "loss"
        if self.greater_is_better is None and self.metric_for_best_model is not None:
            self.__dict__["greater_is_better"] = not self.metric_for_best_model.endswith("loss")
        for entry in self.checkpoint:  # ArcticTraining's save at the end is off with HF-style saving
            if getattr(entry, "save_end_of_training", False) is None:
                entry.__dict__["save_end_of_training"] = self.save_strategy == "no"
        return self

    def trainer_class(self) -> type:
        """The registered trainer class named by ``type``."""
        return resolve_trainer_class(self.type)

    def factory_class(self, part: str, index: int | None = None) -> type:
        """The factory class that builds ``part`` (for ``checkpoint``, entry ``index``, default 0)."""
        if part not in PARTS:
            raise KeyError(f"unknown part {part!r}; parts: {', '.join(PARTS)}")
        value = getattr(self, part)
        if part == "checkpoint":
            value = value[index or 0]
        return resolve_factory(self.trainer_class(), part, value.type)


def check_best_model_schedule(
    eval_strategy: str | None, save_strategy: str | None, eval_steps: int | None, save_steps: int | None
) -> None:
    """``load_best_model_at_end`` needs a checkpoint at every evaluation that may be the best (HF's rule)."""
    if eval_strategy != save_strategy:
        raise ValueError(
            f"load_best_model_at_end needs save_strategy to match eval_strategy, but eval_strategy is "
            f"{eval_strategy!r} and save_strategy is {save_strategy!r}. Fix: use the same strategy for both."
        )
    if eval_strategy == "steps" and eval_steps and save_steps and save_steps % eval_steps:
        raise ValueError(
            f"load_best_model_at_end needs save_steps to be a multiple of eval_steps, but save_steps is "
            f"{save_steps} and eval_steps is {eval_steps}. "
            f"Fix: e.g. save_steps: {eval_steps * max(1, save_steps // eval_steps)}."
        )


def _trainer_or_none(name: Any) -> type | None:
    if not isinstance(name, str):
        return None
    try:
        return resolve_trainer_class(name)
    except (registry.RegistryError, ImportError):
        return None
