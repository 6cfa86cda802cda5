"""Data factories (`causal`, `sft`), sources and the synthetic tasks (`addition`, `reverse`)."""

from arctic_like.data.base import (
    CACHE_VERSION,
    IGNORE_INDEX,
    CausalDataFactory,
    DataFactory,
    SFTDataConfig,
    SFTDataFactory,
    collate,
    greedy_accuracy,
)
from arctic_like.data.sources import load_source
from arctic_like.data.synthetic import AdditionTask, ReverseTask, SyntheticTask, make_task

__all__ = [
    "CACHE_VERSION",
    "IGNORE_INDEX",
    "AdditionTask",
    "CausalDataFactory",
    "DataFactory",
    "ReverseTask",
    "SFTDataConfig",
    "SFTDataFactory",
    "SyntheticTask",
    "collate",
    "greedy_accuracy",
    "load_source",
    "make_task",
]
