"""Memory for the model states (parameters, gradients, Adam state) of 1B, 8B and 70B Llama models under each
ZeRO stage and offload setting, per GPU and per node's CPU RAM. Activations, buffers and fragmentation are
not included.

The models are built from their configs with ``from_config`` on the meta device (no download, no memory),
which gives the exact parameter count and the largest layer. Stages 2 and 3 use DeepSpeed's own estimators
(``estimate_zero2_model_states_mem_needs`` from ``stage_1_and_2``, ``estimate_zero3_model_states_mem_needs``
from ``stage3``; the CPU column includes their 1.5x buffer factor). DeepSpeed has none for stages 0 and 1;
those rows use the ZeRO paper's accounting for mixed-precision Adam: 2 bytes of 16-bit parameters, 2 of
16-bit gradients and 12 of fp32 optimizer state (master weights, momentum, variance) per parameter, with
stage 1 partitioning the 12 over the GPUs. Usage::

    python benchmarks/zero_memory.py [--gpus-per-node 8] [--nodes 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
from typing import Any

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

GIB = 1024**3

MODELS: dict[str, dict[str, Any]] = {
    "Llama-3.2-1B": {
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "tie_word_embeddings": True,
    },
    "Llama-3.1-8B": {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "tie_word_embeddings": False,
    },
    "Llama-3.1-70B": {
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "tie_word_embeddings": False,
    },
}
"""The published architectures (vocabulary of 128,256 tokens)."""

SETTINGS = (
    "stage 0 (DDP)",
    "stage 1",
    "stage 2",
    "stage 2 + offload_optimizer",
    "stage 3",
    "stage 3 + offload_optimizer",
    "stage 3 + offload_optimizer + offload_param",
)


def model_sizes(config: dict[str, Any]) -> tuple[int, int]:
    """(parameters, parameters of the largest single module) of the model built on the meta device."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(LlamaConfig(vocab_size=128256, **config))
    total = sum(p.numel() for p in model.parameters())  # a tied weight is yielded once
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    return total, largest


def estimate(setting: str, params: int, largest: int, gpus_per_node: int, nodes: int) -> tuple[float, float]:
    """(bytes per GPU, bytes of CPU RAM per node) of the model states for one setting."""
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    gpus = gpus_per_node * nodes
    if setting == "stage 0 (DDP)":
        return 16 * params, 0
    if setting == "stage 1":
        return 4 * params + 12 * params / gpus, 0
    with contextlib.redirect_stdout(io.StringIO()):
        if setting.startswith("stage 2"):
            cpu, gpu = estimate_zero2_model_states_mem_needs(
                params, gpus_per_node, nodes, cpu_offload="offload_optimizer" in setting
            )
        else:
            cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
                params,
                largest,
                gpus_per_node,
                nodes,
                cpu_offload="offload_optimizer" in setting,
                cpu_offload_params="offload_param" in setting,
                zero_init=True,
            )
    return gpu, cpu


def table(gpus_per_node: int, nodes: int) -> str:
    lines = [
        f"model states per GPU and per node's CPU RAM, GiB: {nodes} node(s) x {gpus_per_node} GPU(s)",
        f"{'model':<15}{'parameters':>14}  {'setting':<44}{'GPU':>8}{'CPU':>9}  source",
    ]
    for name, config in MODELS.items():
        params, largest = model_sizes(config)
        for setting in SETTINGS:
            gpu, cpu = estimate(setting, params, largest, gpus_per_node, nodes)
            source = "ZeRO paper" if setting in SETTINGS[:2] else "DeepSpeed"
            cpu_text = f"{cpu / GIB:9.1f}" if cpu else f"{'-':>9}"
            lines.append(f"{name:<15}{params:>14,}  {setting:<44}{gpu / GIB:8.1f}{cpu_text}  {source}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=1)
    args = parser.parse_args()
    print(table(args.gpus_per_node, args.nodes))


if __name__ == "__main__":
    main()
