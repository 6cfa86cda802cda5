"""ArcticTraining's recipe schema mapped onto ours: every key has a row, and each kind of row does what the
table says (renames, conversions, defaults, refusals with their fix, fallbacks with a warning)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from arctic_like.config import RecipeError, load_recipe
from arctic_like.config.arctic_training import DEFAULTS, ROWS, coverage, is_arctic_training, translate
from tests.arctic_training.at_keys import all_keys


def tr(raw: dict, base_dir: Path | None = None) -> dict:
    return translate(raw, {}, base_dir=base_dir).recipe


def test_the_table_has_one_row_per_arctic_training_key():
    patterns = [row.at for row in ROWS]
    assert len(patterns) == len(set(patterns))
    assert set(patterns) == all_keys()
    assert coverage() == {"same": 44, "mapped": 68, "no effect": 9, "refused": 30, "fallback": 6}


def test_a_recipe_is_arctic_trainings_by_its_keys_or_its_style():
    assert (
        is_arctic_training({"optimizer": {"learning_rate": 1e-3}})
        == "the ArcticTraining key optimizer.learning_rate"
    )
    assert is_arctic_training({"data": {"sources": [{"type": "x", "sample_count": 5}]}}) is not None
    assert is_arctic_training({"type": "sft", "optimizer": {"lr": 1e-3}, "model": {"dtype": "bf16"}}) is None
    assert is_arctic_training({"style": "arctic_training"}) == "style: arctic_training"
    assert is_arctic_training({"style": "arctic_like", "train_iters": 5}) is None
    ours = {"type": "callable", "function": "m:rows", "kwargs": {"count": 8}}  # a source's kwargs of ours
    assert is_arctic_training({"data": {"sources": [ours]}}) is None
    assert tr({"style": "arctic_training", "data": {"sources": [ours]}})["data"]["sources"] == [ours]


def test_an_arctic_like_recipe_passes_through_without_style():
    raw = {"style": "arctic_like", "model": {"dtype": "bfloat16"}, "max_steps": 3}
    assert tr(raw) == {"model": {"dtype": "bfloat16"}, "max_steps": 3}


def test_unknown_style_is_an_error():
    with pytest.raises(RecipeError, match=r"style: 'at' is not one of auto, arctic_training, arctic_like"):
        translate({"style": "at"}, {})


def test_renames_and_conversions():
    out = tr(
        {
            "train_iters": 100,
            "eval_interval": 0,
            "exit_iteration": 50,
            "exit_iteration_this_run": 10,
            "min_iterations": "1Ki",
            "train_log_iter_interval": 1,
            "optimizer": {"type": "fused_adam", "learning_rate": "1e-4", "betas": [0.9, 0.95]},
            "scheduler": {"type": "wds", "num_warmup_steps": 5, "num_decay_steps": 10, "min_lr_ratio": 0.1},
            "model": {
                "dtype": "bfloat16",
                "disable_activation_checkpoint": True,
                "hf_config_kwargs": {"a": 1},
            },
            "data": {
                "dl_num_workers": 2,
                "use_data_cache": False,
                "mask_inputs": False,
                "pack_samples": True,
                "train_eval_split": [0.9, 0.1],
                "pad_to": "max_length",
                "filter_samples": False,
            },
            "logger": {"level": "DEBUG", "output_dir": "/dev/null", "print_output_ranks": "*"},
        }
    )
    assert out["max_steps"] == 100 and "eval_steps" not in out
    assert (out["exit_at_step"], out["exit_iteration"], out["min_steps"]) == (50, 10, "1Ki")
    assert out["logging_steps"] == 1 and out["precision"] == "bf16"
    assert out["optimizer"] == {"type": "adamw", "lr": "1e-4", "betas": [0.9, 0.95], "weight_decay": 0.1}
    assert out["scheduler"] == {"type": "wsd", "warmup_steps": 5, "decay_steps": 10, "min_lr_ratio": 0.1}
    assert out["model"] == {
        "gradient_checkpointing": False,
        "config_overrides": {"a": 1},
        "attn_implementation": "sdpa",
    }
    assert out["data"] == {
        "num_workers": 2,
        "use_cache": False,
        "mask_prompt": False,
        "packing": True,
        "eval_fraction": 0.1,
        "pad_to_max_length": True,
        "too_long": "truncate",
        "max_length": 8192,
    }
    assert out["log"] == {"level": "DEBUG", "dir": "/dev/null", "print_ranks": "*"}
    cpu_adam = tr({"style": "arctic_training", "optimizer": {"type": "cpu_adam_moe"}})["optimizer"]
    assert cpu_adam == {"type": "cpu_adam", "lr": 5e-4, "weight_decay": 0.1}  # DeepSpeedCPUAdam, as there


def test_arctic_training_defaults_fill_only_what_the_recipe_leaves_out(tmp_path):
    (tmp_path / "train.py").write_text("")
    result = translate(
        {"train_iters": 5, "checkpoint": [{"type": "huggingface", "output_dir": "o"}]}, {}, base_dir=tmp_path
    )
    out = result.recipe
    assert out["type"] == "sft" and out["code"] == "train.py"
    assert out["optimizer"] == {"lr": 5e-4, "weight_decay": 0.1}
    assert out["scheduler"] == {"type": "huggingface", "warmup_ratio": 0.1}
    assert out["checkpoint"] == [
        {
            "type": "huggingface",
            "output_dir": "o",
            "save_end_of_training": False,
            "dir_prefix": "global_step_",
        }
    ]
    assert out["model"] == {"gradient_checkpointing": True, "attn_implementation": "sdpa"}
    assert (out["logging_steps"], out["log"], out["data"]) == (
        1,
        {"print_ranks": [0]},
        {"max_length": 8192, "too_long": "drop"},
    )
    assert out["precision"] in ("fp32", "bf16")
    notes = "\n".join(result.notes)
    assert "default type = 'sft': ArcticTraining's default" in notes
    assert (
        len([n for n in result.notes if n.startswith("default ")]) == len(DEFAULTS) - 2
    )  # no deepspeed stage, no DPO prompt truncation


def test_max_length_defaults_to_the_models_position_embeddings(pretrained):
    out = tr({"train_iters": 1, "model": {"name_or_path": str(pretrained)}})
    assert out["data"]["max_length"] == 256


def test_notes_name_the_line_of_each_mapped_key(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("seed: 1\noptimizer:\n  learning_rate: 1e-3\n")
    notes: list[str] = []
    with pytest.raises(RecipeError):  # no model: only the notes matter here
        load_recipe(recipe, notes=notes)
    assert (
        notes[0]
        == f"{recipe}: read as an ArcticTraining recipe (the ArcticTraining key optimizer.learning_rate)"
    )
    assert f"{recipe}:3: optimizer.learning_rate -> optimizer.lr='1e-3': `optimizer.lr`" in notes


def test_two_keys_setting_one_value_differently_is_an_error(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("optimizer:\n  lr: 1e-3\n  learning_rate: 1e-4\n")
    with pytest.raises(
        RecipeError,
        match=r"r\.yaml:3: optimizer\.learning_rate and optimizer\.lr both set optimizer\.lr \('1e-4' and "
        r"'1e-3'\)\. Fix: keep one of them",
    ):
        load_recipe(recipe)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"sequence_parallel_size": 2},
            r"sequence_parallel_size: 2 is not supported: Ulysses sequence parallelism",
        ),
        ({"arctic_moe": True}, r"arctic_moe: ArcticMoE \(its expert-parallel kernels\) is not available"),
        (
            {"overfit_first_batch": True},
            r"overfit_first_batch: True is not supported: not available\. Fix: limit",
        ),
        ({"mem_profiler": "step"}, r"mem_profiler: 'step' is not supported: CUDA memory-history snapshots"),
        ({"data": {"always_max_length": True}}, r"data\.always_max_length: True is not supported"),
        ({"tokenizer": {"tokenize_kwargs": {"add_special_tokens": True}}}, r"tokenizer\.tokenize_kwargs: "),
        ({"scheduler": {"learning_rate": 1e-3}}, r"scheduler\.learning_rate: is not a scheduler setting"),
        ({"local_rank": 0}, r"local_rank: 0 is not supported: set by the launcher"),
        ({"model": {"dtype": "int8"}}, r"model\.dtype: 'int8' is not a dtype\. Fix: use bf16, fp16 or fp32"),
        ({"ref_model": {"dtype": "int8"}}, r"ref_model\.dtype: 'int8' is not a dtype\. Fix: use bf16"),
        (
            {"ignore_label_index": -1},
            r"ignore_label_index: -1 is not supported: labels are ignored with -100",
        ),
        (
            {"reference_model_deepspeed": {"zero_optimization": {"stage": 3}}},
            r"reference_model_deepspeed: .* is not supported: the reference model follows the run's engine",
        ),
        ({"model": {"peft_config": {"r": 4}}}, r"model\.peft_config: needs a peft_type \(e\.g\. LORA\)"),
        ({"data": {"sources": [{"type": "snowflake", "sql": "select 1"}]}}, r"Snowflake sources need"),
        (
            {"data": {"sources": [{"name_or_path": "x", "process": False}]}},
            r"process: sources of already tokenized",
        ),
        (
            {"data": {"sources": [{"name_or_path": "x", "kwargs": {"data_dir": "d"}}]}},
            r"load_dataset argument 'data_dir' is not supported",
        ),
    ],
)
def test_refused_keys_say_why_and_how(raw, message):
    with pytest.raises(RecipeError, match=message):
        tr({"style": "arctic_training", **raw})


@pytest.mark.parametrize(
    ("raw", "warning"),
    [
        ({"model": {"type": "liger"}}, "Liger kernels are not available"),
        ({"model": {"attn_implementation": "flash_attention_2"}}, "flash_attention_2 needs a CUDA GPU"),
        ({"activation_checkpoint_cpu_offload": True}, "activation checkpointing is used without offload"),
        ({"tiled_mlp_compute": True}, "tiled MLP compute is not available"),
        ({"arctic_moe": "auto"}, "ArcticMoE is not available"),
        ({"eval_log_iter_interval": 5}, "has no effect in arctic_like (every evaluation is logged)"),
        ({"data": {"div_length": 64}}, "has no effect in arctic_like (a batch is padded to its longest row"),
        (
            {"model": {"dtype": "bf16"}, "ref_model": {"dtype": "fp32"}},
            "ref_model.dtype: the reference model computes in the run's precision (bf16, from model.dtype); "
            "'fp32' is ignored",
        ),
    ],
)
def test_fallbacks_and_ignored_values_warn(raw, warning, caplog):
    with caplog.at_level(logging.WARNING, logger="arctic_like.config"):
        tr({"style": "arctic_training", **raw})
    assert warning in caplog.text


def test_defaults_of_arctic_training_are_silent(caplog):
    with caplog.at_level(logging.WARNING, logger="arctic_like.config"):
        tr(
            {
                "style": "arctic_training",
                "eval_log_iter_interval": 1,
                "data": {"div_length": 256},
                "ref_model": {"dtype": "bf16"},
            }
        )
    assert not caplog.text


def test_source_shapes():
    out = tr(
        {
            "style": "arctic_training",
            "data": {
                "sources": [
                    "HuggingFaceH4/ultrachat_200k",
                    "org/other:train[:10]",
                    {"type": "huggingface_causal", "name_or_path": "c", "column": "body"},
                    {"type": "ProjectGutenbergSFT", "name_or_path": "g"},
                    {"name_or_path": "n", "sample_ratio": 0.5, "sample_seed": 3, "kwargs": {"name": "en"}},
                    {"name_or_path": "m", "split_mapping": {"train": "tr", "eval": "ev"}, "content_key": "v"},
                ],
                "eval_sources": ["HuggingFaceH4/ultrachat_200k"],
            },
        }
    )
    sources = out["data"]["sources"]
    assert sources[0] == {
        "type": "huggingface",
        "name_or_path": "HuggingFaceH4/ultrachat_200k",
        "split": "train_sft",
        "role_mapping": {"user": "messages.role.user", "assistant": "messages.role.assistant"},
    }
    assert sources[1] == {
        "type": "huggingface",
        "name_or_path": "org/other:train[:10]",
        "role_mapping": {"user": "user", "assistant": "assistant"},
    }
    assert sources[2] == {"type": "huggingface", "name_or_path": "c", "column_mapping": {"body": "text"}}
    assert sources[3] == {"type": "huggingface", "name_or_path": "g", "role_mapping": {"user": "text"}}
    assert sources[4] == {
        "type": "huggingface",
        "name_or_path": "n",
        "role_mapping": {"user": "user", "assistant": "assistant"},
        "fraction": 0.5,
        "shuffle": True,
        "seed": 3,
        "subset": "en",
    }
    assert sources[5]["split"] == "tr" and sources[5]["content_key"] == "v"
    assert out["data"]["eval_sources"][0]["split"] == "test_sft"


def test_sources_of_ours_stay_ours():
    out = tr(
        {
            "style": "arctic_training",
            "data": {"sources": ["addition", {"type": "reverse", "sample_count": 8}]},
        }
    )
    assert out["data"]["sources"] == [
        "addition",
        {"type": "reverse", "limit": 8, "shuffle": True, "seed": 42},
    ]


def test_deepspeed_section_selects_its_engine():
    out = tr(
        {
            "style": "arctic_training",
            "deepspeed": {
                "zero_optimization": {"reduce_bucket_size": "5e8"},
                "gradient_clipping": 0.5,
                "bfloat16": {"enabled": True},
            },
        }
    )
    assert out["engine"] == "deepspeed" and out["max_grad_norm"] == 0.5 and out["precision"] == "bf16"
    assert out["deepspeed"] == {"zero_optimization": {"reduce_bucket_size": 500_000_000}}
    assert tr({"style": "arctic_training", "deepspeed": {}})["deepspeed"] == {
        "zero_optimization": {"stage": 2}
    }


def test_wandb_metrics_path_and_disabled_checkpoints():
    out = tr(
        {
            "style": "arctic_training",
            "wandb": {"enable": True, "project": "p", "name": "n"},
            "train_log_metrics_path": "m.jsonl",
            "checkpoint": [
                {"type": "deepspeed", "output_dir": "a", "enabled": False},
                {"type": "huggingface", "output_dir": "b", "save_every_n_steps": 0, "save_every_n_epochs": 1},
            ],
        }
    )
    assert out["callbacks"] == [
        {"path": "arctic_like.integrations.wandb.WandbCallback", "kwargs": {"project": "p", "name": "n"}},
        {"path": "arctic_like.callbacks.JsonLogger", "kwargs": {"path": "m.jsonl"}},
    ]
    assert out["checkpoint"] == [
        {
            "type": "huggingface",
            "output_dir": "b",
            "save_every_n_epochs": 1,
            "save_end_of_training": False,
            "dir_prefix": "global_step_",
        }
    ]
    assert (
        tr({"style": "arctic_training", "wandb": {"enable": False, "project": "p"}}).get("callbacks") is None
    )


def test_peft_config_and_the_reference_model():
    out = tr(
        {
            "type": "dpo",
            "beta": 0.2,
            "label_smoothing": 0.1,
            "ignore_label_index": -100,
            "reference_model_deepspeed": {},
            "model": {"peft_config": {"peft_type": "LORA", "r": 4, "lora_alpha": 8}},
            "ref_model": {
                "name_or_path": "ref",
                "type": "liger",
                "dtype": "bf16",
                "disable_activation_checkpoint": True,
            },
            "data": {"max_prompt_length": 12, "dpo_prompt_truncation_mode": "keep_end"},
        }
    )
    assert out["model"]["peft"] == {"type": "lora", "r": 4, "lora_alpha": 8}
    assert out["ref_model"] == {"name_or_path": "ref", "type": "huggingface", "gradient_checkpointing": False}
    assert (out["beta"], out["label_smoothing"]) == (0.2, 0.1)
    assert "ignore_label_index" not in out and "reference_model_deepspeed" not in out
    assert (out["data"]["max_prompt_length"], out["data"]["prompt_truncation"]) == (12, "keep_end")
    assert tr({"type": "dpo", "train_iters": 1})["data"]["prompt_truncation"] == "keep_start"  # its default


@pytest.mark.parametrize(
    ("peft_type", "method"),
    [("LORA", "lora"), ("Lora", "lora"), ("PrefixTuning", "prefix_tuning"), ("IA3", "ia3"), ("LoHa", "loha")],
)
def test_peft_type_names_a_peft_config_class_or_a_peft_type(peft_type, method):
    """ArcticTraining builds ``getattr(peft, f"{peft_type}Config")``: a class prefix; peft's ``PeftType``
    names are accepted too. The section is then checked against the peft config class when it is loaded."""
    model = tr({"style": "arctic_training", "model": {"peft_config": {"peft_type": peft_type}}})["model"]
    assert model["peft"] == {"type": method}


def test_overrides_of_arctic_training_keys_replace_the_recipes(tmp_path, pretrained):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"model: {{name_or_path: {pretrained}}}\ndata: {{sources: [addition], max_length: 32}}\n"
        "train_iters: 10\noptimizer: {lr: 1e-3}\n"
    )
    config = load_recipe(recipe, ["optimizer.learning_rate=2e-3", "train_iters=3", "data.max_length=48"])
    assert (config.optimizer.lr, config.max_steps, config.data.max_length) == (2e-3, 3, 48)
    with pytest.raises(RecipeError, match="train_iters: Extra inputs are not permitted"):
        load_recipe(recipe, ["style=arctic_like"])
