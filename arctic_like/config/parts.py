"""Config models for the parts of a recipe: tokenizer, data, model, optimizer, scheduler, checkpoint.

Each part's base config carries ``type`` (the registry name of the factory that builds the part) and the
fields every factory of that kind understands; a concrete factory declares its own subclass as its ``config``
class attribute and adds fields there (e.g. :class:`arctic_like.model.HFModelConfig`).
"""

from __future__ import annotations

import contextvars
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from arctic_like.config.base import BaseConfig, HumanFloat, HumanFraction, HumanInt

__all__ = [
    "AdditionSourceConfig",
    "CallableSourceConfig",
    "CallbackSpec",
    "CheckpointConfig",
    "DataConfig",
    "FileSourceConfig",
    "ModelConfig",
    "OptimizerConfig",
    "ReverseSourceConfig",
    "SchedulerConfig",
    "SourceConfig",
    "TokenizerConfig",
    "expand_source_shorthand",
    "recipe_dir",
    "resolve_recipe_path",
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


class OptimizerConfig(PartConfig):
    """Base config of an :class:`~arctic_like.optimizer.OptimizerFactory`."""

    lr: HumanFloat = Field(default=1e-3, gt=0)
    weight_decay: HumanFloat = Field(default=0.0, ge=0)


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


# ---- data sources ------------------------------------------------------------------------------------------


class FileSourceConfig(BaseConfig):
    """A local ``jsonl``/``json``/``parquet``/``csv`` file (or glob) read with ``datasets``."""

    type: Literal["jsonl", "json", "parquet", "csv"]
    path: Path
    text_field: str = "text"
    prompt_field: str = "prompt"
    response_field: str = "response"
    limit: HumanInt | None = Field(default=None, ge=1)

    @field_validator("path", mode="after")
    @classmethod
    def _resolve(cls, path: Path) -> Path:
        return resolve_recipe_path(path)


class CallableSourceConfig(BaseConfig):
    """A Python function ``pkg.mod:fn`` returning rows (dicts), strings, or a ``datasets.Dataset``."""

    type: Literal["callable"]
    function: str
    kwargs: dict[str, Any] = {}
    limit: HumanInt | None = Field(default=None, ge=1)

    @field_validator("function")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not re.fullmatch(r"[\w.]+[:.]\w+", value):
            raise ValueError(f"{value!r} is not an import path; write it as 'package.module:function'")
        return value


class SyntheticSourceConfig(BaseConfig):
    """Common fields of the built-in synthetic tasks; training and held-out eval problems are disjoint."""

    num_samples: HumanInt = Field(default=2000, ge=1)
    eval_samples: HumanInt = Field(default=200, ge=0)
    seed: int | None = None


class AdditionSourceConfig(SyntheticSourceConfig):
    """``12+7=19``: sums of two random numbers of up to ``digits`` digits."""

    type: Literal["addition"]
    digits: int = Field(default=2, ge=1, le=9)


class ReverseSourceConfig(SyntheticSourceConfig):
    """``abc>cba``: reverse a random string of ``min_length``..``max_length`` letters from ``alphabet``."""

    type: Literal["reverse"]
    min_length: int = Field(default=3, ge=1)
    max_length: int = Field(default=6, ge=1)
    alphabet: str = Field(default="abcdefgh", min_length=2)

    @model_validator(mode="after")
    def _lengths(self) -> ReverseSourceConfig:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) is larger than max_length ({self.max_length})")
        return self


SourceConfig = Annotated[
    FileSourceConfig | CallableSourceConfig | AdditionSourceConfig | ReverseSourceConfig,
    Field(discriminator="type"),
]

_EXTENSIONS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def expand_source_shorthand(value: Any) -> Any:
    """A bare string is a file path (type from the extension) or a synthetic task name."""
    if isinstance(value, str | Path):
        text = str(value)
        if text in ("addition", "reverse"):
            return {"type": text}
        suffix = Path(text).suffix.lower()
        if suffix not in _EXTENSIONS:
            raise ValueError(
                f"cannot tell the format of {text!r} from its extension; write "
                f"{{type: jsonl|json|parquet|csv, path: {text}}}"
            )
        return {"type": _EXTENSIONS[suffix], "path": text}
    if isinstance(value, dict) and "type" not in value and "path" in value:
        suffix = Path(str(value["path"])).suffix.lower()
        if suffix in _EXTENSIONS:
            return {"type": _EXTENSIONS[suffix], **value}
    return value


class DataConfig(PartConfig):
    """Base config of a :class:`~arctic_like.data.DataFactory`."""

    sources: list[SourceConfig] = Field(default_factory=list)
    eval_sources: list[SourceConfig] = Field(default_factory=list)
    eval_fraction: HumanFraction = 0.0
    max_length: HumanInt = Field(default=512, ge=2)
    packing: bool = True
    pad_to_max_length: bool = False
    cache_dir: Path | None = None
    use_cache: bool = True
    num_workers: int = Field(default=0, ge=0)
    eval_batch_size: HumanInt | None = Field(default=None, ge=1)

    @field_validator("sources", "eval_sources", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str | dict):
            value = [value]
        if not isinstance(value, list):
            return value
        out, errors = [], []
        for index, item in enumerate(value):
            try:
                out.append(expand_source_shorthand(item))
            except ValueError as error:
                errors.append(
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", "{msg}", {"msg": str(error)}),
                        loc=(index,),
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
