"""Engines: how forward, backward and the optimizer step run (``torch`` or ``deepspeed``)."""

from arctic_like.engine.base import Engine, free_port, parameter_count, resolve_device
from arctic_like.engine.deepspeed_config import build_deepspeed_config
from arctic_like.engine.deepspeed_engine import DeepSpeedEngine
from arctic_like.engine.torch_engine import TorchEngine

ENGINES: dict[str, type[Engine]] = {"torch": TorchEngine, "deepspeed": DeepSpeedEngine}


def engine_class(name: str) -> type[Engine]:
    """The engine class for a recipe's ``engine:`` value."""
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(
            f"no engine named {name!r}; available: {', '.join(sorted(ENGINES))}. "
            "Fix: set engine: torch or deepspeed."
        ) from None


__all__ = [
    "ENGINES",
    "DeepSpeedEngine",
    "Engine",
    "TorchEngine",
    "build_deepspeed_config",
    "engine_class",
    "free_port",
    "parameter_count",
    "resolve_device",
]
