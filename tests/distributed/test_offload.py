"""One process, real trainer, `engine: deepspeed`: ZeRO-Offload (stages 1-3), ZeRO-3 parameter offload with
HF export, bf16 and activation checkpointing from the recipe (the runs are in single_process_runs.py)."""

from __future__ import annotations

from typing import Any

import pytest
from transformers import AutoModelForCausalLM

from tests.distributed.checks import LOSS_RTOL, parameter_hash

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

OFFLOADED = ["zero1-offload", "zero2-offload", "zero3-offload"]


@pytest.fixture(scope="module")
def runs(deepspeed_single_process: Any) -> dict[str, dict[str, Any]]:
    return deepspeed_single_process.results()


def _relative(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b) == 6
    return max(abs(x - y) / abs(y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("run", OFFLOADED)
def test_offloaded_optimizer_is_deepspeed_cpu_adam_with_decay_groups(runs, run: str) -> None:
    """The factory's `post-create-optimizer` callback sees DeepSpeed's CPU Adam, with the decay groups."""
    assert runs["torch"]["optimizer"] == "AdamW"
    seen = runs[run]
    assert seen["optimizer"] == "DeepSpeedCPUAdam"
    assert seen["groups_weight_decay"] == [0.01, 0.0]
    assert seen["group_sizes"] == runs["torch"]["group_sizes"]  # ZeRO-3: judged by full shapes
    assert "optimizer DeepSpeedCPUAdam, optimizer state offloaded to cpu" in seen["describe"]


@pytest.mark.parametrize("stage", [1, 2])
def test_zero_offload_trains_like_torch_adamw(runs, stage: int) -> None:
    """DeepSpeed took its offload path (`cpu_offload`) and the losses are torch AdamW's."""
    seen = runs[f"zero{stage}-offload"]
    assert seen["cpu_offload"] is True
    assert seen["describe"].startswith(f"zero stage {stage},")
    assert _relative(seen["losses"], runs["torch"]["losses"]) < LOSS_RTOL


def test_zero3_builds_the_model_partitioned_and_offloads_parameters(runs) -> None:
    seen = runs["zero3-offload"]
    assert seen["built_partitioned"] is True  # built under deepspeed.zero.Init, never whole
    assert not runs["torch"]["built_partitioned"]
    assert seen["param_devices"] == ["cpu"] and seen["offload_optimizer"] is True
    assert "parameters offloaded to cpu" in seen["describe"]
    assert seen["total_flos"] == pytest.approx(runs["torch"]["total_flos"])  # full sizes, not partitions
    losses = seen["losses"]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("export", ["huggingface/checkpoint-6", "checkpoints/checkpoint-6/hf"])
def test_zero3_offload_exports_the_trained_weights(deepspeed_single_process, runs, export: str) -> None:
    """The `huggingface` engine (gathering the partitions) and `deepspeed`'s `export_hf` (zero_to_fp32)."""
    model = AutoModelForCausalLM.from_pretrained(deepspeed_single_process.root / "zero3" / export)
    assert parameter_hash(model) == runs["zero3-offload"]["trained"]


def test_zero3_fine_tunes_its_export_loaded_into_the_partitioned_model(runs) -> None:
    """`model.name_or_path` under ZeRO-3: transformers loads the weights into the zero.Init partitions."""
    seen = runs["zero3-offload-from-export"]
    assert seen["built_partitioned"] is True
    assert seen["built"] == runs["zero3-offload"]["trained"]
    assert seen["losses"][0] < runs["zero3-offload"]["losses"][0]  # it starts from the trained weights


def test_bf16_from_precision_keeps_fp32_master_weights(runs) -> None:
    seen = runs["zero2-offload-bf16"]
    assert seen["module_dtype"] == "torch.bfloat16" and seen["master_dtype"] == "torch.float32"
    assert seen["describe"].endswith("bf16")
    fp32 = runs["zero2-offload"]["losses"]
    assert seen["losses"] != fp32 and _relative(seen["losses"], fp32) < 1e-3


def test_activation_checkpointing_runs_through_deepspeed_with_identical_results(runs) -> None:
    seen = runs["zero2-offload-checkpointing"]
    assert seen["config_section"] == {}  # filled in: DeepSpeed's defaults
    assert seen["checkpointed_layers"] == 3 and seen["deepspeed_checkpoint"] is True
    assert seen["describe"].endswith("activation checkpointing")
    assert seen["losses"] == runs["zero2-offload"]["losses"]  # recomputation changes nothing, bit for bit
