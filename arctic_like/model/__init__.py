"""Model factories: the `ModelFactory` base and the `huggingface` factory."""

from arctic_like.model.base import ModelFactory
from arctic_like.model.huggingface import DTYPES, HFModelConfig, HFModelFactory

__all__ = ["DTYPES", "HFModelConfig", "HFModelFactory", "ModelFactory"]
