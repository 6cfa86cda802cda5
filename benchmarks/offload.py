"""ZeRO-Offload on this machine: what offloading the optimizer state costs in speed and memory, and how fast
DeepSpeed's CPU Adam steps next to torch's AdamW.

1. ``zero``: the tiny Llama-style model trained through arctic_like's trainer under ``engine: deepspeed``
   (ZeRO stage 2, one process, fp32), without and with ``offload_optimizer: {device: cpu}`` (which also
   switches the optimizer to DeepSpeedCPUAdam). Reported: training steps/s after a warm-up, the peak
   resident memory of the process and how much of it training added (peak minus the resident memory when
   training started). Every run is a fresh process (peak memory is per process); the two cases alternate
   for ``--repeats`` rounds and each keeps its best round.
2. ``adam``: one optimizer step over a set of tensors with ``--params`` parameters in total (10 tensors)
   and fixed random gradients: DeepSpeedCPUAdam against ``torch.optim.AdamW`` as arctic_like builds it
   (torch's default, a per-tensor loop on CPU) and torch's ``foreach`` and ``fused`` variants. Interleaved
   rounds, the best round per optimizer, at ``--threads`` OpenMP threads (set before torch loads).
3. ``build``: the first build of the DeepSpeed C++ ops these runs need (``cpu_adam`` and the shared-memory
   collectives), each compiled into an empty temporary ``TORCH_EXTENSIONS_DIR`` in a fresh process: what
   the first DeepSpeed run on a new machine waits for (later runs load the cached build).

The ratios compare cases measured side by side in the same invocation; read those rather than the absolute
figures on a shared machine. Usage::

    python benchmarks/offload.py [--steps 60] [--repeats 3] [--params 10M] [--threads 1]
                                 [--only zero|adam|build]
    python benchmarks/offload.py --quick     # the smallest case, no builds (the smoke test runs this)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

MODEL = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32,
}
ZERO_CASES = {
    "ZeRO-2": {"stage": 2},
    "ZeRO-2 + offload_optimizer": {"stage": 2, "offload_optimizer": {"device": "cpu"}},
}
ADAM_CASES = ("torch AdamW (default)", "torch AdamW foreach", "torch AdamW fused", "DeepSpeedCPUAdam")
OPS = {"cpu_adam": "CPUAdamBuilder", "deepspeed_shm_comm": "ShareMemCommBuilder"}


def parse_count(text: str) -> int:
    """``10M``, ``100k`` or a plain integer."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1].lower(), 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def recipe(zero: dict[str, Any], steps: int, workdir: Path, samples: int = 4000) -> dict[str, Any]:
    return {
        "type": "causal",
        "seed": 0,
        "tokenizer": {"type": "char"},
        "data": {
            "sources": [{"type": "addition", "num_samples": samples, "eval_samples": 0}],
            "max_length": 32,
            "cache_dir": str(workdir / "cache"),
        },
        "model": {"type": "huggingface", "config": dict(MODEL)},
        "optimizer": {"type": "adamw", "lr": 1e-3},
        "engine": "deepspeed",
        "deepspeed": {"zero_optimization": zero},
        "micro_batch_size": 16,
        "max_steps": steps,
        "logging_steps": steps,
        "eval_strategy": "no",
        "output_dir": str(workdir / "out"),
        "device": "cpu",
        "progress": False,
    }


