"""A stand-in trainer hierarchy for the config tests (the real trainer is exercised in test_with_trainer)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from arctic_like.config import TrainerConfig
from arctic_like.data import CausalDataFactory, DataFactory, SFTDataFactory
from arctic_like.model import HFModelFactory, ModelFactory
from arctic_like.optimizer import AdamWOptimizerFactory, OptimizerFactory
from arctic_like.registry import Registrable
from arctic_like.scheduler import CosineSchedulerFactory, SchedulerFactory
from arctic_like.tokenizer import BPETokenizerFactory, CharTokenizerFactory, TokenizerFactory


class FakeTrainer(Registrable):
    config: ClassVar[type[TrainerConfig]] = TrainerConfig
    tokenizer_factory: type[TokenizerFactory] = CharTokenizerFactory
    data_factory: type[DataFactory] = CausalDataFactory
    model_factory: type[ModelFactory] = HFModelFactory
    optimizer_factory: type[OptimizerFactory] = AdamWOptimizerFactory
    scheduler_factory: SchedulerFactory = CosineSchedulerFactory

    def __init__(self, config: Any) -> None:
        self.config = config


class FakeCausal(FakeTrainer):
    name = "causal"


class FakeSFTConfig(TrainerConfig):
    prompt_template: str = "{prompt}"
    mask_fraction: float = Field(default=1.0, ge=0)


class FakeSFT(FakeTrainer):
    name = "sft"
    config = FakeSFTConfig
    data_factory = SFTDataFactory


class Restricted(FakeTrainer):
    """A union hint restricts the allowed tokenizers to these two (and their subclasses)."""

    name = "restricted"
    tokenizer_factory: type[BPETokenizerFactory | CharTokenizerFactory] = BPETokenizerFactory
