"""ArcticTraining's recipe schema, mapped onto ours: one table, applied in one pass before validation.

A recipe is *ArcticTraining-shaped* when it says ``style: arctic_training`` or uses a key that only
ArcticTraining defines (``optimizer.learning_rate``, ``data.use_data_cache``, ``logger:``, ``train_iters``,
...).
Such a recipe is translated before it is validated:

* every key of ArcticTraining's config classes has one row in :data:`ROWS`: the key path it becomes here, the
  value conversion, and a note. A key with no counterpart either has no effect on results (accepted, with a
  warning when it is set to anything but ArcticTraining's default) or needs something arctic_like does not
  have (an error naming the key and the way out, or a documented fallback with a warning);
* then :data:`DEFAULTS` fill in ArcticTraining's default wherever ours differs and the recipe gives no value.

Keys of ours pass through unchanged, so an ArcticTraining recipe may also use them (``max_steps``,
``device``...). A key both schemas have means what ArcticTraining means by it in an ArcticTraining-shaped
recipe (``model.dtype: bf16`` is the training precision, ``exit_iteration`` an absolute step). Overrides
(``--set``) of ArcticTraining keys are applied before the translation, overrides of ours after it.

``docs/migrating.md`` holds :func:`key_table` and :func:`defaults_table`; ``tests/arctic_training`` checks
that they agree (``python -m arctic_like.config.arctic_training`` prints both).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arctic_like.config.base import parse_human_value
from arctic_like.config.errors import RecipeError, where

__all__ = [
    "DEFAULTS",
    "ROWS",
    "STYLES",
    "Default",
    "Row",
    "Translation",
    "defaults_table",
    "is_arctic_training",
    "key_table",
    "translate",
]

logger = logging.getLogger("arctic_like.config")

STYLES = ("auto", "arctic_training", "arctic_like")
"""Values of a recipe's ``style:`` key: ``auto`` (default) tells an ArcticTraining recipe by its keys."""

DROP = object()
"""A conversion's result meaning "this key becomes nothing here"."""

Key = str | int


# ---- the context a conversion runs in ----------------------------------------------------------------------


@dataclass
class Context:
    """What a conversion sees: the recipe as written, where the key is, and how to report."""

    raw: dict[str, Any]
    file: str | None
    lines: dict[tuple[Key, ...], int]
    base_dir: Path | None
    path: tuple[Key, ...] = ()
    container: Any = None
    extra: list[tuple[str, Any, bool]] = field(default_factory=list)

    @property
    def line(self) -> int | None:
        for depth in range(len(self.path), -1, -1):
            if self.path[:depth] in self.lines:
                return self.lines[self.path[:depth]]
        return None

    @property
    def key(self) -> str:
        return format_path(self.path)

    def put(self, ours: str, value: Any) -> None:
        """Also set ``ours`` (``[]`` is the index of the entry being converted)."""
        self.extra.append((ours, value, False))

    def append(self, ours: str, value: Any) -> None:
        """Also append ``value`` to the list at ``ours``."""
        self.extra.append((ours, value, True))

    def warn(self, message: str) -> None:
        logger.warning("%s%s: %s", where(self.file, self.line), self.key, message)

    def refuse(self, message: str) -> RecipeError:
        return RecipeError(
            f"{where(self.file, self.line)}{self.key}: {message}",
            file=self.file,
            line=self.line,
            path=self.key,
        )

    def section(self) -> dict[str, Any]:
        """The mapping that holds the key being converted (an entry as reshaped by its entry row)."""
        return self.container if isinstance(self.container, dict) else {}


# ---- rows --------------------------------------------------------------------------------------------------

Convert = Callable[[Any, Context], Any]


@dataclass(frozen=True)
class Row:
    """One key of ArcticTraining's schema: ``at`` (``[]`` for any list index) becomes ``ours`` (``""``:
    nothing) with ``convert`` applied to its value. ``also_ours``: the key path exists in our schema too, so
    it does not tell an ArcticTraining recipe apart; ``entry``: ``convert`` reshapes the whole entry before
    its keys are mapped one by one."""

    at: str
    ours: str
    note: str
    convert: Convert | None = None
    also_ours: bool = False
    entry: bool = False
    kind: str = "mapped"
    """``same`` (same path and meaning), ``mapped``, ``fallback`` (a documented substitute, with a warning),
    ``no effect`` (accepted; a warning when set to anything but ArcticTraining's default) or ``refused`` (an
    error unless ArcticTraining's default)."""


def same(at: str, note: str = "same meaning", convert: Convert | None = None) -> Row:
    return Row(at, at, note, convert, also_ours=True, kind="same" if convert is None else "mapped")


def renamed(
    at: str,
    ours: str,
    note: str = "",
    convert: Convert | None = None,
    also_ours: bool = False,
    kind: str = "mapped",
) -> Row:
    return Row(at, ours, note or f"`{ours}`", convert, also_ours, kind=kind)


def no_effect(at: str, default: Any, why: str) -> Row:
    """Accepted; a value other than ArcticTraining's ``default`` is reported with a warning."""

    def check(value: Any, ctx: Context) -> Any:
        if value != default:
            ctx.warn(f"has no effect in arctic_like ({why}); the value {value!r} is ignored")
        return DROP

    return Row(at, "", why, check, kind="no effect")


def refused(at: str, allowed: Any, why: str, fix: str) -> Row:
    """ArcticTraining's default ``allowed`` is accepted; another value is an error saying why, and the fix."""
    choices = allowed if isinstance(allowed, tuple) else (allowed,)

    def check(value: Any, ctx: Context) -> Any:
        if value in choices:
            return DROP
        raise ctx.refuse(f"{value!r} is not supported: {why}. Fix: {fix}")

    return Row(
        at, "", f"{why}; only {' or '.join(repr(c) for c in choices)} is accepted", check, kind="refused"
    )


# ---- conversions -------------------------------------------------------------------------------------------


def _zero_is_off(value: Any, ctx: Context) -> Any:
    return DROP if value in (0, "0", None) else value


_DTYPES = {
    "bf16": "bf16",
    "bfloat16": "bf16",
    "bfloat": "bf16",
    "torch.bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "torch.float16": "fp16",
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
    "torch.float32": "fp32",
}
"""ArcticTraining's ``dtype`` spellings, by the precision they name."""


