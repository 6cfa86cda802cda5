"""``sft``: supervised fine-tuning on prompt/response pairs, the prompt masked out of the loss."""

from __future__ import annotations

from arctic_like.data import DataFactory, SFTDataFactory
from arctic_like.trainer.trainer import Trainer


class SFTTrainer(Trainer):
    """Like ``causal`` but its default data factory (``sft``) labels only the response tokens."""

    name = "sft"
    data_factory: type[DataFactory] = SFTDataFactory
