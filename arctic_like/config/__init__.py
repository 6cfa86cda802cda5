"""Recipe configuration: pydantic models for every part, human-friendly numbers, and YAML loading.

See :mod:`arctic_like.config.trainer` for how a trainer declares the factory classes each part may use.
"""

from arctic_like.config.base import (
    BaseConfig,
    HumanFloat,
    HumanFraction,
    HumanInt,
    parse_human_fraction,
    parse_human_int,
)
from arctic_like.config.loading import RecipeError, apply_overrides, build_trainer, load_recipe
from arctic_like.config.parts import (
    CallbackSpec,
    CheckpointConfig,
    DataConfig,
    DataSourceConfig,
    LogConfig,
    ModelConfig,
    OptimizerConfig,
    PartConfig,
    SchedulerConfig,
    TokenizerConfig,
)
from arctic_like.config.trainer import (
    CompileConfig,
    TrainerConfig,
    factory_choice,
    import_code_file,
    import_object,
    resolve_factory,
    resolve_trainer_class,
    trainer_config_class,
)

__all__ = [
    "BaseConfig",
    "CallbackSpec",
    "CheckpointConfig",
    "CompileConfig",
    "DataConfig",
    "DataSourceConfig",
    "HumanFloat",
    "HumanFraction",
    "HumanInt",
    "LogConfig",
    "ModelConfig",
    "OptimizerConfig",
    "PartConfig",
    "RecipeError",
    "SchedulerConfig",
    "TokenizerConfig",
    "TrainerConfig",
    "apply_overrides",
    "build_trainer",
    "factory_choice",
    "import_code_file",
    "import_object",
    "load_recipe",
    "parse_human_fraction",
    "parse_human_int",
    "resolve_factory",
    "resolve_trainer_class",
    "trainer_config_class",
]