def _precision(value: Any, ctx: Context) -> Any:
    if str(value) not in _DTYPES:
        raise ctx.refuse(f"{value!r} is not a dtype. Fix: use bf16, fp16 or fp32")
    return _DTYPES[str(value)]


def _reference_dtype(value: Any, ctx: Context) -> Any:
    reference = _precision(value, ctx)
    model = ctx.raw.get("model") if isinstance(ctx.raw.get("model"), dict) else {}
    policy = _DTYPES.get(str(model.get("dtype", "bf16")), reference)
    if reference != policy:
        ctx.warn(
            f"the reference model computes in the run's precision ({policy}, from model.dtype); "
            f"{value!r} is ignored"
        )
    return DROP


def _model_type(value: Any, ctx: Context) -> Any:
    if value == "liger":
        ctx.warn(
            "Liger kernels are not available in arctic_like: the model runs with transformers' own kernels "
            "(the same losses, more activation memory)"
        )
        return "huggingface"
    return value


def _attention(value: Any, ctx: Context) -> Any:
    if value in ("flash_attention_2", "flash_attention_3"):
        import torch

        if not torch.cuda.is_available() or importlib.util.find_spec("flash_attn") is None:
            ctx.warn(f"{value} needs a CUDA GPU and the flash_attn package; using sdpa (the same results)")
            return "sdpa"
    return value


def _peft(value: Any, ctx: Context) -> Any:
    if value is None:
        return DROP
    if not isinstance(value, dict) or "peft_type" not in value:
        raise ctx.refuse("needs a peft_type (e.g. LORA). Fix: add peft_type: LORA")
    section = {k: v for k, v in value.items() if k != "peft_type"}
    return {"type": _peft_method(str(value["peft_type"])), **section}


def _peft_method(peft_type: str) -> str:
    """peft's method name for ArcticTraining's ``peft_type``, which names a config class by its prefix
    (``Lora`` for ``LoraConfig``, ``PrefixTuning``) or, as peft's ``PeftType``, ``LORA``/``PREFIX_TUNING``."""
    try:
        from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
    except ImportError:  # model.peft then says how to install peft
        return peft_type.lower()
    wanted = f"{peft_type}Config".lower()
    for method, config_class in PEFT_TYPE_TO_CONFIG_MAPPING.items():
        if config_class.__name__.lower() == wanted:
            return str(getattr(method, "value", method)).lower()
    return peft_type.lower()


def _config_overrides(value: Any, ctx: Context) -> Any:
    return value or DROP


def _not(value: Any, ctx: Context) -> Any:
    return not value


def _activation_offload(value: Any, ctx: Context) -> Any:
    if value:
        ctx.warn(
            "offloading activation checkpoints to CPU memory is a GPU-memory feature arctic_like does not "
            "have; activation checkpointing is used without offload"
        )
        ctx.put("model.gradient_checkpointing", True)
    return DROP


def _tiled_mlp(value: Any, ctx: Context) -> Any:
    if value:
        ctx.warn("tiled MLP compute is not available; the MLP runs untiled (the same results, more memory)")
    return DROP


def _arctic_moe(value: Any, ctx: Context) -> Any:
    if value is True:
        raise ctx.refuse(
            "ArcticMoE (its expert-parallel kernels) is not available. Fix: remove arctic_moe; MoE models "
            "train with transformers' own implementation"
        )
    if value == "auto":
        ctx.warn("ArcticMoE is not available: a MoE model trains with transformers' own implementation")
    return DROP


def _log_interval(value: Any, ctx: Context) -> Any:
    return 1 if value == 1 else DROP


def _metrics_path(value: Any, ctx: Context) -> Any:
    ctx.append("callbacks", {"path": "arctic_like.callbacks.JsonLogger", "kwargs": {"path": str(value)}})
    return DROP


def _eval_fraction(value: Any, ctx: Context) -> Any:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ctx.refuse("must be two fractions, [train, eval]. Fix: e.g. [0.9, 0.1]")
    return value[1] if value[1] else DROP


def _pad_to(value: Any, ctx: Context) -> Any:
    if value == "max_length":
        return True
    if value == "div_length":
        return DROP
    raise ctx.refuse(f"{value!r} is neither max_length nor div_length. Fix: use one of them")


def _filter_samples(value: Any, ctx: Context) -> Any:
    return "drop" if value else "truncate"


def _cache_flag(value: Any, ctx: Context) -> Any:
    return DROP if value is None else value


def _sample(kind: str) -> Convert:
    def convert(value: Any, ctx: Context) -> Any:
        if value is None:
            return DROP
        ctx.put("[].shuffle", True)  # ArcticTraining samples at random, seeded by sample_seed (default 42)
        if "sample_seed" not in ctx.section():
            ctx.put("[].seed", 42)
        return value

    return convert


def _source_kwargs(value: Any, ctx: Context) -> Any:
    if ctx.section().get("type") != "huggingface":
        return value  # the arguments of one of our sources (a `callable` source's function)
    if not isinstance(value, dict):
        raise ctx.refuse("must be a mapping of datasets.load_dataset arguments")
    known = {"name": "subset", "cache_dir": "cache_dir"}
    for key, item in value.items():
        if key in known:
            ctx.put(f"[].{known[key]}", item)
        elif key == "verification_mode":
            continue
        else:
            raise ctx.refuse(
                f"load_dataset argument {key!r} is not supported (the data is read offline from the local "
                f"cache). Fix: use name (the subset) or cache_dir, or save the data with save_to_disk"
            )
    return DROP


def _split_mapping(value: Any, ctx: Context) -> Any:
    role = "train" if ctx.path[1] == "sources" else "eval"
    section = ctx.section()
    if "split" not in section and ":" not in str(section.get("name_or_path", "")) and role in value:
        ctx.put("[].split", value[role])
    return DROP


def _causal_column(value: Any, ctx: Context) -> Any:
    ctx.put("[].column_mapping", {value: "text"})
    return DROP


def _deepspeed(value: Any, ctx: Context) -> Any:
    if not isinstance(value, dict):
        raise ctx.refuse("must be a mapping (DeepSpeed's config)")
    section = _human_values(copy.deepcopy(value))
    if "gradient_clipping" in section:
        ctx.put("max_grad_norm", section.pop("gradient_clipping") or None)
    for name in ("bfloat16", "bf16", "fp16"):
        precision = section.get(name)
        if isinstance(precision, dict) and set(precision) <= {"enabled"}:
            section.pop(name)
            if precision.get("enabled"):
                ctx.put("precision", "fp16" if name == "fp16" else "bf16")
    ctx.put("engine", "deepspeed")
    return section


