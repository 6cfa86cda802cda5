"""docs/recipes.md documents every recipe field."""

import re
from pathlib import Path

import pytest

from arctic_like.checkpoint.huggingface import HuggingFaceCheckpointConfig
from arctic_like.config import (
    CallbackSpec,
    CheckpointConfig,
    DataConfig,
    DataSourceConfig,
    LogConfig,
    SchedulerConfig,
    TrainerConfig,
)
from arctic_like.data import (
    AdditionSourceConfig,
    CallableSourceConfig,
    DiskSourceConfig,
    DPODataConfig,
    FileSourceConfig,
    HFDataSourceConfig,
    ReverseSourceConfig,
    SFTDataConfig,
)
from arctic_like.model import HFModelConfig
from arctic_like.optimizer import AdamWConfig, SGDConfig
from arctic_like.scheduler import HFSchedulerConfig, WSDSchedulerConfig
from arctic_like.tokenizer import BPETokenizerConfig, HFTokenizerConfig
from arctic_like.trainer import DPOTrainerConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"
MODELS = [
    TrainerConfig,
    BPETokenizerConfig,
    HFTokenizerConfig,
    DataConfig,
    SFTDataConfig,
    DataSourceConfig,
    FileSourceConfig,
    DiskSourceConfig,
    HFDataSourceConfig,
    CallableSourceConfig,
    AdditionSourceConfig,
    ReverseSourceConfig,
    HFModelConfig,
    AdamWConfig,
    SGDConfig,
    SchedulerConfig,
    WSDSchedulerConfig,
    HFSchedulerConfig,
    CheckpointConfig,
    LogConfig,
    HuggingFaceCheckpointConfig,
    CallbackSpec,
    DPOTrainerConfig,
    DPODataConfig,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_is_documented(model):
    documented = set(re.findall(r"`([a-z_]+)`", DOC.read_text()))
    missing = set(model.model_fields) - documented
    assert not missing, f"docs/recipes.md does not mention {sorted(missing)} of {model.__name__}"
