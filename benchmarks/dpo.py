"""DPO speed and memory, arctic_like against TRL, and what LoRA saves over full fine-tuning.

The same saved Llama-style model, the same preference pairs (a JSONL file both read), batch, sequence
lengths, optimizer (AdamW, constant learning rate), clipping, fp32 and no shuffling, for four variants:

* ``arctic_like copy`` / ``trl copy``: the reference is a frozen copy of the policy (two forwards per step);
* ``arctic_like precomputed`` / ``trl precomputed``: the reference log-probs are computed once before
  training (``precompute_ref_log_probs``), so a step runs the policy alone.

Each run is a fresh process (``--worker``) so memory is not shared between variants; repeats are
interleaved and the fastest run counts. Reported: optimizer steps per second after ``--warmup`` steps, by
the wall clock and by process CPU time (the steadier measure on a shared machine; one torch thread), timed
by one HF ``TrainerCallback`` that both frameworks run; the time to build the trainer (for
``precomputed`` it includes the reference pass), and the peak memory of building and training: on CPU the
peak resident set sampled every 5 ms above the process's size before building; on CUDA
``torch.cuda.max_memory_allocated``. Then LoRA (rank 8 on every attention and MLP projection) against full
fine-tuning: trainable parameters and the optimizer state after one step. Usage::

    python benchmarks/dpo.py [--steps 40] [--warmup 5] [--repeats 3] [--device cpu|cuda] [--quick]

``--quick`` runs the smallest case in this process (the smoke test).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tests.reference.arctic_runs  # noqa: E402, F401  (registers the in-order data factory)

SIZES = {
    "quick": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4},
    "bench": {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4, "num_attention_heads": 8},
}
BATCH, MAX_LENGTH, LR = 8, 160, 1e-4
VARIANTS = ("arctic_like copy", "trl copy", "arctic_like precomputed", "trl precomputed")
LORA = {"type": "lora", "r": 8, "alpha": 16, "target_modules": "all-linear"}


# ---- the shared setting -------------------------------------------------------------------------------


def _text(rng: random.Random, words: int) -> str:
    return " ".join("".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 7))) for _ in range(words))


def prepare(workdir: Path, size: str, pairs: int) -> None:
    """Save the model (and its character tokenizer) and the preference pairs under ``workdir``."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from tests.reference import tiny

    tokenizer = tiny.tokenizer()
    torch.manual_seed(0)
    config = AutoConfig.for_model(
        "llama",
        **SIZES[size],
        num_key_value_heads=SIZES[size]["num_attention_heads"],
        max_position_embeddings=256,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(workdir / "model")
    tokenizer.save_pretrained(workdir / "model")
    rng = random.Random(0)
    rows = [
        {"prompt": _text(rng, 12) + "?", "chosen": " " + _text(rng, 5), "rejected": " " + _text(rng, 5)}
        for _ in range(pairs)
    ]
    (workdir / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# ---- one run -----------------------------------------------------------------------------------------


class PeakMemory:
    """Peak memory of a block: CUDA's allocator peak, or the sampled resident set above its start on CPU."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak_mib = 0.0

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
            return self
        import psutil

        process = psutil.Process()
        self.start = process.memory_info().rss
        self.peak = self.start
        self.running = True

        def sample() -> None:
            while self.running:
                self.peak = max(self.peak, process.memory_info().rss)
                time.sleep(0.005)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device == "cuda":
            self.peak_mib = (torch.cuda.max_memory_allocated() - self.start) / 2**20
            return
        self.running = False
        self.thread.join()
        self.peak_mib = (self.peak - self.start) / 2**20


def step_timer(warmup: int) -> Any:
    """An HF ``TrainerCallback`` noting when (wall clock, process CPU time) step ``warmup`` and the last step
    end."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.start: tuple[float, float] | None = None
            self.end = (0.0, 0.0)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            now = (time.perf_counter(), time.process_time())
            if state.global_step == warmup:
                self.start = now
            self.end = now

    return StepTimer()


def build_arctic(
    workdir: Path, steps: int, precompute: bool, device: str, peft: dict[str, Any] | None = None
) -> Any:
    from arctic_like.config import build_trainer, load_recipe

    model = str(workdir / "model")
    recipe = {
        "type": "dpo",
        "tokenizer": {"type": "huggingface", "name_or_path": model},
        "data": {
            "type": "dpo-in-order",
            "sources": [{"type": "jsonl", "path": str(workdir / "pairs.jsonl")}],
            "max_length": MAX_LENGTH,
            "cache_dir": str(workdir / f"cache-{os.getpid()}"),
        },
        "model": {"type": "huggingface", "name_or_path": model, "peft": peft},
        "optimizer": {"type": "adamw", "lr": LR, "weight_decay": 0.0},
        "scheduler": {"type": "constant"},
        "micro_batch_size": BATCH,
        "max_steps": steps,
        "logging_steps": 1,
        "precompute_ref_log_probs": precompute,
        "output_dir": str(workdir / "arctic"),
        "device": device,
        "progress": False,
    }
    return build_trainer(load_recipe(recipe))


def build_trl(workdir: Path, steps: int, precompute: bool, device: str) -> Any:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import DPOConfig, DPOTrainer

    from tests.reference.trl_runs import COMMON

    args = DPOConfig(
        str(workdir / "trl"),
        max_steps=steps,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        max_length=MAX_LENGTH,
        precompute_ref_log_probs=precompute,
        **{**COMMON, "use_cpu": device == "cpu"},
    )
    pairs = datasets.load_dataset("json", data_files=str(workdir / "pairs.jsonl"), split="train")
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(workdir / "model"),
        args=args,
        train_dataset=pairs,
        processing_class=AutoTokenizer.from_pretrained(workdir / "model"),
    )
    trainer.remove_callback(PrinterCallback)  # arctic_like prints nothing either
    return trainer


def worker(variant: str, workdir: Path, steps: int, warmup: int, device: str) -> dict[str, float]:
    """Build and train one variant; its speed, build time and peak memory."""
    framework, reference = variant.split()
    build = build_arctic if framework == "arctic_like" else build_trl
    timer = step_timer(warmup)
    with PeakMemory(device) as memory:
        started = time.perf_counter()
        trainer = build(workdir, steps, reference == "precomputed", device)
        built = time.perf_counter() - started
        trainer.add_callback(timer)
        trainer.train()
    assert timer.start is not None, "fewer steps than --warmup"
    return {
        "steps_per_second": (steps - warmup) / (timer.end[0] - timer.start[0]),
        "cpu_steps_per_second": (steps - warmup) / (timer.end[1] - timer.start[1]),
        "build_seconds": built,
        "peak_mib": memory.peak_mib,
    }


# ---- LoRA against full fine-tuning ------------------------------------------------------------------


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    return sum(
        t.numel() * t.element_size()
        for state in optimizer.state.values()
        for t in state.values()
        if isinstance(t, torch.Tensor)
    )


def lora_table(workdir: Path, device: str) -> dict[str, dict[str, float]]:
    """Trainable parameters and optimizer state after one DPO step, full fine-tuning against LoRA."""
    from arctic_like.model.peft import parameter_summary

    rows = {}
    for name, peft in (("full fine-tuning", None), ("LoRA r=8, all linear layers", LORA)):
        trainer = build_arctic(workdir, 1, False, device, peft)
        trainer.train()
        trainable, total = parameter_summary(trainer.model)
        rows[name] = {
            "trainable": trainable,
            "total": total,
            "optimizer_mib": optimizer_state_bytes(trainer.optimizer) / 2**20,
        }
    return rows


# ---- main --------------------------------------------------------------------------------------------


def run_worker(variant: str, workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", variant, str(workdir)]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: dict[str, list[dict[str, float]]], lora: dict[str, dict[str, float]]) -> None:
    best = {v: max(runs, key=lambda r: r["steps_per_second"]) for v, runs in results.items()}
    cpu = {v: max(r["cpu_steps_per_second"] for r in runs) for v, runs in results.items()}
    print(f"{'variant':<26} {'steps/s':>9} {'CPU steps/s':>12} {'build s':>9} {'peak MiB':>10}")
    for variant, run in best.items():
        speed, built, peak = run["steps_per_second"], run["build_seconds"], run["peak_mib"]
        print(f"{variant:<26} {speed:9.2f} {cpu[variant]:12.2f} {built:9.2f} {peak:10.1f}")
    for reference in ("copy", "precomputed"):
        ours, theirs = f"arctic_like {reference}", f"trl {reference}"
        speed = best[ours]["steps_per_second"] / best[theirs]["steps_per_second"]
        cpu_speed = cpu[ours] / cpu[theirs]
        memory = best[ours]["peak_mib"] / max(best[theirs]["peak_mib"], 1e-9)
        print(
            f"arctic_like / trl, {reference:<12} speed {speed:.2f}x (CPU time {cpu_speed:.2f}x)   "
            f"peak memory {memory:.2f}x"
        )
    print(f"{'':<30} {'trainable':>11} {'total':>11} {'optimizer MiB':>14}")
    for name, row in lora.items():
        print(f"{name:<30} {row['trainable']:>11,} {row['total']:>11,} {row['optimizer_mib']:>14.2f}")
    full, lora_row = lora.values()
    ratio = full["optimizer_mib"] / max(lora_row["optimizer_mib"], 1e-9)
    print(f"LoRA optimizer state: {ratio:.0f}x smaller")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="the smallest case, in this process")
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "WORKDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("arctic_like").setLevel(logging.WARNING)
    os.environ.setdefault("TQDM_DISABLE", "1")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    if args.worker:
        variant, workdir = args.worker
        print(json.dumps(worker(variant, Path(workdir), args.steps, args.warmup, args.device)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.quick:
            args.steps, args.warmup, args.repeats = 3, 1, 1
        prepare(workdir, "quick" if args.quick else "bench", args.steps * BATCH)  # one pass over the pairs
        results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
        for _ in range(args.repeats):
            for variant in VARIANTS:
                if args.quick:
                    results[variant].append(worker(variant, workdir, args.steps, args.warmup, args.device))
                else:
                    results[variant].append(run_worker(variant, workdir, args))
                print(variant, json.dumps(results[variant][-1]), file=sys.stderr, flush=True)
        lora = lora_table(workdir, args.device)
    where = f"cpu, {args.threads} thread(s)" if args.device == "cpu" else "cuda"
    print(f"{args.steps} steps ({args.warmup} warm-up), batch {BATCH}, {where}, best of {args.repeats}")
    report(results, lora)


if __name__ == "__main__":
    main()
