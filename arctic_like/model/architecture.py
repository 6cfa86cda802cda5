"""Checks on a ``model.config`` architecture before anything is built: known ``model_type``, known keys, size.

Hugging Face config classes accept any keyword and keep the ones they do not know as plain attributes, so a
typo (``hidden_sise: 16``) silently builds the default architecture (for Llama, 6.7B parameters). Here every
key is checked against the model type's config class, and the parameter count, measured on a model built on
the ``meta`` device (no memory), is compared with the memory training it would need.
"""

from __future__ import annotations

import copy
import difflib
import functools
import inspect
import json
import os
from pathlib import Path
from typing import Any

import psutil
import torch
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

__all__ = [
    "TRAINING_COPIES",
    "available_memory",
    "build_config",
    "count_parameters",
    "format_bytes",
    "training_memory",
]

TRAINING_COPIES = 4
"""Tensors of the parameters' size that training with Adam keeps: weights, gradients and two moments."""


def _suggest(word: str, choices: list[str], n: int = 3) -> str:
    close = difflib.get_close_matches(word, choices, n=n, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _check_model_type(model_type: Any) -> None:
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        raise ValueError(
            f"model_type {model_type!r} is not a model type transformers knows."
            f"{_suggest(str(model_type), list(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES))} Fix: use a causal LM "
            f"type such as llama, qwen2, mistral or gpt2."
        )
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ValueError(
            f"model_type {model_type!r} has no causal language model in transformers (AutoModelForCausalLM)."
            f"{_suggest(model_type, list(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES))} Fix: use a decoder-only type "
            f"such as llama, qwen2, mistral or gpt2."
        )


def _known_keys(config_cls: type[PretrainedConfig]) -> set[str]:
    keys = set(inspect.signature(config_cls.__init__).parameters) - {"self", "kwargs"}
    keys |= set(config_cls().to_dict()) | set(getattr(config_cls, "attribute_map", {}))
    return {k for k in keys if not k.startswith("_")}


def _consumed(model_type: str, key: str, value: Any, default: dict[str, Any]) -> bool:
    """Whether the config class does something with ``key`` (e.g. a legacy name such as ``rope_theta``) rather
    than only storing it as a new attribute."""
    built = AutoConfig.for_model(model_type, **{key: value}).to_dict()
    changed = {k for k in set(built) | set(default) if built.get(k) != default.get(k)}
    return changed != {key}


def _check_keys(model_type: str, options: dict[str, Any]) -> None:
    config_cls = CONFIG_MAPPING[model_type]
    known = _known_keys(config_cls)
    unknown = [k for k in options if k not in known]
    if not unknown:
        return
    default = config_cls().to_dict()
    for key in unknown:
        if not _consumed(model_type, key, options[key], default):
            raise ValueError(
                f"unknown key {key!r} for model_type {model_type!r} ({config_cls.__name__})."
                f"{_suggest(key, sorted(known), n=1)} Fix: correct or remove the key ({config_cls.__name__} "
                f"would keep it unused and build its default architecture)."
            )


@functools.lru_cache(maxsize=64)
def _build_cached(frozen: str) -> PretrainedConfig:
    options = json.loads(frozen)
    model_type = options.pop("model_type")
    _check_model_type(model_type)
    _check_keys(model_type, options)
    return AutoConfig.for_model(model_type, **options)


def build_config(options: dict[str, Any]) -> PretrainedConfig:
    """The ``PretrainedConfig`` of ``options`` (``model_type`` plus keys), every key checked first.

    Raises ``ValueError`` with a short message (and close matches) for an unknown ``model_type``, a type with
    no causal LM, or a key the type's config class does not know.
    """
    frozen = json.dumps(options, sort_keys=True, default=str)
    try:
        return copy.deepcopy(_build_cached(frozen))
    except (TypeError, ValueError, AttributeError, KeyError, StrictDataclassError) as error:
        message = _one_line(error)
        raise ValueError(message if "Fix:" in message else f"{message} Fix: correct model.config.") from None


@functools.lru_cache(maxsize=64)
def _count_cached(frozen: str) -> int:
    config = AutoConfig.for_model(**json.loads(frozen))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def count_parameters(config: PretrainedConfig, vocab_size: int | None = None) -> int:
    """Parameters of the causal LM ``config`` describes (embeddings, layers, MLP, head), counted on a model
    built on the ``meta`` device; ``vocab_size`` replaces the config's. A config transformers cannot build a
    model from (an unknown activation, shapes that do not fit) is a ``ValueError`` saying so."""
    options = config.to_dict()
    if vocab_size is not None:
        options["vocab_size"] = vocab_size
    try:
        return _count_cached(json.dumps(options, sort_keys=True, default=str))
    except Exception as error:  # whatever the modelling code raises for settings it cannot build
        raise ValueError(
            f"transformers cannot build a {config.model_type} model from model.config "
            f"({type(error).__name__}: {_one_line(error)}). Fix: correct model.config."
        ) from None


def _one_line(error: BaseException, limit: int = 600) -> str:
    """``error``'s message on one line, cut at ``limit`` characters (transformers may list many names)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit] + "..."


def training_memory(parameters: int, dtype: torch.dtype) -> int:
    """Bytes of weights, gradients and Adam's two moments for ``parameters`` of ``dtype``."""
    return parameters * TRAINING_COPIES * torch.empty((), dtype=dtype).element_size()


def _cgroup_limit() -> int | None:
    """Memory a cgroup (v2) still lets this process use, when it sets a limit."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        used = int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - used, 0)


def available_memory() -> tuple[int, str]:
    """(bytes, what) training can use: the first GPU's memory when CUDA is available, else free RAM."""
    if torch.cuda.is_available():
        index = int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count()
        return torch.cuda.get_device_properties(index).total_memory, f"the memory of GPU {index}"
    free = psutil.virtual_memory().available
    cgroup = _cgroup_limit()
    return (min(free, cgroup), "available RAM") if cgroup is not None else (free, "available RAM")


def format_bytes(count: float) -> str:
    """``1536`` → ``1.5 KiB``; ``1.2e11`` → ``111.8 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} TiB"