def rss_kib() -> int:
    """The process's resident memory now, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def child_zero(case: str, steps: int, warmup: int, workdir: Path, samples: int) -> dict[str, Any]:
    """One training run in this (fresh) process: steps/s after ``warmup`` steps, peak and added memory."""
    import resource
    import time

    from arctic_like.config import build_trainer, load_recipe

    trainer = build_trainer(load_recipe(recipe(ZERO_CASES[case], steps, workdir, samples)))
    marks: dict[str, float] = {}

    def mark(self: Any) -> None:
        if self.state.global_step == warmup:
            marks["start"] = time.perf_counter()

    trainer.callbacks.append(("post-optimizer-step", mark))
    before = rss_kib()
    trainer.train()
    seconds = time.perf_counter() - marks["start"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "steps_per_s": (steps - warmup) / seconds,
        "peak_mib": peak / 1024,
        "added_mib": (peak - before) / 1024,
        "optimizer": type(trainer.optimizer).__name__,
    }


def child_adam(params: int, rounds: int, inner: int) -> dict[str, float]:
    """Best milliseconds per optimizer step of each Adam over the same tensors and gradients."""
    import time

    import torch

    from arctic_like.optimizer import build_adam

    torch.manual_seed(0)
    sizes = [params // 10] * 9 + [params - 9 * (params // 10)]
    grads = [torch.randn(n) * 1e-3 for n in sizes]

    def make(case: str) -> torch.optim.Optimizer:
        tensors = [torch.nn.Parameter(torch.randn(n)) for n in sizes]
        groups = [{"params": tensors, "weight_decay": 0.01}]
        if case == "DeepSpeedCPUAdam":
            optimizer = build_adam("cpu_adam", groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        else:
            options = {"foreach": "foreach" in case, "fused": "fused" in case}
            optimizer = torch.optim.AdamW(groups, lr=1e-3, **options)
        for tensor, grad in zip(tensors, grads, strict=True):
            tensor.grad = grad.clone()
        optimizer.step()  # allocate the state outside the timing
        return optimizer

    optimizers = {case: make(case) for case in ADAM_CASES}
    best = dict.fromkeys(ADAM_CASES, float("inf"))
    for _ in range(rounds):
        for case, optimizer in optimizers.items():
            start = time.perf_counter()
            for _ in range(inner):
                optimizer.step()
            best[case] = min(best[case], (time.perf_counter() - start) / inner * 1000)
    return best


def child_build(builder: str) -> dict[str, float]:
    """Seconds to compile (and load) one DeepSpeed op in this process (DeepSpeed imported beforehand)."""
    import time

    from deepspeed.accelerator import get_accelerator

    from arctic_like.optimizer.adam import ninja_on_path

    ninja_on_path()  # the ninja every arctic_like run builds with
    op = get_accelerator().create_op_builder(builder)
    start = time.perf_counter()
    op.load()
    return {"seconds": time.perf_counter() - start}


def run_child(args: list[str], threads: int, **extra_env: str) -> Any:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), **extra_env}
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def zero_table(steps: int, warmup: int, repeats: int, threads: int, samples: int) -> list[str]:
    best: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for case in ZERO_CASES:
                workdir = Path(tmp) / case.replace(" ", "_")
                args = ["--child", "zero", "--case", case, "--steps", str(steps), "--warmup", str(warmup)]
                args += ["--samples", str(samples), "--workdir", str(workdir)]
                got = run_child(args, threads)
                if case not in best or got["steps_per_s"] > best[case]["steps_per_s"]:
                    best[case] = got
    base = best["ZeRO-2"]
    lines = [
        f"ZeRO-2, {MODEL['num_hidden_layers']} layers x {MODEL['hidden_size']} wide, batch 16, "
        f"{steps - warmup} timed steps after {warmup}, {threads} thread(s), best of {repeats}",
        f"{'case':<30}{'optimizer':>18}{'steps/s':>9}{'ratio':>7}{'peak MiB':>10}{'added MiB':>11}",
    ]
    for case, got in best.items():
        ratio = got["steps_per_s"] / base["steps_per_s"]
        lines.append(
            f"{case:<30}{got['optimizer']:>18}{got['steps_per_s']:>9.1f}{ratio:>6.2f}x"
            f"{got['peak_mib']:>10.0f}{got['added_mib']:>11.1f}"
        )
    return lines


def adam_table(params: int, repeats: int, inner: int, threads: int) -> list[str]:
    args = ["--child", "adam", "--params", str(params), "--repeats", str(repeats), "--inner", str(inner)]
    best = run_child(args, threads)
    base = best["torch AdamW (default)"]
    lines = [
        f"one AdamW step over {params / 1e6:g}M parameters (10 tensors), {threads} thread(s), "
        f"best of {repeats} rounds of {inner} steps",
        f"{'optimizer':<30}{'ms/step':>9}{'speed-up':>10}",
    ]
    for case, ms in best.items():
        lines.append(f"{case:<30}{ms:>9.2f}{base / ms:>9.2f}x")
    return lines


def tool_version(command: str) -> str:
    result = subprocess.run([command, "--version"], capture_output=True, text=True, check=False)
    return result.stdout.splitlines()[0].strip() if result.returncode == 0 and result.stdout else "unknown"


def ninja_version() -> str:
    """The version of the ninja arctic_like builds with (see ``ninja_on_path``)."""
    import ninja

    return tool_version(str(Path(ninja.BIN_DIR) / "ninja"))


def build_table(threads: int) -> list[str]:
    lines = [
        f"first build of DeepSpeed's ops into an empty TORCH_EXTENSIONS_DIR ({tool_version('c++')}; "
        f"ninja {ninja_version()})",
        f"{'op':<30}{'seconds':>9}",
    ]
    for name, builder in OPS.items():
        with tempfile.TemporaryDirectory() as tmp:
            got = run_child(["--child", "build", "--case", builder], threads, TORCH_EXTENSIONS_DIR=tmp)
        lines.append(f"{name:<30}{got['seconds']:>9.1f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--samples", type=int, default=4000, help="addition problems to train on")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--params", type=parse_count, default=10_000_000)
    parser.add_argument("--inner", type=int, default=5, help="optimizer steps per timed round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=["zero", "adam", "build"])
    parser.add_argument(
        "--quick", action="store_true", help="the smallest case: a few steps, 100k params, no builds"
    )
    parser.add_argument("--child", choices=["zero", "adam", "build"], help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "zero":
        print(json.dumps(child_zero(args.case, args.steps, args.warmup, args.workdir, args.samples)))
        return
    if args.child == "adam":
        print(json.dumps(child_adam(args.params, args.repeats, args.inner)))
        return
    if args.child == "build":
        print(json.dumps(child_build(args.case)))
        return
    if args.quick:
        args.steps, args.warmup, args.repeats, args.samples = 4, 2, 1, 300
        args.params, args.inner = 100_000, 1
    blocks = []
    if args.only in (None, "zero"):
        blocks.append(zero_table(args.steps, args.warmup, args.repeats, args.threads, args.samples))
    if args.only in (None, "adam"):
        blocks.append(adam_table(args.params, args.repeats, args.inner, args.threads))
    if args.only == "build" or (args.only is None and not args.quick):
        blocks.append(build_table(args.threads))
    print("\n\n".join("\n".join(block) for block in blocks))


if __name__ == "__main__":
    main()
