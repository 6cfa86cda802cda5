"""Data: factories (`causal`, `sft`, `dpo`), sources (files, saved and cached datasets, synthetic tasks,
user classes), example formats (text, prompt/response, chat, preference pairs), tokenization, packing, the
processed-data cache."""

from arctic_like.data.base import CACHE_VERSION, CausalDataFactory, DataFactory, SFTDataConfig, SFTDataFactory
from arctic_like.data.dpo import DPODataConfig, DPODataFactory
from arctic_like.data.evaluation import greedy_accuracy
from arctic_like.data.formats import (
    FORMATS,
    ChatFormat,
    PromptResponseFormat,
    RowFormat,
    TextFormat,
    register_format,
    row_features,
)
from arctic_like.data.packing import collate, pack_documents
from arctic_like.data.source import DataSource, rows_to_dataset
from arctic_like.data.sources import (
    CallableSource,
    CallableSourceConfig,
    DiskSource,
    DiskSourceConfig,
    FileSource,
    FileSourceConfig,
    HFDataSource,
    HFDataSourceConfig,
)
from arctic_like.data.synthetic import (
    AdditionSource,
    AdditionSourceConfig,
    AdditionTask,
    ReverseSource,
    ReverseSourceConfig,
    ReverseTask,
    SyntheticSource,
    SyntheticTask,
    make_task,
)
from arctic_like.data.tokenize import IGNORE_INDEX, ChatTemplateError, Encoder, Framing, tokenizer_framing

__all__ = [
    "CACHE_VERSION",
    "FORMATS",
    "IGNORE_INDEX",
    "AdditionSource",
    "AdditionSourceConfig",
    "AdditionTask",
    "CallableSource",
    "CallableSourceConfig",
    "CausalDataFactory",
    "ChatFormat",
    "ChatTemplateError",
    "DPODataConfig",
    "DPODataFactory",
    "DataFactory",
    "DataSource",
    "DiskSource",
    "DiskSourceConfig",
    "Encoder",
    "FileSource",
    "FileSourceConfig",
    "Framing",
    "HFDataSource",
    "HFDataSourceConfig",
    "PromptResponseFormat",
    "ReverseSource",
    "ReverseSourceConfig",
    "ReverseTask",
    "RowFormat",
    "SFTDataConfig",
    "SFTDataFactory",
    "SyntheticSource",
    "SyntheticTask",
    "TextFormat",
    "collate",
    "greedy_accuracy",
    "make_task",
    "pack_documents",
    "register_format",
    "row_features",
    "rows_to_dataset",
    "tokenizer_framing",
]
