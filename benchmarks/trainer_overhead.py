"""What arctic_like's trainer costs over a hand-written PyTorch loop, and how it compares with HF's Trainer.

The same tiny Llama-style model (built from one config with the same seed), the same data loader (the
addition task through arctic_like's data factory), batch size, optimizer (AdamW), schedule (cosine with
warmup), gradient clipping and number of steps, run side by side in one process:

* ``hand``: a hand-written loop (forward, backward, clip, optimizer step, scheduler step, zero grad);
* ``arctic_like``: ``Trainer.train()`` with its default callbacks (progress off, logging every 10 steps);
* ``hf``: ``transformers.Trainer.train()`` (logging every 10 steps, no saving, no tqdm, no printing).

Each is run ``--repeats`` times, interleaved, and the fastest run counts (the least disturbed by other
load on the machine). Both wall-clock and process CPU time are reported: on a shared machine the CPU
time (one torch thread) is the steadier measure of what each loop costs. Usage::

    python benchmarks/trainer_overhead.py [--steps 300] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import transformers

from arctic_like.config import build_trainer, load_recipe

MODEL = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32,
}
LR, WARMUP, BATCH = 3e-3, 10, 32


def recipe(steps: int, workdir: Path) -> dict[str, Any]:
    """The arctic_like recipe every variant is built from (the same model, data and schedule)."""
    return {
        "type": "sft",
        "tokenizer": {"type": "char"},
        "data": {
            "type": "sft",
            "sources": [{"type": "addition", "digits": 2, "num_samples": 4000, "eval_samples": 0}],
            "max_length": 16,
            "cache_dir": str(workdir / "cache"),
        },
        "model": {"config": dict(MODEL)},
        "optimizer": {"type": "adamw", "lr": LR, "weight_decay": 0.0},
        "scheduler": {"type": "cosine", "warmup_steps": WARMUP},
        "micro_batch_size": BATCH,
        "max_steps": steps,
        "logging_steps": 10,
        "output_dir": str(workdir / "out"),
        "device": "cpu",
        "progress": False,
    }


def cosine(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < WARMUP:
            return (step + 1) / WARMUP
        return 0.5 * (1 + math.cos(math.pi * (step - WARMUP) / max(steps - WARMUP, 1)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fresh_model(model_config: transformers.PretrainedConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(model_config)


class Timer:
    """Wall-clock and process CPU seconds of a block."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    @property
    def seconds(self) -> tuple[float, float]:
        return self.wall, self.cpu


def run_hand(trainer: Any, steps: int) -> tuple[float, float]:
    """A hand-written loop over the same data loader."""
    model = fresh_model(trainer.model.config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    scheduler = cosine(optimizer, steps)
    loader = trainer.train_dataloader
    model.train()
    timer = Timer().__enter__()
    done, epoch = 0, 0
    while done < steps:
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            if done % 10 == 0:
                loss.item()  # what a loop that prints its loss every 10 steps pays
            if done == steps:
                break
        epoch += 1
    timer.__exit__()
    return timer.seconds


def run_arctic(steps: int, workdir: Path) -> tuple[float, float]:
    trainer = build_trainer(load_recipe(recipe(steps, workdir)))
    with Timer() as timer:
        trainer.train()
    assert trainer.state.global_step == steps
    return timer.seconds


def run_hf(trainer: Any, steps: int, workdir: Path) -> tuple[float, float]:
    """HF's Trainer on the same dataset and collator."""
    model = fresh_model(trainer.model.config)
    loader = trainer.train_dataloader
    args = transformers.TrainingArguments(
        output_dir=str(workdir / "hf"),
        per_device_train_batch_size=BATCH,
        max_steps=steps,
        learning_rate=LR,
        weight_decay=0.0,
        lr_scheduler_type="cosine",
        warmup_steps=WARMUP,
        max_grad_norm=1.0,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        dataloader_drop_last=True,
        seed=0,
    )
    hf = transformers.Trainer(
        model=model, args=args, train_dataset=loader.dataset, data_collator=loader.collate_fn
    )
    hf.remove_callback(transformers.trainer_callback.PrinterCallback)  # arctic_like prints nothing either
    with Timer() as timer:
        hf.train()
    return timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest here)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("arctic_like").setLevel(logging.WARNING)
    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        reference = build_trainer(load_recipe(recipe(args.steps, workdir)))  # data, tokenizer, model config
        runs: dict[str, list[tuple[float, float]]] = {"hand": [], "arctic_like": [], "hf": []}
        for _ in range(args.repeats):
            runs["hand"].append(run_hand(reference, args.steps))
            runs["arctic_like"].append(run_arctic(args.steps, workdir))
            runs["hf"].append(run_hf(reference, args.steps, workdir))
    print(f"{args.steps} steps, batch {BATCH}, {args.threads} thread(s), best of {args.repeats}:")
    print(f"  {'':<12} {'wall steps/s':>14} {'CPU steps/s':>14}")
    rate: dict[str, tuple[float, float]] = {}
    for name, times in runs.items():
        wall, cpu = min(w for w, _ in times), min(c for _, c in times)
        rate[name] = (args.steps / wall, args.steps / cpu)
        print(f"  {name:<12} {rate[name][0]:14.2f} {rate[name][1]:14.2f}")
    for other in ("hand", "hf"):
        wall = rate["arctic_like"][0] / rate[other][0]
        cpu = rate["arctic_like"][1] / rate[other][1]
        print(f"  arctic_like / {other:<5} wall {wall:.3f}   CPU {cpu:.3f}")


if __name__ == "__main__":
    main()
