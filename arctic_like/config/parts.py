"""Config models for the parts of a recipe: tokenizer, data, model, optimizer, scheduler, checkpoint.

Each part's base config carries ``type`` (the registry name of the factory that builds the part) and the
fields every factory of that kind understands; a concrete factory declares its own subclass as its ``config``
class attribute and adds fields there (e.g. :class:`arctic_like.model.HFModelConfig`).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SerializeAsAny, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from arctic_like import registry
from arctic_like.config.base import BaseConfig, HumanFloat, HumanFraction, HumanInt

__all__ = [
    "DATA_SOURCE_BASE",
    "CallbackSpec",
    "CheckpointConfig",
    "DataConfig",
    "DataSourceConfig",
    "LogConfig",
    "ModelConfig",
    "OptimizerConfig",
    "SchedulerConfig",
    "TokenizerConfig",
    "expand_source_shorthand",
    "recipe_dir",
    "resolve_recipe_path",
    "source_config",
]

recipe_dir: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "arctic_like_recipe_dir", default=None
)
"""Directory of the recipe being loaded; relative file paths in the recipe are resolved against it."""


def resolve_recipe_path(path: Path) -> Path:
    """``path`` made absolute against the recipe's directory while a recipe is loading (else left as is)."""
    base = recipe_dir.get()
    path = Path(path).expanduser()
    if base is not None and not path.is_absolute():
        return base / path
    return path


class PartConfig(BaseConfig):
    """Common base of the part configs: ``type`` names the factory class in the registry.

    ``type`` is filled with the chosen factory's name when the part is validated inside a ``TrainerConfig``.
    """

    type: str | None = None


class TokenizerConfig(PartConfig):
    """Base config of a :class:`~arctic_like.tokenizer.TokenizerFactory`."""


class ModelConfig(PartConfig):
    """Base config of a :class:`~arctic_like.model.ModelFactory`."""

    def tokenizer_defaults(self) -> dict[str, Any]:
        """The tokenizer section this model implies when the recipe gives no tokenizer ``type`` (``{}``:
        none); e.g. the model's own tokenizer for a model loaded from a path."""
        return {}


class OptimizerConfig(PartConfig):
    """Base config of an :class:`~arctic_like.optimizer.OptimizerFactory`."""

    lr: HumanFloat = Field(default=1e-3, gt=0)
    weight_decay: HumanFloat = Field(default=0.0, ge=0)

    @property
    def learning_rate(self) -> float:
        """``lr`` by ArcticTraining's name (its factories read ``optimizer_config.learning_rate``)."""
        return float(self.lr)


class SchedulerConfig(PartConfig):
    """Base config of a :class:`~arctic_like.scheduler.SchedulerFactory`.

    Warmup is given either in optimizer steps (``warmup_steps: 100``) or as a fraction of the training horizon
    (``warmup_ratio: 5%``), not both.
    """

    warmup_steps: HumanInt | None = Field(default=None, ge=0)
    warmup_ratio: HumanFraction | None = None
    min_lr_ratio: HumanFraction = 0.0

    @model_validator(mode="after")
    def _one_warmup(self) -> SchedulerConfig:
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("give either warmup_steps or warmup_ratio, not both")
        return self

    def warmup(self, horizon: int) -> int:
        """Number of warmup steps for a run of ``horizon`` optimizer steps."""
        if self.warmup_steps is not None:
            return min(self.warmup_steps, horizon)
        return round((self.warmup_ratio or 0.0) * horizon)


class CheckpointConfig(PartConfig):
    """Base config of a :class:`~arctic_like.checkpoint.CheckpointEngine` (one entry of ``checkpoint:``)."""

    output_dir: Path | None = None
    auto_resume: bool = False
    save_total_limit: HumanInt | None = Field(default=None, ge=1)
    dir_prefix: str = Field(default="checkpoint-", pattern=r"^[\w.-]+$")
    """Checkpoint folders are ``<dir_prefix><step>``: ``checkpoint-`` as HF's, ``global_step_`` as
    ArcticTraining's."""


# ---- data --------------------------------------------------------------------------------------------------

DATA_SOURCE_BASE = "arctic_like.data:DataSource"
"""Import path of the base class whose registered subclasses a source's ``type`` chooses from."""

