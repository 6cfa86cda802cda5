"""`huggingface` model factory: ``AutoModelForCausalLM`` from a local path or from a config dict.

``model: {type: huggingface, name_or_path: ./my-model}`` loads saved weights (the path is relative to the
recipe); ``model: {type: huggingface, config: {model_type: llama, hidden_size: 64, ...}}`` builds a fresh
model with ``from_config``. A config dict is checked when the recipe is validated, before anything is built or
written: unknown keys and model types are errors, and so is an architecture too large to train in memory.

A fresh model takes its vocabulary size and pad/bos/eos ids from the trainer's tokenizer. A loaded model must
match its tokenizer: a tokenizer with more tokens than the model has embeddings, or with other bos/eos/pad ids
than the model's config declares, is an error unless ``resize_token_embeddings`` asks to adapt the model.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch
from pydantic import field_validator, model_validator
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig

from arctic_like.config import RecipeError
from arctic_like.config.parts import ModelConfig
from arctic_like.model.architecture import (
    TRAINING_COPIES,
    available_memory,
    build_config,
    count_parameters,
    format_bytes,
    training_memory,
)
from arctic_like.model.base import ModelFactory
from arctic_like.model.peft import PeftSettings
from arctic_like.pretrained import load_failure, no_progress_bars, resolve_pretrained

__all__ = ["DTYPES", "SPECIAL_TOKEN_IDS", "HFModelConfig", "HFModelFactory"]

logger = logging.getLogger("arctic_like.model")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SPECIAL_TOKEN_IDS = ("pad_token_id", "bos_token_id", "eos_token_id")


class HFModelConfig(ModelConfig):
    """Exactly one of ``name_or_path`` (a saved model) and ``config`` (an architecture to build)."""

    name_or_path: str | None = None
    config: dict[str, Any] | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    gradient_checkpointing: bool = False
    attn_implementation: str | None = None
    vocab_from_tokenizer: bool = True
    """Give a model built from ``config`` the tokenizer's vocabulary size (its pad/bos/eos ids always are the
    tokenizer's unless ``config`` sets them)."""
    resize_token_embeddings: bool = False
    """Let a loaded model take a different tokenizer: grow its embeddings and adopt the tokenizer's ids."""
    check_memory: bool = True
    """Refuse a ``config`` whose weights, gradients and Adam state would not fit in memory."""
    trust_remote_code: bool = False
    config_overrides: dict[str, Any] = {}
    """Attributes set on the model config after it is loaded (ArcticTraining's ``hf_config_kwargs``). A loaded
    model whose ``num_hidden_layers`` they change is built with fresh weights, as ArcticTraining does."""
    peft: PeftSettings | None = None
    """LoRA or another ``peft`` method, e.g. ``{type: lora, r: 16, alpha: 32}`` (see model/peft.py)."""

    @field_validator("name_or_path")
    @classmethod
    def _resolve_path(cls, value: str | None) -> str | None:
        return None if value is None else resolve_pretrained(value, "model.name_or_path")

    @field_validator("config")
    @classmethod
    def _check_config(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and "model_type" in value:
            build_config(value)
        return value

    @model_validator(mode="after")
    def _one_source_that_fits(self) -> HFModelConfig:
        if (self.name_or_path is None) == (self.config is None):
            raise ValueError(
                "give exactly one of name_or_path (a saved model) and config "
                "(e.g. {model_type: llama, hidden_size: 64, num_hidden_layers: 2})"
            )
        if self.config is not None and "model_type" not in self.config:
            raise ValueError("model.config needs model_type (e.g. llama, gpt2)")
        if self.config is not None and self.check_memory:
            self._check_fits_in_memory()
        return self

    def _check_fits_in_memory(self) -> None:
        assert self.config is not None
        parameters = count_parameters(build_config(self.config))
        needed = training_memory(parameters, DTYPES[self.dtype])
        limit, where = available_memory()
        if needed > limit:
            raise ValueError(
                f"model.config describes a {parameters / 1e9:.2f}B-parameter {self.config['model_type']} "
                f"model; training it needs about {format_bytes(needed)} ({self.dtype} weights, gradients and "
                f"Adam's two moments: {TRAINING_COPIES} copies), more than the {format_bytes(limit)} of "
                f"{where}. Fix: check model.config (a key left out falls back to the type's default size), "
                f"choose a smaller architecture, or set model.check_memory: false when the run shards or "
                f"offloads its state (DeepSpeed ZeRO)."
            )

    def tokenizer_defaults(self) -> dict[str, Any]:
        """A loaded model's tokenizer is, by default, the one saved with it."""
        if self.name_or_path is None:
            return {}
        return {"type": "huggingface", "name_or_path": self.name_or_path}

    def describe(self) -> str:
        """Where the model comes from, for messages."""
        return repr(self.name_or_path) if self.name_or_path is not None else "built from model.config"


def _describe_tokenizer(tokenizer: Any, trainer: Any) -> str:
    if getattr(tokenizer, "name_or_path", ""):
        return repr(tokenizer.name_or_path)
    kind = getattr(getattr(getattr(trainer, "config", None), "tokenizer", None), "type", None)
    return f"the {kind!r} tokenizer trained in-process" if kind else "the run's tokenizer"


def _same_id(model_value: Any, tokenizer_value: int) -> bool:
    """Model configs may list several eos ids (Llama 3); the tokenizer's must be one of them."""
    if isinstance(model_value, list | tuple):
        return tokenizer_value in model_value
    return model_value == tokenizer_value


class HFModelFactory(ModelFactory):
    """Hugging Face causal LM, from a local directory or from an architecture config."""

    name = "huggingface"
    config = HFModelConfig

    @property
    def tokenizer(self) -> Any:
        return getattr(self.trainer, "tokenizer", None)

    def create_config(self) -> PretrainedConfig:
        cfg = self.config
        if cfg.config is not None:
            model_config = build_config(cfg.config)
            if self.tokenizer is not None:
                if cfg.vocab_from_tokenizer:
                    model_config.vocab_size = len(self.tokenizer)
                self._adopt_special_ids(model_config, keep=set(cfg.config))
        else:
            assert cfg.name_or_path is not None
            try:
                model_config = AutoConfig.from_pretrained(
                    cfg.name_or_path, trust_remote_code=cfg.trust_remote_code
                )
            except (OSError, ValueError) as error:
                raise load_failure(cfg.name_or_path, "model", "model.name_or_path", error) from error
        for key, value in cfg.config_overrides.items():
            setattr(model_config, key, value)
        if self.tokenizer is not None:
            self._check_tokenizer(model_config)
        return model_config

    def _adopt_special_ids(self, model_config: PretrainedConfig, keep: set[str] = frozenset()) -> None:
        """Give ``model_config`` the tokenizer's pad/bos/eos ids, except those named in ``keep``."""
        for attr in SPECIAL_TOKEN_IDS:
            value = getattr(self.tokenizer, attr, None)
            if value is not None and attr not in keep:
                setattr(model_config, attr, value)

    def _check_tokenizer(self, model_config: PretrainedConfig) -> None:
        """A tokenizer the model cannot use is an error naming both (or, when asked, the model adapts)."""
        tokenizer, cfg = self.tokenizer, self.config
        problems = []
        vocab_size = getattr(model_config, "vocab_size", None)
        if vocab_size is not None and len(tokenizer) > vocab_size:
            problems.append(
                f"the tokenizer has {len(tokenizer)} tokens but the model has embeddings for {vocab_size}"
            )
        for attr in SPECIAL_TOKEN_IDS:
            ours, theirs = getattr(model_config, attr, None), getattr(tokenizer, attr, None)
            if theirs is None:
                continue
            if ours is None:  # the model does not say (e.g. no pad token): take the tokenizer's
                setattr(model_config, attr, theirs)
            elif not _same_id(ours, theirs):
                problems.append(f"the tokenizer's {attr} is {theirs} but the model's config says {ours}")
        if not problems:
            return
        if cfg.resize_token_embeddings and cfg.name_or_path is not None:
            logger.warning("model and tokenizer differ (%s); adapting the model", "; ".join(problems))
            self._adopt_special_ids(model_config)
            return
        fix = (
            "Fix: use the model's own tokenizer (leave out the tokenizer section, or point "
            "tokenizer.name_or_path at the tokenizer the model was trained with)"
        )
        if cfg.name_or_path is not None:
            fix += ", or set model.resize_token_embeddings: true to train the model with this tokenizer"
        else:
            fix += ", or remove vocab_size and the pad/bos/eos ids from model.config"
        raise RecipeError(
            f"tokenizer {_describe_tokenizer(tokenizer, self.trainer)} does not match model "
            f"{cfg.describe()}: {'; '.join(problems)}. {fix}.",
            path="tokenizer",
        )

    def _fresh_layers(self) -> bool:
        """Whether ``config_overrides`` change a loaded model's depth (its weights are then not loaded)."""
        layers = self.config.config_overrides.get("num_hidden_layers")
        if layers is None or self.config.name_or_path is None:
            return False
        saved = AutoConfig.from_pretrained(
            self.config.name_or_path, trust_remote_code=self.config.trust_remote_code
        )
        if layers == saved.num_hidden_layers:
            return False
        logger.info("config_overrides set num_hidden_layers=%s: the model gets fresh weights", layers)
        return True

    def create_model(self, model_config: PretrainedConfig) -> torch.nn.Module:
        cfg = self.config
        dtype = DTYPES[cfg.dtype]
        extra: dict[str, Any] = {}
        if cfg.attn_implementation is not None:
            extra["attn_implementation"] = cfg.attn_implementation
        if cfg.config is not None or self._fresh_layers():
            model = AutoModelForCausalLM.from_config(model_config, dtype=dtype, **extra)
        else:
            assert cfg.name_or_path is not None
            try:
                with no_progress_bars():
                    model = AutoModelForCausalLM.from_pretrained(
                        cfg.name_or_path,
                        config=model_config,
                        dtype=dtype,
                        trust_remote_code=cfg.trust_remote_code,
                        **extra,
                    )
            except (OSError, ValueError) as error:
                raise load_failure(cfg.name_or_path, "model", "model.name_or_path", error) from error
            tokenizer = self.tokenizer
            if tokenizer is not None and model.get_input_embeddings().num_embeddings < len(tokenizer):
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