def _human_values(section: dict[str, Any]) -> dict[str, Any]:
    """DeepSpeed settings written as ``5e8`` or ``1Gi`` turned into numbers (as ArcticTraining does)."""
    out: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(value, dict):
            out[key] = _human_values(value)
        elif isinstance(value, str):
            try:
                out[key] = parse_human_value(value)
            except ValueError:
                out[key] = value
        else:
            out[key] = value
    return out


def _checkpoint_entry(value: Any, ctx: Context) -> Any:
    if isinstance(value, dict) and value.get("enabled") is False:
        return DROP
    return value


def _wandb_enable(value: Any, ctx: Context) -> Any:
    if value:
        section = ctx.section()
        kwargs = {k: section[k] for k in ("project", "name", "entity") if section.get(k) is not None}
        kwargs.setdefault("project", "arctic-training")
        ctx.append("callbacks", {"path": "arctic_like.integrations.wandb.WandbCallback", "kwargs": kwargs})
    return DROP


def _optimizer_type(value: Any, ctx: Context) -> Any:
    base = str(value).removesuffix("_moe")
    if base == "fused_adam":  # adamw's implementation `auto` is FusedAdam where it can run (GPUs, DeepSpeed)
        return "adamw"
    return base if base == "cpu_adam" else value


def _scheduler_type(value: Any, ctx: Context) -> Any:
    return "wsd" if value == "wds" else value


def _scheduler_lr(value: Any, ctx: Context) -> Any:
    if value is None:
        return DROP
    raise ctx.refuse(
        "is not a scheduler setting (ArcticTraining refuses it too). Fix: set optimizer.learning_rate"
    )


def _tokenizer_entry(value: Any, ctx: Context) -> Any:
    if isinstance(value, dict) and "type" not in value and value.get("name_or_path"):
        return {"type": "huggingface", **value}
    return value


def _process_flag(value: Any, ctx: Context) -> Any:
    if value is False:
        raise ctx.refuse(
            "sources of already tokenized rows are not supported: every source is tokenized by the data "
            "factory. Fix: give the rows as text (text, prompt/response or messages columns)"
        )
    return DROP


# ---- data sources ------------------------------------------------------------------------------------------

KNOWN_SPLITS = {
    "HuggingFaceH4/ultrachat_200k": {"train": "train_sft", "eval": "test_sft"},
    "HuggingFaceH4/ultrafeedback_binarized": {"train": "train_prefs", "eval": "test_prefs"},
    "nvidia/AceMath-Instruct-Training-Data": {"train": "general_sft_stage2"},
}
"""ArcticTraining's split names of well-known Hub datasets (its ``split_mapping`` defaults)."""

KNOWN_ROLES = {
    "HuggingFaceH4/ultrachat_200k": {"user": "messages.role.user", "assistant": "messages.role.assistant"},
    "nvidia/AceMath-Instruct-Training-Data": {
        "user": "messages.role.user",
        "assistant": "messages.role.assistant",
    },
    "Open-Orca/OpenOrca": {"system": "system_prompt", "user": "question", "assistant": "response"},
    "THUDM/LongAlign-10k": {"user": "messages.role.user", "assistant": "messages.role.assistant"},
    "Yukang/LongAlpaca-12k": {"user": "instruction", "assistant": "output"},
    "Open-Orca/SlimOrca": {
        "system": "conversations.from.system",
        "user": "conversations.from.human",
        "assistant": "conversations.from.gpt",
    },
    "meta-math/MetaMathQA": {"user": "query", "assistant": "response"},
    "ise-uiuc/Magicoder-OSS-Instruct-75K": {"user": "problem", "assistant": "solution"},
    "lmsys/lmsys-chat-1m": {"user": "conversation.role.user", "assistant": "conversation.role.assistant"},
}
"""ArcticTraining's ``role_mapping`` defaults of well-known instruction datasets."""

AT_SOURCE_TYPES = (
    "huggingface",
    "huggingface_instruct",
    "huggingface_causal",
    "ProjectGutenbergSFT",
    "HuggingFaceH4/ultrafeedback_binarized",
    "snowflake",
)
"""ArcticTraining's built-in data source types."""


def _default_source_type(ctx: Context) -> str:
    data = ctx.raw.get("data") if isinstance(ctx.raw.get("data"), dict) else {}
    factory = data.get("type") or ctx.raw.get("type", "sft")
    return "huggingface_instruct" if factory == "sft" else "huggingface"


def _source_entry(value: Any, ctx: Context) -> Any:
    """An ArcticTraining source (a dataset name, ``name:split``, or a mapping) as one of ours."""
    if isinstance(value, str):
        name = value.split(":")[0]
        if name in AT_SOURCE_TYPES[3:]:
            value = {"type": name, "name_or_path": value}
        elif _our_source_name(value, ctx) is not None:
            return value  # one of our shorthands: a registered task, a file or a folder
        else:
            value = {"type": _default_source_type(ctx), "name_or_path": value}
    if not isinstance(value, dict):
        return value
    entry = dict(value)
    if "type" not in entry and "name_or_path" in entry:
        entry["type"] = _default_source_type(ctx)
    kind = entry.get("type")
    if kind not in AT_SOURCE_TYPES:
        return entry  # one of ours, or a user's source class
    if kind == "snowflake":
        raise ctx.refuse(
            "Snowflake sources need a Snowflake account and the snowflake connector, which arctic_like does "
            "not use. Fix: export the table (e.g. to parquet) and list the file as a source"
        )
    name = str(entry.get("name_or_path", "")).split(":")[0]
    role = "train" if ctx.path[1] == "sources" else "eval"
    if (
        "split" not in entry
        and "split_mapping" not in entry
        and ":" not in str(entry.get("name_or_path", ""))
    ):
        split = KNOWN_SPLITS.get(name, {}).get(role)
        if split is not None:
            entry["split"] = split
    if kind == "huggingface_instruct" and "role_mapping" not in entry:
        entry["role_mapping"] = KNOWN_ROLES.get(name, {"user": "user", "assistant": "assistant"})
    if kind == "ProjectGutenbergSFT":
        entry.setdefault("role_mapping", {"user": "text"})
    entry["type"] = "huggingface"
    return entry


