"""Trainers (``causal``, ``sft``, ``dpo``), their state and control flags, and the control-flow exceptions."""

from arctic_like.trainer.causal import CausalTrainer
from arctic_like.trainer.dpo import DPOTrainer, DPOTrainerConfig
from arctic_like.trainer.exceptions import (
    NonFiniteLossError,
    SkipStep,
    StopEpoch,
    StopTraining,
    TrainerFlowException,
)
from arctic_like.trainer.sft import SFTTrainer
from arctic_like.trainer.state import TrainerControl, TrainerState
from arctic_like.trainer.trainer import Trainer, seed_everything, skip_batches

__all__ = [
    "CausalTrainer",
    "DPOTrainer",
    "DPOTrainerConfig",
    "NonFiniteLossError",
    "SFTTrainer",
    "SkipStep",
    "StopEpoch",
    "StopTraining",
    "Trainer",
    "TrainerControl",
    "TrainerFlowException",
    "TrainerState",
    "seed_everything",
    "skip_batches",
]
