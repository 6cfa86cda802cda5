"""`huggingface` model factory: ``AutoModelForCausalLM`` from a local path or from a config dict.

``model: {type: huggingface, name_or_path: ./my-model}`` loads saved weights; ``model: {type: huggingface,
config: {model_type: llama, hidden_size: 64, ...}}`` builds a fresh model with ``from_config``. The vocabulary
size (for a config dict; a saved model's embeddings are grown when the tokenizer is larger) and the
pad/bos/eos ids are taken from the trainer's tokenizer when there is one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import model_validator
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig

from arctic_like.config.parts import ModelConfig, resolve_recipe_path
from arctic_like.model.base import ModelFactory

__all__ = ["DTYPES", "HFModelConfig", "HFModelFactory"]

logger = logging.getLogger("arctic_like.model")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class HFModelConfig(ModelConfig):
    """Exactly one of ``name_or_path`` (a saved model) and ``config`` (an architecture to build)."""

    name_or_path: str | None = None
    config: dict[str, Any] | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    gradient_checkpointing: bool = False
    attn_implementation: str | None = None
    vocab_from_tokenizer: bool = True
    """Set ``vocab_size`` and the special token ids from the trainer's tokenizer."""
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> HFModelConfig:
        if (self.name_or_path is None) == (self.config is None):
            raise ValueError(
                "give exactly one of name_or_path (a saved model) and config "
                "(e.g. {model_type: llama, hidden_size: 64, num_hidden_layers: 2})"
            )
        if self.config is not None and "model_type" not in self.config:
            raise ValueError("model.config needs model_type (e.g. llama, gpt2)")
        return self


class HFModelFactory(ModelFactory):
    """Hugging Face causal LM, from a local directory or from an architecture config."""

    name = "huggingface"
    config = HFModelConfig

    def _source(self) -> str:
        assert self.config.name_or_path is not None
        local = resolve_recipe_path(Path(self.config.name_or_path))
        return str(local) if local.exists() else self.config.name_or_path

    def create_config(self) -> PretrainedConfig:
        cfg = self.config
        if cfg.config is not None:
            options = dict(cfg.config)
            model_type = options.pop("model_type")
            try:
                model_config = AutoConfig.for_model(model_type, **options)
            except ValueError as error:
                raise ValueError(f"model.config: {error}") from error
        else:
            try:
                model_config = AutoConfig.from_pretrained(
                    self._source(), trust_remote_code=cfg.trust_remote_code
                )
            except (OSError, ValueError) as error:
                raise ValueError(
                    f"cannot load a model config from {cfg.name_or_path!r}: {error}. "
                    f"Fix: point model.name_or_path at a directory written by save_pretrained(), "
                    f"or give model.config."
                ) from error
        tokenizer = getattr(self.trainer, "tokenizer", None)
        if cfg.vocab_from_tokenizer and tokenizer is not None:
            if cfg.config is not None:
                model_config.vocab_size = len(tokenizer)
            for attr in ("pad_token_id", "bos_token_id", "eos_token_id"):
                value = getattr(tokenizer, attr, None)
                if value is not None:
                    setattr(model_config, attr, value)
        return model_config

    def create_model(self, model_config: PretrainedConfig) -> torch.nn.Module:
        cfg = self.config
        dtype = DTYPES[cfg.dtype]
        extra: dict[str, Any] = {}
        if cfg.attn_implementation is not None:
            extra["attn_implementation"] = cfg.attn_implementation
        if cfg.config is not None:
            model = AutoModelForCausalLM.from_config(model_config, dtype=dtype, **extra)
        else:
            model = AutoModelForCausalLM.from_pretrained(
                self._source(),
                config=model_config,
                dtype=dtype,
                trust_remote_code=cfg.trust_remote_code,
                **extra,
            )
            tokenizer = getattr(self.trainer, "tokenizer", None)
            grow = cfg.vocab_from_tokenizer and tokenizer is not None
            if grow and model.get_input_embeddings().num_embeddings < len(tokenizer):
                logger.info("resizing the token embeddings to the tokenizer's %d tokens", len(tokenizer))
                model.resize_token_embeddings(len(tokenizer))
        if cfg.gradient_checkpointing:
            enable = (
                getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            )
            enable()
        # Training needs no KV cache, and without one transformers keeps packed documents apart (a packed
        # batch's restarting position_ids give a block-diagonal mask). generate() still caches: that follows
        # model.generation_config.
        model.config.use_cache = False
        logger.info(
            "model %s: %.2fM parameters, %s", type(model).__name__, model.num_parameters() / 1e6, cfg.dtype
        )
        return model