def _our_source_name(value: str, ctx: Context) -> str | None:
    """``value`` when it is one of our source shorthands (a task name, a data file, a folder)."""
    from arctic_like.config.parts import expand_source_shorthand, recipe_dir

    token = recipe_dir.set(ctx.base_dir)
    try:
        expanded = expand_source_shorthand(value)
    except ValueError:
        return None
    finally:
        recipe_dir.reset(token)
    if isinstance(expanded, dict) and expanded.get("type") == "huggingface":
        return None  # a dataset name: ArcticTraining's meaning (its default source type) applies
    return value


# ---- the table ---------------------------------------------------------------------------------------------


def _model_rows(section: str) -> list[Row]:
    """The rows of a ``ModelConfig`` section (``model``, and ``ref_model`` of the DPO trainer)."""
    return [
        Row(
            f"{section}.type",
            f"{section}.type",
            "`huggingface` as is; `liger` falls back to `huggingface` with a warning",
            _model_type,
            also_ours=True,
            kind="fallback",
        ),
        same(f"{section}.name_or_path"),
        renamed(
            f"{section}.dtype",
            "precision",
            "`precision` (bf16: bf16 compute over fp32 master weights, as DeepSpeed's bf16 mode)",
            _precision,
            also_ours=True,
        )
        if section == "model"
        else renamed(
            f"{section}.dtype",
            "",
            "the reference computes in the run's `precision` (`model.dtype`); another value warns",
            _reference_dtype,
            also_ours=True,
        ),
        no_effect(f"{section}.save_name", None, "checkpoint engines name their own files"),
        Row(
            f"{section}.attn_implementation",
            f"{section}.attn_implementation",
            "same; flash_attention_2/3 without a GPU and flash_attn fall back to sdpa with a warning",
            _attention,
            also_ours=True,
            kind="fallback",
        ),
        renamed(
            f"{section}.disable_activation_checkpoint",
            f"{section}.gradient_checkpointing",
            "`gradient_checkpointing` (negated)",
            _not,
        ),
        renamed(
            f"{section}.peft_config",
            f"{section}.peft",
            "`peft`: `peft_type` (`LORA`, `Lora`, `PrefixTuning`, ...) becomes `type`; the other keys are "
            "the peft config's fields",
            _peft,
        ),
        renamed(
            f"{section}.hf_config_kwargs",
            f"{section}.config_overrides",
            "`config_overrides`: set on the loaded model config",
            _config_overrides,
        ),
    ]


def _source_rows(section: str) -> list[Row]:
    """The rows of one entry of ``data.sources`` / ``data.eval_sources``."""
    p = f"data.{section}[]"
    return [
        Row(
            p,
            p,
            "a dataset name (or `name:split`) or a mapping; ArcticTraining's source types become "
            "`huggingface` with their defaults (split mapping, role mapping)",
            _source_entry,
            also_ours=True,
            entry=True,
        ),
        same(f"{p}.type", "`huggingface*` types become `huggingface`; `snowflake` is refused"),
        same(f"{p}.split"),
        renamed(f"{p}.sample_ratio", f"{p}.fraction", "`fraction` with `shuffle: true`", _sample("ratio")),
        renamed(f"{p}.sample_count", f"{p}.limit", "`limit` with `shuffle: true`", _sample("count")),
        renamed(f"{p}.sample_seed", f"{p}.seed", "`seed` of the random sample"),
        renamed(
            f"{p}.process", "", "every source is tokenized; false is refused", _process_flag, kind="refused"
        ),
        same(f"{p}.name_or_path"),
        renamed(
            f"{p}.kwargs",
            f"{p}.kwargs",
            "of a Hugging Face source: `name` becomes `subset`, `cache_dir` stays, others are refused (a "
            "`callable` source's `kwargs` are ours)",
            _source_kwargs,
            also_ours=True,
        ),
        renamed(f"{p}.split_mapping", f"{p}.split", "the split of this role", _split_mapping),
        same(f"{p}.role_mapping"),
        same(f"{p}.content_key"),
        renamed(f"{p}.column", f"{p}.column_mapping", "`column_mapping: {<column>: text}`", _causal_column),
        same(f"{p}.column_mapping"),
        same(f"{p}.limit"),
        *(
            refused(f"{p}.{key}", None, "Snowflake sources are not supported", "see data.sources[].type")
            for key in ("sql", "table_name", "dataset_uri", "batch_size")
        ),
    ]


