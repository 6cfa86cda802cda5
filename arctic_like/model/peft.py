"""LoRA and every other ``peft`` method, as the ``model.peft:`` section of a recipe.

``model: {peft: {type: lora, r: 16, alpha: 32, dropout: 0.05, target_modules: [q_proj, v_proj]}}`` wraps
the model the factory built with ``peft.get_peft_model``: the base weights are frozen and only the adapter
(plus any ``modules_to_save``) trains. ``type`` names any ``peft`` method (``lora``, ``ia3``, ``loha``,
``prefix_tuning``, ...); the other keys are fields of that method's ``peft`` config class (``LoraConfig``
for ``lora``) and are validated against it, so a misspelt or mistyped field is an error naming the section.
Short names are accepted where peft prefixes a field with the method: ``alpha`` and ``dropout`` are
``lora_alpha`` and ``lora_dropout``.

Requires the ``peft`` extra (``pip install arctic-like[peft]``); it is imported only when a recipe uses it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import ConfigDict, model_validator

from arctic_like.config.base import BaseConfig

if TYPE_CHECKING:
    import peft

__all__ = [
    "ADAPTER_FILE",
    "PeftSettings",
    "base_fingerprint",
    "is_peft_model",
    "load_adapter_state",
    "merged_model",
    "parameter_summary",
    "peft_config_class",
    "save_adapter",
    "wrap_with_peft",
]

logger = logging.getLogger("arctic_like.model")

ADAPTER_FILE = "adapter_model.safetensors"
"""The adapter weights file ``peft`` writes and ``PeftModel.from_pretrained`` reads."""


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise ImportError(
            "model.peft needs the `peft` package. Fix: pip install 'arctic-like[peft]' (or pip install peft)."
        ) from None
    return peft


def _normalise(name: str) -> str:
    return name.strip().upper().replace("-", "_")


def peft_config_class(type_name: str) -> type[peft.PeftConfig]:
    """The ``peft`` config class of a method (``lora`` → ``LoraConfig``; case and ``-``/``_`` ignored)."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    by_name = {str(getattr(k, "value", k)): v for k, v in PEFT_TYPE_TO_CONFIG_MAPPING.items()}
    wanted = _normalise(type_name)
    if wanted not in by_name:
        known = sorted(n.lower() for n in by_name)
        close = difflib.get_close_matches(type_name.lower(), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown peft type {type_name!r}.{hint} Fix: use one of {', '.join(known)}.")
    return by_name[wanted]


def _field_name(config_cls: type, type_name: str, key: str, fields: set[str]) -> str:
    """The config class's field for recipe key ``key`` (``alpha`` → ``lora_alpha`` for LoRA)."""
    if key in fields:
        return key
    for prefix in (type_name.lower().replace("-", "_"), "lora"):
        if f"{prefix}_{key}" in fields:
            return f"{prefix}_{key}"
    settable = sorted(f for f in fields if f not in _MANAGED)
    short = {f.removeprefix("lora_"): f for f in settable if f.startswith("lora_")}
    close = difflib.get_close_matches(key, [*settable, *short], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"{config_cls.__name__} has no field {key!r}.{hint} "
        f"Fix: use one of its fields: {', '.join(settable)}."
    )


_MANAGED = {
    "peft_type",
    "peft_version",
    "base_model_name_or_path",
    "revision",
    "inference_mode",
    "auto_mapping",
}
"""Fields that peft (or the model factory) fills in; a recipe does not set them."""


class PeftSettings(BaseConfig):
    """The ``model.peft`` section: ``type`` (a peft method) and that method's config fields.

    ``task_type`` defaults to ``CAUSAL_LM``. The fields are checked when the recipe is loaded, by building the
    ``peft`` config once (pydantic validates the values against the config class's type hints).
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    type: str = "lora"

    @model_validator(mode="after")
    def _check_against_peft(self) -> PeftSettings:
        self.build()
        return self

    def options(self) -> dict[str, Any]:
        """The recipe's fields under the names the peft config class uses."""
        config_cls = peft_config_class(self.type)
        fields = {f.name for f in dataclasses.fields(config_cls)}
        out: dict[str, Any] = {"task_type": "CAUSAL_LM"} if "task_type" in fields else {}
        for key, value in (self.model_extra or {}).items():
            name = _field_name(config_cls, self.type, key, fields)
            if name in _MANAGED:
                raise ValueError(f"{name} is set by arctic_like, not by the recipe. Fix: remove {key!r}.")
            out[name] = value
        return out

    def build(self) -> peft.PeftConfig:
        """A fresh ``peft`` config object (e.g. ``LoraConfig``) from this section."""
        from pydantic import TypeAdapter
        from pydantic import ValidationError as PydanticValidationError

        config_cls = peft_config_class(self.type)
        options = self.options()
        try:
            adapter = TypeAdapter(config_cls)
        except Exception:  # a config class whose hints pydantic cannot read: peft's own checks still run
            adapter = None
        try:
            if adapter is not None:
                return adapter.validate_python(options)
            return config_cls(**options)
        except PydanticValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e['input']!r})"
                for e in error.errors()
            )
            raise ValueError(f"{config_cls.__name__}: {problems}") from None
        except (TypeError, ValueError) as error:
            raise ValueError(f"{config_cls.__name__}: {error}") from None


