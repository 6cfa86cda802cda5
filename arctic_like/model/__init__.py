"""Model factories: the `ModelFactory` base, the `huggingface` factory and `peft` adapters."""

from arctic_like.model.base import ModelFactory
from arctic_like.model.huggingface import DTYPES, SPECIAL_TOKEN_IDS, HFModelConfig, HFModelFactory
from arctic_like.model.peft import PeftSettings

__all__ = ["DTYPES", "SPECIAL_TOKEN_IDS", "HFModelConfig", "HFModelFactory", "ModelFactory", "PeftSettings"]
