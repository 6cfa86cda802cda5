"""What arctic_like's trainer costs over a hand-written PyTorch loop, and how it compares with HF's Trainer
(and, on the null model, Lightning).

``--case tiny`` (the default): the same tiny Llama-style model (built from one config with the same seed),
the same data loader (the addition task through arctic_like's data factory), batch size, optimizer (AdamW),
schedule (cosine with warmup), gradient clipping and number of steps, run side by side in one process:

* ``hand``: a hand-written loop (forward, backward, clip, optimizer step, scheduler step, zero grad);
* ``arctic_like``: ``Trainer.train()`` with its default callbacks (progress off, logging every 10 steps);
* ``hf``: ``transformers.Trainer.train()`` (logging every 10 steps, no saving, no tqdm, no printing).

Each is run ``--repeats`` times, interleaved, and the fastest run counts (the least disturbed by other
load on the machine). Both wall-clock and process CPU time are reported: on a shared machine the CPU
time (one torch thread) is the steadier measure of what each loop costs.

``--case null``: the same loops around a model with one parameter, whose loss ignores the batch, so that
only the loop is timed: data loading of a tiny batch, forward, backward, clipping, AdamW, the schedule,
zeroing, logging every 10 steps, and for the frameworks their callbacks and bookkeeping. Lightning's
``Trainer`` joins. A step-end callback of each loop's own framework stamps the time every 10 steps from step
``--warmup`` to the last (set-up and tear-down left out); a loop's time per step in a round is the median
over those 10-step windows (each with one logged loss), so windows that another process interrupted do not
count. Rounds (``--rounds``) are interleaved, the order rotated each round; the figure is each framework's
time per step minus the hand loop's in the same round, in µs, as the median over the rounds with the lowest
and highest. Usage::

    python benchmarks/trainer_overhead.py [--case tiny|null] [--steps 300] [--repeats 3] [--threads 1]
    python benchmarks/trainer_overhead.py --case null [--steps 1000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import transformers
from torch.utils.data import DataLoader
from transformers.modeling_outputs import CausalLMOutput

from arctic_like.config import build_trainer, load_recipe
from arctic_like.config.parts import ModelConfig
from arctic_like.data import DataFactory
from arctic_like.model import ModelFactory
from arctic_like.trainer import CausalTrainer

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


def hf_arguments(
    output_dir: Path, batch: int, steps: int, logging_steps: int
) -> transformers.TrainingArguments:
    """HF's settings for the runs arctic_like's recipes describe: AdamW, cosine with warm-up, clipping at 1,
    no saving, reporting or progress bar, on the CPU."""
    return transformers.TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=LR,
        weight_decay=0.0,
        lr_scheduler_type="cosine",
        warmup_steps=WARMUP,
        max_grad_norm=1.0,
        logging_steps=logging_steps,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        dataloader_drop_last=True,
        seed=0,
    )


def run_hf(trainer: Any, steps: int, workdir: Path) -> tuple[float, float]:
    """HF's Trainer on the same dataset and collator."""
    model = fresh_model(trainer.model.config)
    loader = trainer.train_dataloader
    args = hf_arguments(workdir / "hf", BATCH, steps, logging_steps=10)
    hf = transformers.Trainer(
        model=model, args=args, train_dataset=loader.dataset, data_collator=loader.collate_fn
    )
    hf.remove_callback(transformers.trainer_callback.PrinterCallback)  # arctic_like prints nothing either
    with Timer() as timer:
        hf.train()
    return timer.seconds


# ------------------------------------------------------------------------------------------- the null model

NULL_BATCH, NULL_LENGTH, NULL_LOG_EVERY = 4, 8, 10