def is_peft_model(model: Any) -> bool:
    """Whether ``model`` is wrapped by ``peft`` (without importing peft when it is not installed)."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def parameter_summary(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; tied weights counted once."""
    params = {id(p): p for p in model.parameters()}.values()
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return trainable, total


def wrap_with_peft(model: torch.nn.Module, peft_config: peft.PeftConfig) -> torch.nn.Module:
    """``peft.get_peft_model`` plus what training needs: input gradients under gradient checkpointing (the
    frozen embeddings would otherwise cut the graph of a reentrant checkpoint)."""
    peft = _peft()
    if is_peft_model(model):
        raise ValueError(
            "the model is already a peft model; wrapping it again would stack adapters. "
            "Fix: remove model.peft, or load the base model without its adapter."
        )
    wrapped = peft.get_peft_model(model, peft_config)
    checkpointing = getattr(model, "is_activation_checkpointing", None)  # transformers >= 5
    if checkpointing is None:
        checkpointing = getattr(model, "is_gradient_checkpointing", False)
    if checkpointing and hasattr(wrapped, "enable_input_require_grads"):
        wrapped.enable_input_require_grads()
    return wrapped


def save_adapter(model: torch.nn.Module, directory: Path) -> None:
    """Write the adapter (``adapter_config.json`` + ``adapter_model.safetensors``) for
    ``PeftModel.from_pretrained``; peft adds the embeddings when they were resized for the tokenizer."""
    model.save_pretrained(str(directory), safe_serialization=True)


def load_adapter_state(model: torch.nn.Module, file: Path) -> None:
    """Load adapter weights written by :func:`save_adapter` into a peft model (every adapter weight must be
    present: a partial load would silently train from the wrong point)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = load_file(str(file), device=str(next(model.parameters()).device))
    result = set_peft_model_state_dict(model, state)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    expected = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = [n for n in getattr(result, "missing_keys", []) or [] if n in expected]
    if unexpected or missing:
        detail = f"unexpected {unexpected[:3]}" if unexpected else f"missing {missing[:3]}"
        raise ValueError(f"{file} does not match the model's adapter ({detail})")


def base_fingerprint(model: torch.nn.Module) -> str:
    """A fingerprint of the frozen weights (the base model under an adapter): names, shapes and sums.

    An adapter checkpoint stores only the trained weights; the fingerprint lets resume refuse another base.
    """
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:
                continue
            with whole_parameter(param):
                data = param.detach().double()
                stats = torch.stack([data.sum(), data.abs().sum()]).tolist() if data.numel() else []
            digest.update(f"{name}:{tuple(data.shape)}:{[f'{s:.10e}' for s in stats]}".encode())
    return digest.hexdigest()


def is_partitioned(model: torch.nn.Module) -> bool:
    """Built under DeepSpeed ZeRO-3's ``zero.Init``: each parameter holds only this process's shard."""
    return any(hasattr(param, "ds_id") for param in model.parameters())


def whole_parameter(param: torch.nn.Parameter) -> contextlib.AbstractContextManager[Any]:
    """The full tensor of a ZeRO-3 partitioned ``param`` while inside (gathered from every process, which must
    all enter); ``param`` itself otherwise."""
    if not hasattr(param, "ds_id"):
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters([param])


def merged_model(model: torch.nn.Module, state: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """A CPU copy of a peft model with its adapter merged into the base weights (``merge_and_unload``).

    The live model is not touched (merging in place and unmerging would change its weights by rounding). The
    copy is built on the meta device and takes its tensors from ``state`` (default: the model's own state
    dict), so only CPU memory is used and the full weights may come from a ZeRO-3 gather.
    """
    peft = _peft()
    base = model.get_base_model()
    if state is None:
        state = model.state_dict()
    cpu_state = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
    with torch.device("meta"):
        skeleton = peft.get_peft_model(type(base)(base.config), model.peft_config[model.active_adapter])
    missing, unexpected = skeleton.load_state_dict(cpu_state, strict=False, assign=True)
    if unexpected or [k for k in missing if not k.endswith("inv_freq")]:
        raise ValueError(
            f"cannot merge the adapter: the model does not match a fresh {type(base).__name__} with the same "
            f"adapter (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    merged = skeleton.merge_and_unload()
    merged.tie_weights()
    return merged