_EXTENSIONS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def _source_base() -> type:
    module, _, name = DATA_SOURCE_BASE.partition(":")
    return getattr(importlib.import_module(module), name)  # the data layer, imported on first use


def _source_class(type_name: str) -> type:
    return registry.get(_source_base(), type_name)


class DataSourceConfig(BaseConfig):
    """Common fields of every data source. ``type`` names the ``DataSource`` class (``jsonl``,
    ``huggingface``, ``addition``, a user class...), whose ``config`` class attribute (a subclass of this)
    adds its own fields.

    Rows are read, then ``fraction``/``limit`` keep a subset (the first rows, or a random one with
    ``shuffle``), then ``column_mapping``/``role_mapping`` turn the source's columns into the row columns.
    """

    type: str
    column_mapping: dict[str, str] = {}
    """Source column → row column, e.g. ``{question: prompt, answer: response}``."""
    role_mapping: dict[str, str] = {}
    """Chat role → source column (``{user: question, assistant: answer}``) or filter path into a list of turns
    (``{user: conversations.from.human, assistant: conversations.from.gpt}``); builds ``messages``."""
    limit: HumanInt | None = Field(default=None, ge=1)
    fraction: HumanFraction | None = Field(default=None, gt=0)
    shuffle: bool = False
    seed: int | None = None
    """Seed of this source's random choices (``shuffle``, synthetic problems); default: the run's seed."""
    content_key: str | None = None
    """The key holding a turn's text in the lists of turns ``role_mapping`` reads (default: the first of
    ``content``, ``value``, ``text``, ``message`` present)."""

    @field_validator("role_mapping", mode="after")
    @classmethod
    def _role_paths(cls, value: dict[str, str]) -> dict[str, str]:
        for role, path in value.items():
            if "." in path and len(path.split(".")) != 3:
                raise ValueError(
                    f"role_mapping.{role}: {path!r} is neither a column nor a path into a list of turns; "
                    f"write a column name or list.field.value (e.g. conversations.from.human)"
                )
        return value

    @classmethod
    def config_class_for(cls, raw: Any) -> type[DataSourceConfig]:
        """The config class of the source that ``raw`` (a recipe entry) names; this class if none."""
        raw = expand_source_shorthand(raw) if isinstance(raw, str | Path) else raw
        type_name = raw.get("type") if isinstance(raw, dict) else None
        if isinstance(type_name, str):
            with contextlib.suppress(registry.RegistryError, ImportError):
                return _source_class(type_name).config
        return cls


def source_config(value: Any) -> DataSourceConfig:
    """One recipe entry of ``sources`` as the config of the source class its ``type`` names."""
    if isinstance(value, DataSourceConfig):
        return value
    value = expand_source_shorthand(value)
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ValueError(
            f"a data source must be a mapping with a `type` (or a file path or task name), got {value!r}"
        )
    config_cls = _source_class(value["type"]).config
    return config_cls.model_validate(value)


def expand_source_shorthand(value: Any) -> Any:
    """A bare string is a registered source name (``addition``), a file (type from the extension) or a
    ``save_to_disk`` folder; a mapping without ``type`` takes it from ``path``, or is a ``huggingface``
    dataset when it has ``name_or_path``."""
    if isinstance(value, str | Path):
        text = str(value)
        if text in registry.names(_source_base()):
            return {"type": text}
        suffix = Path(text).suffix.lower()
        if suffix in _EXTENSIONS:
            return {"type": _EXTENSIONS[suffix], "path": text}
        if resolve_recipe_path(Path(text)).is_dir():
            return {"type": "disk", "path": text}
        raise ValueError(
            f"cannot tell the format of {text!r} from its extension; write {{type: jsonl|json|parquet|csv, "
            f"path: {text}}}, {{type: disk, path: ...}} for a save_to_disk folder or {{type: huggingface, "
            f"name_or_path: ...}} for a dataset in the local datasets cache"
        )
    if isinstance(value, dict) and "type" not in value:
        if "path" in value:
            suffix = Path(str(value["path"])).suffix.lower()
            if suffix in _EXTENSIONS:
                return {"type": _EXTENSIONS[suffix], **value}
            if resolve_recipe_path(Path(str(value["path"]))).is_dir():
                return {"type": "disk", **value}
        elif "name_or_path" in value:
            return {"type": "huggingface", **value}
    return value


