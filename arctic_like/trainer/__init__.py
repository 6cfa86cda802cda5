"""Trainers (``causal``, ``sft``), their state and control flags, and the control-flow exceptions."""

from arctic_like.trainer.exceptions import SkipStep, StopEpoch, StopTraining, TrainerFlowException
from arctic_like.trainer.state import TrainerControl, TrainerState

__all__ = ["SkipStep", "StopEpoch", "StopTraining", "TrainerControl", "TrainerFlowException", "TrainerState"]