ROWS: tuple[Row, ...] = (
    # TrainerConfig
    same("type", "same names: `sft`, `causal`, `dpo`, or a custom trainer's"),
    same("code", "same; `train.py` beside the recipe is imported when `code` is not given"),
    no_effect("skip_validation", False, "factory types are always checked against the trainer's type hints"),
    Row("model", "model", "section, see `model.*`", also_ours=True),
    Row(
        "tokenizer",
        "tokenizer",
        "section; `{name_or_path: x}` without `type` is a `huggingface` tokenizer",
        _tokenizer_entry,
        also_ours=True,
        entry=True,
    ),
    Row("data", "data", "section, see `data.*`", also_ours=True),
    Row("logger", "log", "section `log`, see `logger.*`"),
    Row("wandb", "callbacks", "the offline `WandbCallback`, see `wandb.*`"),
    Row("scheduler", "scheduler", "section, see `scheduler.*`", also_ours=True),
    Row("optimizer", "optimizer", "section, see `optimizer.*`", also_ours=True),
    same(
        "deepspeed",
        "same, and it selects `engine: deepspeed`; `gradient_clipping` becomes `max_grad_norm`, "
        "`bf16`/`fp16.enabled` become `precision`",
        _deepspeed,
    ),
    same("epochs"),
    no_effect("loss_log_interval", 1, "the loss is in every log record (`logging_steps`)"),
    renamed(
        "train_log_iter_interval", "logging_steps", "1: `logging_steps: 1`; 0: our default", _log_interval
    ),
    renamed("train_log_metrics_path", "callbacks", "a `JsonLogger` callback writing there", _metrics_path),
    same("gradient_accumulation_steps"),
    same("micro_batch_size"),
    refused(
        "sequence_parallel_size",
        1,
        "Ulysses sequence parallelism is not available",
        "remove it (each process holds whole sequences)",
    ),
    refused("expert_parallel_size", 1, "expert parallelism is not available", "remove it"),
    renamed(
        "arctic_moe",
        "",
        "ArcticMoE is not available: true is refused, `auto` warns (MoE models use "
        "transformers' implementation)",
        _arctic_moe,
        kind="refused",
    ),
    refused("enable_arctic_moe_custom_optimization", False, "ArcticMoE is not available", "remove it"),
    refused("enable_routing_replay", False, "ArcticMoE is not available", "remove it"),
    renamed(
        "activation_checkpoint_cpu_offload",
        "model.gradient_checkpointing",
        "activation checkpointing without offload, with a warning",
        _activation_offload,
        kind="fallback",
    ),
    renamed(
        "tiled_mlp_compute",
        "",
        "an untiled MLP (the same results), with a warning",
        _tiled_mlp,
        kind="fallback",
    ),
    same("seed"),
    Row("checkpoint", "checkpoint", "list of engines, see `checkpoint[].*`", also_ours=True),
    renamed("train_iters", "max_steps", "`max_steps` (0: epochs decide)", _zero_is_off),
    renamed("eval_interval", "eval_steps", "`eval_steps` (0: no evaluation)", _zero_is_off),
    no_effect("eval_log_iter_interval", 1, "every evaluation is logged"),
    renamed(
        "exit_iteration",
        "exit_at_step",
        "`exit_at_step`: stop at this global step",
        _zero_is_off,
        also_ours=True,
    ),
    renamed("exit_iteration_this_run", "exit_iteration", "`exit_iteration`: steps of this run", _zero_is_off),
    renamed(
        "min_iterations", "min_steps", "`min_steps`: the training data repeats to fill them", _zero_is_off
    ),
    refused(
        "overfit_first_batch",
        False,
        "not available",
        "limit the source to one batch (`limit: <micro_batch_size>`) and raise `epochs`",
    ),
    refused(
        "mem_profiler",
        None,
        "CUDA memory-history snapshots are not available",
        "use the `arctic_like.callbacks.Profiler` callback",
    ),
    no_effect("mem_profiler_dir", None, "used only with mem_profiler"),
    no_effect("mem_profiler_max_entries", 100_000, "used only with mem_profiler"),
    same("kill_switch_path"),
    refused("local_rank", None, "set by the launcher", "remove it"),
    refused("global_rank", None, "set by the launcher", "remove it"),
    refused("world_size", None, "set by the launcher", "remove it"),
    # DPOTrainerConfig
    Row("ref_model", "ref_model", "section (the reference model), as `model.*`", also_ours=True),
    *_model_rows("ref_model"),
    same("beta"),
    refused("ignore_label_index", -100, "labels are ignored with -100", "remove it"),
    same("label_smoothing"),
    refused(
        "reference_model_deepspeed",
        ({},),
        "the reference model follows the run's engine (ArcticTraining refuses it too)",
        "remove it",
    ),
    # CheckpointConfig
    Row(
        "checkpoint[]",
        "checkpoint[]",
        "one engine; `enabled: false` drops it",
        _checkpoint_entry,
        also_ours=True,
        entry=True,
    ),
    same("checkpoint[].type", "same names: `huggingface`, `deepspeed` (and ours: `torch`)"),
    same("checkpoint[].output_dir"),
    renamed("checkpoint[].enabled", "", "false: the entry is dropped", lambda value, ctx: DROP),
    same("checkpoint[].auto_resume"),
    same("checkpoint[].save_every_n_steps", "same (0: off)", _zero_is_off),
    same("checkpoint[].save_every_n_epochs", "same (0: off)", _zero_is_off),
    same("checkpoint[].save_end_of_training"),
    # DataConfig (and the SFT / DPO data configs)
    same("data.type", "same names: `sft`, `causal`, `dpo`"),
    Row("data.sources", "data.sources", "list of sources, see `data.sources[].*`", also_ours=True),
    *_source_rows("sources"),
    Row("data.eval_sources", "data.eval_sources", "as `data.sources`", also_ours=True),
    *_source_rows("eval_sources"),
    renamed(
        "data.train_eval_split", "data.eval_fraction", "`eval_fraction`: the second value", _eval_fraction
    ),
    same("data.max_length", "same (unset: the model's max_position_embeddings, as ArcticTraining)"),
    same("data.num_proc"),
    renamed("data.dl_num_workers", "data.num_workers"),
    same("data.seed", "same: shuffles the data and draws the eval split"),
    renamed("data.use_data_cache", "data.use_cache", convert=_cache_flag),
    renamed("data.cache_processed_data", "data.use_cache", convert=_cache_flag),
    same("data.cache_dir"),
    no_effect(
        "data.cache_fs_type", "auto", "the cache is written by global rank 0; put it on a shared filesystem"
    ),
    renamed("data.fail_on_missing_cache", "data.require_cache"),
    no_effect(
        "data.div_length",
        256,
        "a batch is padded to its longest row; padding is masked, so the losses are the same",
    ),
    renamed("data.mask_inputs", "data.mask_prompt"),
    refused("data.always_max_length", False, "packing keeps documents whole", "remove it"),
    renamed("data.pad_to", "data.pad_to_max_length", "`max_length`: `pad_to_max_length: true`", _pad_to),
    renamed(
        "data.filter_samples", "data.too_long", "true: `too_long: drop`; false: `truncate`", _filter_samples
    ),
    renamed("data.pack_samples", "data.packing"),
    refused("data.drop_last", False, "every packed row is kept", "remove it"),
    refused("data.fuse_positions_prob", 0.0, "position fusing is not available", "remove it"),
    refused("data.repeat_to_pack_max_length", False, "not available", "remove it"),
    refused("data.ignore_empty_think", False, "not available", "remove it"),
    same("data.max_prompt_length", "same (the DPO data; unset, no limit: see the defaults kept)"),
    renamed(
        "data.dpo_prompt_truncation_mode",
        "data.prompt_truncation",
        "`prompt_truncation`: `keep_start` or `keep_end` of a prompt over `max_prompt_length`",
    ),
    # LoggerConfig
    renamed("logger.output_dir", "log.dir", "`log.dir` (log files `rank_<N>.log`; `/dev/null`: none)"),
    renamed("logger.level", "log.level"),
    renamed("logger.print_output_ranks", "log.print_ranks"),
    renamed("logger.file_output_ranks", "log.file_ranks"),
    # WandBConfig
    renamed(
        "wandb.enable",
        "callbacks",
        "true: the `WandbCallback` (offline, `wandb sync` uploads)",
        _wandb_enable,
    ),
    renamed("wandb.entity", "", "the callback's `entity`", lambda value, ctx: DROP),
    renamed("wandb.project", "", "the callback's `project`", lambda value, ctx: DROP),
    renamed("wandb.name", "", "the callback's `name`", lambda value, ctx: DROP),
    # ModelConfig
    *_model_rows("model"),
    # TokenizerConfig
    same("tokenizer.type"),
    same("tokenizer.name_or_path", "same (unset: the model's own tokenizer)"),
    refused("tokenizer.tokenize_kwargs", ({},), "tokenization follows the data format", "remove it"),
    # OptimizerConfig
    same(
        "optimizer.type",
        "`fused_adam` (and `_moe`) becomes `adamw`, which runs DeepSpeed's FusedAdam on GPUs under "
        "DeepSpeed and torch's AdamW (the same update) elsewhere; `cpu_adam` (and `_moe`) is "
        "DeepSpeedCPUAdam",
        _optimizer_type,
    ),
    same("optimizer.weight_decay"),
    same("optimizer.betas"),
    renamed("optimizer.learning_rate", "optimizer.lr"),
    same("optimizer.lr"),
    # SchedulerConfig (huggingface, wds)
    same(
        "scheduler.type",
        "`huggingface` as is (any transformers scheduler by name); `wds` becomes `wsd`",
        _scheduler_type,
    ),
    renamed("scheduler.learning_rate", "", "ArcticTraining refuses it too", _scheduler_lr, kind="refused"),
    renamed("scheduler.lr", "", "ArcticTraining refuses it too", _scheduler_lr, kind="refused"),
    same("scheduler.name", "same: the transformers scheduler (`linear`, `cosine`, ...)"),
    same("scheduler.warmup_ratio"),
    same("scheduler.scheduler_specific_kwargs"),
    renamed("scheduler.num_warmup_steps", "scheduler.warmup_steps"),
    renamed("scheduler.num_decay_steps", "scheduler.decay_steps"),
    same("scheduler.min_lr_ratio"),
)
"""Every key of ArcticTraining's config classes (TrainerConfig, DPOTrainerConfig, CheckpointConfig,
DataConfig, SFTDataConfig, DPODataConfig, DataSourceConfig and its Hugging Face / Snowflake subclasses,
LoggerConfig, WandBConfig, ModelConfig, TokenizerConfig, OptimizerConfig, SchedulerConfig, HFSchedulerConfig,
WSDSchedulerConfig) and what it becomes here."""

