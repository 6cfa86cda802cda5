"""Every key ArcticTraining's config classes define (arctic_training/config/*.py, the data-factory and
data-source configs, the scheduler configs and the DPO trainer's config), written down independently of
arctic_like's mapping table so that a test can check the table covers them all. ``[]`` is a list entry."""

TRAINER = [
    "type",
    "code",
    "skip_validation",
    "model",
    "tokenizer",
    "data",
    "logger",
    "wandb",
    "scheduler",
    "optimizer",
    "deepspeed",
    "epochs",
    "loss_log_interval",
    "train_log_iter_interval",
    "train_log_metrics_path",
    "gradient_accumulation_steps",
    "micro_batch_size",
    "sequence_parallel_size",
    "expert_parallel_size",
    "arctic_moe",
    "enable_arctic_moe_custom_optimization",
    "enable_routing_replay",
    "activation_checkpoint_cpu_offload",
    "tiled_mlp_compute",
    "seed",
    "checkpoint",
    "train_iters",
    "eval_interval",
    "eval_log_iter_interval",
    "exit_iteration",
    "exit_iteration_this_run",
    "min_iterations",
    "overfit_first_batch",
    "mem_profiler",
    "mem_profiler_dir",
    "mem_profiler_max_entries",
    "kill_switch_path",
    "local_rank",
    "global_rank",
    "world_size",
]
DPO_TRAINER = ["ref_model", "beta", "ignore_label_index", "label_smoothing", "reference_model_deepspeed"]
CHECKPOINT = [
    "type",
    "output_dir",
    "enabled",
    "auto_resume",
    "save_every_n_steps",
    "save_every_n_epochs",
    "save_end_of_training",
]
DATA = [
    "type",
    "sources",
    "eval_sources",
    "train_eval_split",
    "max_length",
    "num_proc",
    "dl_num_workers",
    "seed",
    "use_data_cache",
    "cache_processed_data",
    "cache_dir",
    "cache_fs_type",
    "fail_on_missing_cache",
]
SFT_DATA = [
    "div_length",
    "mask_inputs",
    "always_max_length",
    "pad_to",
    "filter_samples",
    "pack_samples",
    "drop_last",
    "fuse_positions_prob",
    "repeat_to_pack_max_length",
    "ignore_empty_think",
]
DPO_DATA = ["max_prompt_length", "dpo_prompt_truncation_mode"]
SOURCE = ["type", "split", "sample_ratio", "sample_count", "sample_seed", "process"]
HF_SOURCE = ["name_or_path", "kwargs", "split_mapping"]
HF_INSTRUCT_SOURCE = ["role_mapping", "content_key"]
HF_CAUSAL_SOURCE = ["column"]
SNOWFLAKE_SOURCE = ["sql", "table_name", "dataset_uri", "column_mapping", "limit", "batch_size"]
LOGGER = ["output_dir", "level", "print_output_ranks", "file_output_ranks"]
WANDB = ["enable", "entity", "project", "name"]
MODEL = [
    "type",
    "name_or_path",
    "dtype",
    "save_name",
    "attn_implementation",
    "disable_activation_checkpoint",
    "peft_config",
    "hf_config_kwargs",
]
TOKENIZER = ["type", "name_or_path", "tokenize_kwargs"]
OPTIMIZER = ["type", "weight_decay", "betas", "learning_rate", "lr"]
SCHEDULER = ["type", "learning_rate", "lr"]
HF_SCHEDULER = ["name", "warmup_ratio", "scheduler_specific_kwargs"]
WSD_SCHEDULER = ["num_warmup_steps", "num_decay_steps", "min_lr_ratio"]


def all_keys() -> set[str]:
    """Every key path, as the mapping table writes them."""
    keys = set(TRAINER) | set(DPO_TRAINER)
    keys |= {f"checkpoint[].{k}" for k in CHECKPOINT} | {"checkpoint[]"}
    keys |= {f"data.{k}" for k in DATA + SFT_DATA + DPO_DATA}
    source = SOURCE + HF_SOURCE + HF_INSTRUCT_SOURCE + HF_CAUSAL_SOURCE + SNOWFLAKE_SOURCE
    for section in ("sources", "eval_sources"):
        keys |= {f"data.{section}[].{k}" for k in source} | {f"data.{section}[]"}
    keys |= {f"logger.{k}" for k in LOGGER} | {f"wandb.{k}" for k in WANDB}
    keys |= {f"model.{k}" for k in MODEL} | {f"ref_model.{k}" for k in MODEL}
    keys |= {f"tokenizer.{k}" for k in TOKENIZER} | {f"optimizer.{k}" for k in OPTIMIZER}
    keys |= {f"scheduler.{k}" for k in SCHEDULER + HF_SCHEDULER + WSD_SCHEDULER}
    return keys