class DataConfig(PartConfig):
    """Base config of a :class:`~arctic_like.data.DataFactory`."""

    sources: list[SerializeAsAny[DataSourceConfig]] = Field(default_factory=list)
    eval_sources: list[SerializeAsAny[DataSourceConfig]] = Field(default_factory=list)
    eval_fraction: HumanFraction = 0.0
    max_length: HumanInt = Field(default=512, ge=2)
    packing: bool = True
    pad_to_max_length: bool = False
    mask_prompt: bool | None = None
    """Leave prompts (and non-assistant chat turns) out of the loss; default: the factory's (``sft``: yes)."""
    too_long: Literal["truncate", "drop"] = "truncate"
    """An example longer than ``max_length``: ``truncate`` it (into pieces when packing) or ``drop`` it."""
    num_proc: int = Field(default=1, ge=1)
    cache_dir: Path | None = None
    use_cache: bool = True
    require_cache: bool = False
    """Fail instead of processing the data when the processed-data cache has no entry for it."""
    num_workers: int = Field(default=0, ge=0)
    eval_batch_size: HumanInt | None = Field(default=None, ge=1)
    seed: int | None = None
    """Seed of the data order and of the eval split drawn by ``eval_fraction``; default: the run's seed."""

    @field_validator("sources", "eval_sources", mode="before")
    @classmethod
    def _resolve_sources(cls, value: Any) -> Any:
        if isinstance(value, str | dict | Path | DataSourceConfig):
            value = [value]
        if not isinstance(value, list):
            return value
        out, errors = [], []
        for index, item in enumerate(value):
            try:
                out.append(source_config(item))
            except ValidationError as error:
                errors += [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            e["type"], "{msg}", {"msg": e["msg"].removeprefix("Value error, ")}
                        ),
                        loc=(index, *e["loc"]),
                        input=e["input"],
                    )
                    for e in error.errors()
                ]
            except ValueError as error:
                kind = "registry" if isinstance(error, registry.RegistryError) else "value_error"
                errors.append(
                    InitErrorDetails(
                        type=PydanticCustomError(kind, "{msg}", {"msg": str(error)}),
                        loc=(index, "type") if isinstance(item, dict) and "type" in item else (index,),
                        input=item,
                    )
                )
        if errors:
            raise ValidationError.from_exception_data("DataConfig", errors)
        return out

    @field_validator("cache_dir", mode="after")
    @classmethod
    def _resolve(cls, path: Path | None) -> Path | None:
        return None if path is None else resolve_recipe_path(path)


# ---- logging -----------------------------------------------------------------------------------------------


class LogConfig(BaseConfig):
    """Where the run's log records go (the ``log:`` section): their level, which ranks print them, and which
    ranks also write them to ``<dir>/rank_<N>.log``."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = None
    """Level of the ``arctic_like`` loggers; default: the command line's ``--log-level`` (INFO)."""
    dir: Path | None = None
    """Folder of the per-rank log files (none by default; ``/dev/null`` also means none)."""
    print_ranks: list[int] | Literal["*"] = "*"
    """Global ranks whose records are printed (``*``: every rank)."""
    file_ranks: list[int] | Literal["*"] = "*"
    """Global ranks that write a log file when ``dir`` is set (``*``: every rank)."""

    @field_validator("dir", mode="after")
    @classmethod
    def _no_file(cls, path: Path | None) -> Path | None:
        return None if path is None or str(path) == "/dev/null" else path

    def prints(self, rank: int) -> bool:
        return self.print_ranks == "*" or rank in self.print_ranks

    def writes(self, rank: int) -> bool:
        return self.dir is not None and (self.file_ranks == "*" or rank in self.file_ranks)


# ---- callbacks ---------------------------------------------------------------------------------------------


class CallbackSpec(BaseConfig):
    """A callback to attach to the trainer: an import path, with optional constructor ``kwargs``.

    In a recipe either a string ``pkg.mod.Class`` (or ``pkg.mod:Class``) or ``{path: ..., kwargs: {...}}``.
    """

    path: str
    kwargs: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not re.fullmatch(r"[\w.]+[:.]\w+", value):
            raise ValueError(f"{value!r} is not an import path; write it as 'package.module.Class'")
        return value
