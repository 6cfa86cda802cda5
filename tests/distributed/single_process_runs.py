"""Single-process DeepSpeed runs of the real trainer, one after another in one fresh process (DeepSpeed sets
up torch.distributed, so not in pytest's); run by test_offload.py as ``python -m`` with an output directory.

Each run trains the tiny recipe for 6 steps and records what a test needs into ``<out>/results.json``: the
optimizer the factory's ``post-create-optimizer`` callback saw, the per-step losses, the engine's summary and
run-specific facts. The ZeRO-3 run comes last: its engine keeps transformers' ZeRO-3 flag up while it lives.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import Any

import deepspeed
import torch

from arctic_like import build_trainer, load_recipe
from arctic_like.model import HFModelFactory
from arctic_like.optimizer import AdamWOptimizerFactory
from arctic_like.trainer import CausalTrainer
from tests.distributed.checks import parameter_hash
from tests.distributed.launch import tiny_recipe

OFFLOAD = {"offload_optimizer": {"device": "cpu"}}


SEEN: dict[str, Any] = {}
"""What the factories' callbacks saw during the current build."""


def _saw_optimizer(factory: Any, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    SEEN["optimizer"] = type(optimizer).__name__
    SEEN["groups_weight_decay"] = [g["weight_decay"] for g in optimizer.param_groups]
    SEEN["group_sizes"] = [len(g["params"]) for g in optimizer.param_groups]
    return optimizer


def _saw_model(factory: Any, model: torch.nn.Module) -> torch.nn.Module:
    SEEN["built_partitioned"] = all(hasattr(p, "ds_id") for p in model.parameters())
    SEEN["built"] = gathered_hash(model)
    return model


def gathered_hash(model: torch.nn.Module) -> str:
    """``parameter_hash`` of the whole parameters, gathered first when ZeRO-3 partitioned them."""
    partitioned = [p for p in model.parameters() if hasattr(p, "ds_id")]
    if not partitioned:
        return parameter_hash(model)
    with deepspeed.zero.GatheredParameters(partitioned):
        return parameter_hash(model)


class RecordingOptimizerFactory(AdamWOptimizerFactory):
    name = "recording-adamw"
    callbacks = [("post-create-optimizer", _saw_optimizer)]


class RecordingModelFactory(HFModelFactory):
    name = "recording-huggingface"
    callbacks = [("post-create-model", _saw_model)]


class RecordingTrainer(CausalTrainer):
    name = "recording"
    optimizer_factory = RecordingOptimizerFactory
    model_factory = RecordingModelFactory


def recipe(out: Path, **overrides: Any) -> dict[str, Any]:
    """The tiny recipe under ``engine: deepspeed`` (unless overridden), with the recording factories."""
    base = tiny_recipe(out, **{"type": "recording", "engine": "deepspeed", **overrides})
    del base["code"]
    base["model"] = {**base["model"], "type": "recording-huggingface"}
    base["optimizer"] = {**base["optimizer"], "type": "recording-adamw"}
    return base


def train(config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Build and train; returns the trainer and what its factories' callbacks saw plus the losses."""
    SEEN.clear()
    trainer = build_trainer(load_recipe(config))
    trainer.train()
    seen = dict(SEEN)
    history = trainer.state.log_history
    seen["losses"] = [h["loss"] for h in history if "loss" in h and "train_runtime" not in h]
    seen["describe"] = getattr(trainer.engine, "describe", lambda: trainer.engine.name)()
    seen["total_flos"] = trainer.state.total_flos
    return trainer, seen


def main() -> None:
    out = Path(sys.argv[1])
    results: dict[str, dict[str, Any]] = {}
    _, results["torch"] = train(recipe(out / "torch", engine="torch"))
    for stage in (1, 2):
        trainer, seen = train(
            recipe(out / f"zero{stage}", deepspeed={"zero_optimization": {"stage": stage, **OFFLOAD}})
        )
        seen["cpu_offload"] = trainer.engine.optimizer.cpu_offload
        results[f"zero{stage}-offload"] = seen
    zero2 = {"zero_optimization": {"stage": 2, **OFFLOAD}}
    trainer, seen = train(recipe(out / "bf16", precision="bf16", deepspeed=zero2))
    seen["module_dtype"] = str(next(trainer.model.parameters()).dtype)
    seen["master_dtype"] = str(trainer.engine.optimizer.single_partition_of_fp32_groups[0].dtype)
    results["zero2-offload-bf16"] = seen
    model = {**recipe(out)["model"], "gradient_checkpointing": True}
    trainer, seen = train(recipe(out / "checkpointing", model=model, deepspeed=zero2))
    layers = [m for m in trainer.model.modules() if getattr(m, "gradient_checkpointing", False)]
    seen["checkpointed_layers"] = len(layers)
    checkpoint = deepspeed.checkpointing.checkpoint
    seen["deepspeed_checkpoint"] = all(m._gradient_checkpointing_func is checkpoint for m in layers)
    seen["config_section"] = trainer.engine.ds_config["activation_checkpointing"]
    results["zero2-offload-checkpointing"] = seen
    del trainer
    gc.collect()

    zero3 = {"zero_optimization": {"stage": 3, **OFFLOAD, "offload_param": {"device": "cpu"}}}
    checkpoints = [
        {"type": "huggingface"},
        {"type": "deepspeed", "save_every_n_steps": 6, "export_hf": True},
    ]
    trainer, seen = train(recipe(out / "zero3", deepspeed=zero3, checkpoint=checkpoints))
    seen["trained"] = gathered_hash(trainer.model)
    seen["param_devices"] = sorted({str(p.ds_tensor.device) for p in trainer.model.parameters()})
    seen["offload_optimizer"] = bool(trainer.engine.optimizer.offload_optimizer)
    results["zero3-offload"] = seen
    del trainer
    gc.collect()

    # Fine-tuning the export under ZeRO-3: from_pretrained loads it into the partitioned model.
    exported = {**recipe(out)["model"], "name_or_path": str(out / "zero3" / "huggingface" / "checkpoint-6")}
    del exported["config"]
    _, results["zero3-offload-from-export"] = train(recipe(out / "finetune", model=exported, deepspeed=zero3))
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