class NullModel(torch.nn.Module):
    """One parameter; the loss ignores the batch, so a step costs the loop and nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))

    def forward(self, input_ids: torch.Tensor, **_: Any) -> CausalLMOutput:
        return CausalLMOutput(loss=(self.weight - 1.0) ** 2)


def null_dataset(samples: int) -> list[dict[str, torch.Tensor]]:
    row = {
        "input_ids": torch.ones(NULL_LENGTH, dtype=torch.long),
        "attention_mask": torch.ones(NULL_LENGTH, dtype=torch.long),
        "labels": torch.ones(NULL_LENGTH, dtype=torch.long),
    }
    return [dict(row) for _ in range(samples)]


def null_loader(samples: int) -> DataLoader:
    """The data loader every loop uses: the same tiny rows, default collation, no shuffling."""
    return DataLoader(null_dataset(samples), batch_size=NULL_BATCH, drop_last=True)


class NullModelFactory(ModelFactory):
    name = "null-overhead"
    config = ModelConfig

    def create_config(self) -> Any:
        return None

    def create_model(self, model_config: Any) -> torch.nn.Module:
        return NullModel()


class NullDataFactory(DataFactory):
    name = "null-overhead"

    def __call__(self) -> tuple[DataLoader, None]:
        return null_loader(self.trainer.config.max_steps * NULL_BATCH), None


class NullTrainer(CausalTrainer):
    name = "null-overhead"
    model_factory = NullModelFactory
    data_factory = NullDataFactory


class StepTimer:
    """Wall-clock and CPU time stamps at the end of steps ``start``, ``start + every``, ... ``end``; the time
    per step is the median over those windows of ``every`` steps (each with one logged loss) of the window's
    time over ``every``, which leaves out the windows another process interrupted."""

    def __init__(self, start: int, end: int, every: int = NULL_LOG_EVERY) -> None:
        self.start, self.end, self.every = start, end, every
        self.stamps: list[tuple[float, float]] = []

    def step_done(self, step: int) -> None:
        if self.start <= step <= self.end and (step - self.start) % self.every == 0:
            self.stamps.append((time.perf_counter(), time.process_time()))

    @property
    def per_step(self) -> tuple[float, float]:
        pairs = list(zip(self.stamps, self.stamps[1:], strict=False))
        wall = statistics.median(b[0] - a[0] for a, b in pairs)
        cpu = statistics.median(b[1] - a[1] for a, b in pairs)
        return wall / self.every, cpu / self.every


def null_optimizer(model: torch.nn.Module, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    return optimizer, cosine(optimizer, steps)


def null_hand(steps: int, timer: StepTimer, workdir: Path) -> None:
    model = NullModel()
    optimizer, scheduler = null_optimizer(model, steps)
    model.train()
    for done, batch in enumerate(null_loader(steps * NULL_BATCH), start=1):
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if done % NULL_LOG_EVERY == 0:
            loss.item()
        timer.step_done(done)


def null_arctic(steps: int, timer: StepTimer, workdir: Path) -> None:
    recipe = {
        "type": NullTrainer.name,
        "tokenizer": {"type": "char", "texts": ["0123456789"]},
        "data": {"type": NullDataFactory.name},
        "model": {"type": NullModelFactory.name},
        "optimizer": {"type": "adamw", "lr": LR, "weight_decay": 0.0},
        "scheduler": {"type": "cosine", "warmup_steps": WARMUP},
        "micro_batch_size": NULL_BATCH,
        "max_steps": steps,
        "logging_steps": NULL_LOG_EVERY,
        "output_dir": str(workdir / "arctic-null"),
        "device": "cpu",
        "progress": False,
    }
    trainer = build_trainer(load_recipe(recipe))

    def mark(self: Any) -> None:
        if self.optimizer_stepped:
            timer.step_done(self.state.global_step)

    trainer.callbacks.append(("post-step", mark))
    trainer.train()


class _HFMark(transformers.TrainerCallback):
    def __init__(self, timer: StepTimer) -> None:
        self.timer = timer

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.timer.step_done(state.global_step)


def null_hf(steps: int, timer: StepTimer, workdir: Path) -> None:
    args = hf_arguments(workdir / "hf-null", NULL_BATCH, steps, logging_steps=NULL_LOG_EVERY)
    data = null_dataset(steps * NULL_BATCH)
    hf = transformers.Trainer(model=NullModel(), args=args, train_dataset=data, callbacks=[_HFMark(timer)])
    hf.remove_callback(transformers.trainer_callback.PrinterCallback)
    hf.train()


def null_lightning(steps: int, timer: StepTimer, workdir: Path) -> None:
    import lightning

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # its level is set when it is imported

    class Module(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = NullModel()

        def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
            return self.model(**batch).loss

        def configure_optimizers(self) -> Any:
            optimizer, scheduler = null_optimizer(self, steps)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

        def train_dataloader(self) -> DataLoader:
            return null_loader(steps * NULL_BATCH)

    class Mark(lightning.Callback):
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            timer.step_done(trainer.global_step)

    trainer = lightning.Trainer(
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        log_every_n_steps=NULL_LOG_EVERY,
        callbacks=[Mark()],
    )
    trainer.fit(Module())


NULL_LOOPS: dict[str, Callable[[int, StepTimer, Path], None]] = {
    "hand": null_hand,
    "arctic_like": null_arctic,
    "hf": null_hf,
    "lightning": null_lightning,
}


def run_null(steps: int, rounds: int, warmup: int, workdir: Path) -> None:
    per_step: dict[str, list[tuple[float, float]]] = {name: [] for name in NULL_LOOPS}
    names = list(NULL_LOOPS)
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            timer = StepTimer(warmup, steps)
            NULL_LOOPS[name](steps, timer, workdir)
            per_step[name].append(timer.per_step)
    print(
        f"null model (1 parameter), batch {NULL_BATCH}x{NULL_LENGTH}, steps {warmup + 1}-{steps} timed in "
        f"windows of {NULL_LOG_EVERY}, {rounds} interleaved rounds:"
    )
    hand = per_step["hand"]
    print(f"  {'loop':<12} {'µs/step wall':>13} {'over hand: median [min, max] wall':>36} {'CPU':>24}")
    for name, times in per_step.items():
        wall = statistics.median(w for w, _ in times) * 1e6
        line = f"  {name:<12} {wall:13.1f}"
        if name != "hand":
            extra = [
                [(t[clock] - h[clock]) * 1e6 for t, h in zip(times, hand, strict=True)] for clock in (0, 1)
            ]
            spans = [f"{statistics.median(x):+8.1f} [{min(x):+.1f}, {max(x):+.1f}]" for x in extra]
            line += f" {spans[0]:>36} {spans[1]:>24}"
        print(line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=["tiny", "null"], default="tiny")
    parser.add_argument("--steps", type=int, help="optimizer steps per run (tiny: 300, null: 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="tiny: runs of each loop (the best counts)")
    parser.add_argument("--rounds", type=int, default=15, help="null: interleaved rounds")
    parser.add_argument("--warmup", type=int, default=50, help="null: steps before the timing starts")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest here)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.getLogger("arctic_like").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    if args.case == "null":
        with tempfile.TemporaryDirectory() as tmp:
            run_null(args.steps or 1000, args.rounds, args.warmup, Path(tmp))
        return
    args.steps = args.steps or 300
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
