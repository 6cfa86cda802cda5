"""Model factories: the `ModelFactory` base and the `huggingface` factory."""

from arctic_like.model.base import ModelFactory
from arctic_like.model.huggingface import DTYPES, SPECIAL_TOKEN_IDS, HFModelConfig, HFModelFactory

__all__ = ["DTYPES", "SPECIAL_TOKEN_IDS", "HFModelConfig", "HFModelFactory", "ModelFactory"]
