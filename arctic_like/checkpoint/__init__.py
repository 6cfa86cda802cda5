"""Checkpoint engines: `torch` (exact resume), `huggingface` (export), `deepspeed` (engine state)."""

from arctic_like.checkpoint.base import CheckpointEngine
from arctic_like.checkpoint.config import CheckpointEngineConfig
from arctic_like.checkpoint.deepspeed import DeepSpeedCheckpointConfig, DeepSpeedCheckpointEngine
from arctic_like.checkpoint.errors import CheckpointError, CheckpointWriteError, CorruptCheckpointError
from arctic_like.checkpoint.huggingface import HuggingFaceCheckpointEngine
from arctic_like.checkpoint.torch_engine import TorchCheckpointEngine

__all__ = [
    "CheckpointEngine",
    "CheckpointEngineConfig",
    "CheckpointError",
    "CheckpointWriteError",
    "CorruptCheckpointError",
    "DeepSpeedCheckpointConfig",
    "DeepSpeedCheckpointEngine",
    "HuggingFaceCheckpointEngine",
    "TorchCheckpointEngine",
]