_BY_PATTERN = {row.at: row for row in ROWS}
_CONTAINERS = {row.at.rsplit(".", 1)[0] for row in ROWS if "." in row.at} | {
    row.at.removesuffix("[]") for row in ROWS if row.at.endswith("[]")
}


# ---- defaults ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Default:
    """ArcticTraining's default for our key ``ours`` where ours differs: ``value`` (or ``compute(recipe,
    ctx)``, which returns ``DROP`` when it does not apply), set when the translated recipe leaves the key
    out."""

    ours: str
    at_value: str
    our_value: str
    note: str
    value: Any = None
    compute: Callable[[dict[str, Any], Context], Any] | None = None


def _train_py(recipe: dict[str, Any], ctx: Context) -> Any:
    if ctx.base_dir is not None and (ctx.base_dir / "train.py").is_file():
        return "train.py"
    return DROP


def _precision_default(recipe: dict[str, Any], ctx: Context) -> Any:
    import torch

    return "bf16" if torch.cuda.is_available() else "fp32"


def _max_length_default(recipe: dict[str, Any], ctx: Context) -> Any:
    model = recipe.get("model") if isinstance(recipe.get("model"), dict) else {}
    settings: dict[str, Any] = dict(model.get("config") or {})
    if model.get("name_or_path"):
        path = Path(str(model["name_or_path"]))
        if ctx.base_dir is not None and not path.is_absolute():
            path = ctx.base_dir / path
        try:
            settings = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            settings = {}
    settings.update(model.get("config_overrides") or {})
    return settings.get("max_position_embeddings", 8192)


def _sft_drops_long(recipe: dict[str, Any], ctx: Context) -> Any:
    data = recipe.get("data") if isinstance(recipe.get("data"), dict) else {}
    return "drop" if (data.get("type") or recipe.get("type")) == "sft" else DROP


def _dpo_keeps_prompt_start(recipe: dict[str, Any], ctx: Context) -> Any:
    data = recipe.get("data") if isinstance(recipe.get("data"), dict) else {}
    return "keep_start" if (data.get("type") or recipe.get("type")) == "dpo" else DROP


def _when_adam(value: Any) -> Callable[[dict[str, Any], Context], Any]:
    def compute(recipe: dict[str, Any], ctx: Context) -> Any:
        optimizer = recipe.get("optimizer") if isinstance(recipe.get("optimizer"), dict) else {}
        return value if optimizer.get("type") in (None, "adamw", "fused_adam", "cpu_adam") else DROP

    return compute


def _hf_scheduler(key: str, value: Any) -> Callable[[dict[str, Any], Context], Any]:
    def compute(recipe: dict[str, Any], ctx: Context) -> Any:
        scheduler = recipe.get("scheduler") if isinstance(recipe.get("scheduler"), dict) else {}
        if scheduler.get("type") != "huggingface":
            return DROP
        if key == "warmup_ratio" and scheduler.get("warmup_steps") is not None:
            return DROP
        return value

    return compute


def _deepspeed_stage(recipe: dict[str, Any], ctx: Context) -> Any:
    return {"stage": 2} if recipe.get("engine") == "deepspeed" else DROP


DEFAULTS: tuple[Default, ...] = (
    Default("type", "`sft`", "`causal`", "the SFT trainer: prompts are masked", "sft"),
    Default("code", "`train.py`", "none", "imported when it sits beside the recipe", compute=_train_py),
    Default(
        "precision",
        "`bf16`",
        "`fp32`",
        "bf16 on a machine with a GPU; fp32 on a CPU-only machine (bf16 autocast there is slower and less "
        "exact)",
        compute=_precision_default,
    ),
    Default("model.gradient_checkpointing", "on", "off", "activation checkpointing unless disabled", True),
    Default(
        "model.attn_implementation",
        "`sdpa`",
        "transformers' choice",
        "the same kernel for most models",
        "sdpa",
    ),
    Default("optimizer.lr", "`5e-4`", "`1e-3`", "of AdamW", compute=_when_adam(5e-4)),
    Default("optimizer.weight_decay", "`0.1`", "`0.01`", "of AdamW", compute=_when_adam(0.1)),
    Default("scheduler.type", "`huggingface` (`linear`)", "`cosine`", "linear decay to 0", "huggingface"),
    Default(
        "scheduler.warmup_ratio",
        "`0.1`",
        "`0`",
        "for the huggingface scheduler, without warmup_steps",
        compute=_hf_scheduler("warmup_ratio", 0.1),
    ),
    Default(
        "data.max_length",
        "the model's `max_position_embeddings` (else 8192)",
        "`512`",
        "read from the model's config.json",
        compute=_max_length_default,
    ),
    Default(
        "data.too_long",
        "`drop` (`filter_samples`)",
        "`truncate`",
        "SFT examples longer than max_length",
        compute=_sft_drops_long,
    ),
    Default(
        "data.prompt_truncation",
        "`keep_start` (`dpo_prompt_truncation_mode`)",
        "`keep_end`",
        "DPO data: the start of a prompt longer than max_prompt_length is kept",
        compute=_dpo_keeps_prompt_start,
    ),
    Default(
        "deepspeed.zero_optimization",
        "`{stage: 2}`",
        "DeepSpeed's (stage 0)",
        "under engine: deepspeed",
        compute=_deepspeed_stage,
    ),
    Default("checkpoint[].save_end_of_training", "`false`", "`true`", "each checkpoint entry", False),
    Default(
        "checkpoint[].dir_prefix",
        "`global_step_`",
        "`checkpoint-`",
        "checkpoint folders are `global_step_<N>`",
        "global_step_",
    ),
    Default("logging_steps", "`1` (`train_log_iter_interval`)", "`10`", "a log record every step", 1),
    Default("log.print_ranks", "`[0]`", "every rank", "which ranks print log records", [0]),
)
"""ArcticTraining's defaults that differ from ours, applied to ArcticTraining-shaped recipes. Defaults kept as
ours on purpose are listed in docs/migrating.md with the reason."""


# ---- translation -------------------------------------------------------------------------------------------


@dataclass
class Translation:
    """The translated recipe, the line of each of its keys, and one note per mapped key (``--explain``)."""

    recipe: dict[str, Any]
    lines: dict[tuple[Key, ...], int]
    notes: list[str]


def pattern(path: tuple[Key, ...]) -> str:
    """``("data", "sources", 0, "split")`` → ``data.sources[].split``."""
    out = ""
    for key in path:
        out += "[]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def format_path(path: tuple[Key, ...]) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def _fill(template: str, path: tuple[Key, ...]) -> tuple[Key, ...]:
    """Our key path from a row's ``ours`` template, ``[]`` taking the indices of the ArcticTraining path."""
    indices = iter(key for key in path if isinstance(key, int))
    if template.startswith("[]"):  # relative to the entry being converted
        entry = path[: max(i for i, key in enumerate(path) if isinstance(key, int)) + 1]
        return _fill(pattern(entry) + template[2:], path)
    out: list[Key] = []
    for part in template.split("."):
        name, brackets = part.split("[", 1) if "[" in part else (part, "")
        if name:
            out.append(name)
        out += [next(indices) for _ in range(brackets.count("]"))]
    return tuple(out)


def is_arctic_training(raw: dict[str, Any]) -> str | None:
    """Why ``raw`` is an ArcticTraining recipe (its ``style``, or the first key only ArcticTraining has), or
    None."""
    style = raw.get("style", "auto")
    if style == "arctic_training":
        return "style: arctic_training"
    if style == "arctic_like":
        return None
    for path, _ in _walk(raw, ()):
        row = _row_for(path)
        if row is not None and not row.also_ours:
            return f"the ArcticTraining key {format_path(path)}"
    return None


def _row_for(path: tuple[Key, ...]) -> Row | None:
    return _BY_PATTERN.get(pattern(path))


def _walk(node: Any, path: tuple[Key, ...]) -> Iterator[tuple[tuple[Key, ...], Any]]:
    """Every key path of ``node`` that the table knows or that leads to keys it knows."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = (*path, key)
            yield sub, value
            if pattern(sub) in _CONTAINERS:
                yield from _walk(value, sub)
    elif isinstance(node, list) and pattern(path) in _CONTAINERS:
        for index, value in enumerate(node):
            sub = (*path, index)
            yield sub, value
            yield from _walk(value, sub)


class _Builder:
    """Writes converted values into the translated recipe; two keys setting one value differently are an
    error."""

    def __init__(self, ctx: Context) -> None:
        self.recipe: dict[str, Any] = {}
        self.lines: dict[tuple[Key, ...], int] = {}
        self.origin: dict[tuple[Key, ...], str] = {}
        self.ctx = ctx

    def set(self, path: tuple[Key, ...], value: Any, origin: str, line: int | None) -> None:
        node: Any = self.recipe
        for depth, key in enumerate(path[:-1]):
            nxt = path[depth + 1]
            if isinstance(node, list):
                while len(node) <= int(key):
                    node.append({})
                node = node[int(key)]
                continue
            if not isinstance(node.get(key), dict | list):
                node[key] = [] if isinstance(nxt, int) else {}
            node = node[key]
            if line is not None:
                self.lines.setdefault(path[: depth + 1], line)
        last = path[-1]
        if isinstance(node, list):
            while len(node) <= int(last):
                node.append({})
            node[int(last)] = value
        else:
            if last in node and path in self.origin and node[last] != value:
                first = self.origin[path]
                raise RecipeError(
                    f"{where(self.ctx.file, line)}{origin} and {first} both set {format_path(path)} "
                    f"({value!r} and {node[last]!r}). Fix: keep one of them.",
                    file=self.ctx.file,
                    line=line,
                    path=format_path(path),
                )
            node[last] = value
        self.origin.setdefault(path, origin)
        if line is not None:
            self.lines[path] = line

    def append(self, path: tuple[Key, ...], value: Any, origin: str, line: int | None) -> None:
        node: Any = self.recipe
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node.setdefault(path[-1], []).append(value)
        if line is not None:
            self.lines.setdefault(path, line)


def translate(
    raw: dict[str, Any],
    lines: dict[tuple[Key, ...], int],
    file: str | None = None,
    base_dir: Path | None = None,
) -> Translation:
    """``raw`` in our schema when it is an ArcticTraining recipe (see the module docstring); otherwise ``raw``
    as it is (without ``style``)."""
    style = raw.get("style", "auto")
    if style not in STYLES:
        line = lines.get(("style",))
        raise RecipeError(
            f"{where(file, line)}style: {style!r} is not one of {', '.join(STYLES)}. Fix: use one of them.",
            file=file,
            line=line,
            path="style",
        )
    reason = is_arctic_training(raw)
    recipe = {k: v for k, v in raw.items() if k != "style"}
    if reason is None:
        return Translation(recipe, lines, [])
    ctx = Context(raw=recipe, file=file, lines=lines, base_dir=base_dir)
    builder = _Builder(ctx)
    notes = [f"{file or 'recipe'}: read as an ArcticTraining recipe ({reason})"]
    _translate_node(recipe, (), (), builder, notes)
    _apply_defaults(builder, notes)
    return Translation(builder.recipe, builder.lines, notes)


def _translate_node(
    node: Any, path: tuple[Key, ...], out: tuple[Key, ...], builder: _Builder, notes: list[str]
) -> None:
    """Translate the keys of ``node`` (at ArcticTraining path ``path``; ``out``: the same place in the
    translated recipe, whose lists lack the entries dropped on the way)."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    kept = 0
    for key, value in items:
        sub = (*path, key)
        sub_out = (*out, kept if isinstance(key, int) else key)
        ctx = builder.ctx
        ctx.path, ctx.container = sub, node
        line, origin = ctx.line, format_path(sub)
        row = _row_for(sub)
        if row is not None and row.entry:
            value = row.convert(value, ctx) if row.convert else value
            if value is DROP:
                notes.append(f"{where(ctx.file, line)}{origin} dropped: {row.note}")
                continue
        kept += 1
        container = pattern(sub) in _CONTAINERS or (row is not None and row.entry)
        if isinstance(value, dict | list) and container:
            if not value and (row is None or row.also_ours):
                builder.set(sub_out, value, origin, line)
            _translate_node(value, sub, sub_out, builder, notes)
            continue
        if row is None or row.entry:
            builder.set(sub_out, value, origin, line)
            continue
        ctx.extra = []
        converted = row.convert(value, ctx) if row.convert else value
        targets = [] if converted is DROP or not row.ours else [(row.ours, converted, False)]
        for ours, extra_value, appended in [*targets, *ctx.extra]:
            if appended:
                builder.append(_fill(ours, sub_out), extra_value, origin, line)
            else:
                builder.set(_fill(ours, sub_out), extra_value, origin, line)
        if row.kind != "same" or ctx.extra:
            shown = ", ".join(f"{format_path(_fill(o, sub_out))}={v!r}" for o, v, _ in [*targets, *ctx.extra])
            notes.append(f"{where(ctx.file, line)}{origin} -> {shown or 'nothing'}: {row.note}")


def _apply_defaults(builder: _Builder, notes: list[str]) -> None:
    recipe = builder.recipe
    for default in DEFAULTS:
        for path in _expand(default.ours, recipe):
            if _get(recipe, path) is not _MISSING:
                continue
            value = default.compute(recipe, builder.ctx) if default.compute else default.value
            if value is DROP:
                continue
            builder.set(path, copy.deepcopy(value), "(default)", None)
            notes.append(
                f"default {format_path(path)} = {value!r}: ArcticTraining's default ({default.note})"
                if default.note
                else f"default {format_path(path)} = {value!r}: ArcticTraining's default"
            )


_MISSING = object()


def _expand(template: str, recipe: dict[str, Any]) -> list[tuple[Key, ...]]:
    """The paths a default's ``ours`` names (one per existing entry for a ``[]`` template)."""
    if "[]" not in template:
        return [tuple(template.split("."))]
    head, _, tail = template.partition("[]")
    items = _get(recipe, tuple(head.split(".")))
    if not isinstance(items, list):
        return []
    return [
        (*head.split("."), index, *tail.lstrip(".").split("."))
        for index, item in enumerate(items)
        if isinstance(item, dict)
    ]


def _get(node: Any, path: tuple[Key, ...]) -> Any:
    for key in path:
        found = (isinstance(node, dict) and key in node) or (
            isinstance(node, list) and isinstance(key, int) and key < len(node)
        )
        if not found:
            return _MISSING
        node = node[key]
    return node


def at_override(keys: list[Key]) -> tuple[Key, ...] | None:
    """For an override naming a key only ArcticTraining has (it is applied before the translation): our key
    path it becomes (``()``: none), which the override replaces in the recipe. None for any other key."""
    row = _row_for(tuple(keys))
    if row is None or row.also_ours:
        return None
    return _fill(row.ours, tuple(keys)) if row.ours else ()


# ---- the tables of docs/migrating.md -----------------------------------------------------------------------


def key_table() -> str:
    """The Markdown table of every ArcticTraining key and what it becomes here."""
    lines = ["| ArcticTraining key | here | |", "|---|---|---|"]
    for row in ROWS:
        ours = f"`{row.ours}`" if row.ours else "—"
        lines.append(f"| `{row.at}` | {ours} | {row.note} |")
    return "\n".join(lines)


def defaults_table() -> str:
    """The Markdown table of ArcticTraining's defaults that differ from ours (applied to its recipes)."""
    lines = ["| key here | ArcticTraining | arctic_like | |", "|---|---|---|---|"]
    for default in DEFAULTS:
        lines.append(f"| `{default.ours}` | {default.at_value} | {default.our_value} | {default.note} |")
    return "\n".join(lines)


def coverage() -> dict[str, int]:
    """How many ArcticTraining keys the table has, by kind (``same``, ``mapped``, ``no effect``,
    ``refused``)."""
    counts: dict[str, int] = {}
    for row in ROWS:
        counts[row.kind] = counts.get(row.kind, 0) + 1
    return counts


def write_docs(page: Path) -> None:
    """Put the current tables into ``page`` (docs/migrating.md), between their ``<!-- ... -->`` markers."""
    text = page.read_text(encoding="utf-8")
    for name, table in (("key-table", key_table()), ("defaults-table", defaults_table())):
        start, end = f"<!-- {name} -->\n", f"\n<!-- /{name} -->"
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = f"{head}{start}{table}{end}{tail}"
    page.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--write-docs"]:
        write_docs(Path(__file__).resolve().parents[2] / "docs" / "migrating.md")
    else:
        print(key_table(), defaults_table(), coverage(), sep="\n\n")
