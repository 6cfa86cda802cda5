"""Does arctic_like keep a GPU as busy as a bare PyTorch loop? Tokens per second of both on the same model and
batches, and the host syncs each makes per step.

For each model config (``tiny``: 2 layers, 64 wide; ``100m``: a 12-layer, 768-wide Llama, ~98M parameters)
and engine (``torch``; ``deepspeed``, ZeRO stage 0, one process):

* ``bare``: a hand-written loop over the same data loader: pinned batches copied with ``non_blocking``,
  forward under autocast (bf16), backward, gradient clipping, AdamW, a cosine schedule, zeroing, and the
  loss read every ``--logging-steps`` steps (with ``deepspeed``: ``engine(batch)``, ``engine.backward``,
  ``engine.step`` with the same DeepSpeed config arctic_like builds);
* ``arctic_like``: ``Trainer.train()`` on the same model (same seed, same initial weights), the same batches,
  optimizer, schedule, clipping and logging interval (console off).

Each loop runs ``--warmup`` steps, then ``--steps`` timed steps (the device is synchronised at both ends of
the timed part only). A second, shorter run of each counts the host syncs per step with
``arctic_like.trainer.syncs.HostSyncCounter``: the reads of device values made by the loop and by the model's
own code (transformers checks the attention mask once per forward in eager mode), and on CUDA the
synchronising calls ``torch.cuda.set_sync_debug_mode`` reports (also those inside C++). The target:
arctic_like at least 0.97x the bare loop's tokens/s. ``--compile`` compiles the model in both loops.

On a GPU machine, in one command::

    python benchmarks/gpu.py                      # tiny and 100m, torch and deepspeed, bf16
    python benchmarks/gpu.py --compile            # the same with torch.compile

Without a GPU it runs its smallest case (tiny, torch engine, short sequences, a few steps) on CPU, so that it
keeps working (``tests/benchmarks/test_gpu_benchmark.py`` runs it); its figures say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from arctic_like.config import build_trainer, load_recipe
from arctic_like.data import DataFactory
from arctic_like.engine import DeepSpeedEngine, build_deepspeed_config
from arctic_like.engine.prefetch import move_batch
from arctic_like.trainer import CausalTrainer, seed_everything
from arctic_like.trainer.syncs import HostSyncCounter

CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "vocab_size": 1024,
        "max_position_embeddings": 2048,
    },
    "100m": {
        "model_type": "llama",
        "hidden_size": 768,
        "intermediate_size": 2048,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "num_key_value_heads": 12,
        "vocab_size": 8192,
        "max_position_embeddings": 2048,
    },
}
LR, SEED = 3e-4, 0


@dataclass
class Case:
    config: str
    engine: str
    batch: int
    length: int
    precision: str
    compile: bool
    device: str


class RandomTokens(DataFactory):
    """Rows of random tokens (a fixed seed), every token trained on: the same batches for both loops."""

    name = "gpu-benchmark-tokens"
    rows = 0
    length = 0

    def __call__(self) -> tuple[DataLoader, None]:
        vocab = int(self.trainer.config.model.config["vocab_size"])
        generator = torch.Generator().manual_seed(SEED)
        ids = torch.randint(0, vocab, (self.rows, self.length), generator=generator)
        rows = [{"input_ids": r, "labels": r, "attention_mask": torch.ones_like(r)} for r in ids]
        return DataLoader(rows, batch_size=int(self.trainer.config.micro_batch_size), drop_last=True), None


class BenchmarkTrainer(CausalTrainer):
    name = "gpu-benchmark"
    data_factory = RandomTokens


def recipe(case: Case, steps: int, logging_steps: int, workdir: Path) -> dict[str, Any]:
    return {
        "type": BenchmarkTrainer.name,
        "seed": SEED,
        "tokenizer": {"type": "char", "texts": ["0123456789"]},
        "data": {"type": RandomTokens.name},
        "model": {"config": dict(CONFIGS[case.config]), "vocab_from_tokenizer": False},
        "optimizer": {"type": "adamw", "lr": LR, "weight_decay": 0.0},
        "scheduler": {"type": "cosine", "warmup_steps": 0},
        "micro_batch_size": case.batch,
        "max_steps": steps,
        "logging_steps": logging_steps,
        "max_grad_norm": 1.0,
        "precision": case.precision,
        "engine": case.engine,
        "device": case.device,
        "compile": case.compile,
        "progress": False,
        "output_dir": str(workdir / "out"),
    }


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class Window:
    """Times steps ``start + 1 .. end`` (the device synchronised at both ends) and counts their host syncs."""

    def __init__(self, start: int, end: int, device: str, count: bool) -> None:
        self.start, self.end, self.device = start, end, device
        self.counter = HostSyncCounter() if count else None
        self.seconds = 0.0

    def step_done(self, step: int) -> None:
        if step == self.start:
            synchronize(self.device)
            self.seconds = -time.perf_counter()
            if self.counter is not None:
                self.counter.__enter__()
        elif step == self.end:
            synchronize(self.device)
            self.seconds += time.perf_counter()
            if self.counter is not None:
                self.counter.__exit__(None, None, None)

    @property
    def steps(self) -> int:
        return self.end - self.start


def run_arctic(case: Case, window: Window, logging_steps: int, workdir: Path) -> dict[str, Any]:
    RandomTokens.rows, RandomTokens.length = window.end * case.batch, case.length
    trainer = build_trainer(load_recipe(recipe(case, window.end, logging_steps, workdir)))

    def mark(self: Any) -> None:
        if self.optimizer_stepped:
            window.step_done(self.state.global_step)

    trainer.callbacks.append(("post-step", mark))
    trainer.train()
    logs = [e for e in trainer.state.log_history if "loss" in e]
    return {"trainer": trainer, "first_loss": logs[0]["loss"] if logs else math.nan, "logs": logs}


class Logged:
    """What a careful bare loop does to print its loss: sum it on the device, read it once per log."""

    def __init__(self, device: torch.device, every: int) -> None:
        self.every = every
        self.running = torch.zeros((), device=device)
        self.first = math.nan

    def add(self, step: int, loss: torch.Tensor) -> None:
        self.running += loss.detach().float()
        if step % self.every == 0:
            mean = self.running.item() / self.every
            self.running.zero_()
            self.first = mean if math.isnan(self.first) else self.first


def cosine(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))


def _bare_parts(case: Case, steps: int, logging_steps: int, workdir: Path) -> tuple[Any, DataLoader]:
    """The model as arctic_like's trainer builds it (same seed, same weights) and the same data loader."""
    RandomTokens.rows, RandomTokens.length = steps * case.batch, case.length
    plain = {**recipe(case, steps, logging_steps, workdir), "engine": "torch", "compile": False}
    builder = build_trainer(load_recipe(plain))  # the same model factory, tokenizer and data
    loader = builder.train_dataloader
    seed_everything(SEED)
    model = builder.model_factory().to(case.device)
    del builder
    return model, loader


def run_bare(case: Case, window: Window, logging_steps: int, workdir: Path) -> dict[str, Any]:
    steps = window.end
    model, loader = _bare_parts(case, steps, logging_steps, workdir)
    if case.compile:
        model.compile()
    model.train()
    device = torch.device(case.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    scheduler = cosine(optimizer, steps)
    if case.engine == "deepspeed":
        return _bare_deepspeed(case, window, logging_steps, model, optimizer, scheduler, loader, workdir)
    autocast: Callable[[], Any] = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
        if case.precision == "bf16"
        else contextlib.nullcontext
    )
    logged = Logged(device, logging_steps)
    for step, batch in enumerate(loader, start=1):
        batch = move_batch(batch, device)
        with autocast():
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        logged.add(step, loss)
        window.step_done(step)
    return {"first_loss": logged.first}


def _bare_deepspeed(
    case: Case,
    window: Window,
    logging_steps: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    loader: DataLoader,
    workdir: Path,
) -> dict[str, Any]:
    import deepspeed

    config = load_recipe(recipe(case, window.end, logging_steps, workdir))
    DeepSpeedEngine.init_distributed(config)  # one process: launcher variables as arctic_like sets them
    engine, *_ = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=scheduler, config=build_deepspeed_config(config, 1)
    )
    device = torch.device(case.device)
    logged = Logged(device, logging_steps)
    for step, batch in enumerate(loader, start=1):
        loss = engine(**move_batch(batch, device)).loss
        engine.backward(loss)
        engine.step()
        logged.add(step, loss)
        window.step_done(step)
    return {"first_loss": logged.first}


def measure(case: Case, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Tokens/s and syncs per step of both loops for one case."""
    total = args.warmup + args.steps
    result: dict[str, Any] = {}
    for name, run in (("bare", run_bare), ("arctic_like", run_arctic)):
        timed = Window(args.warmup, total, case.device, count=False)
        out = run(case, timed, args.logging_steps, workdir / f"{name}-timed")
        counted = Window(args.warmup, args.warmup + 2 * args.logging_steps, case.device, count=True)
        run(case, counted, args.logging_steps, workdir / f"{name}-counted")
        assert counted.counter is not None
        calls = counted.counter.calls
        model_reads = sum("transformers" in place for _, place in calls)
        result[name] = {
            "tokens_per_second": timed.steps * case.batch * case.length / timed.seconds,
            "loop_syncs": (len(calls) - model_reads) / counted.steps,
            "model_syncs": model_reads / counted.steps,
            "cuda_syncs": counted.counter.cuda_syncs / counted.steps,
            "places": counted.counter.by_place(),
            "first_loss": out["first_loss"],
        }
        if name == "arctic_like":
            logs = out["logs"]
            result["mfu"] = logs[-1].get("mfu") if logs else None
            result["parameters"] = sum(p.numel() for p in out["trainer"].model.parameters())
    result["ratio"] = result["arctic_like"]["tokens_per_second"] / result["bare"]["tokens_per_second"]
    return result


def device_name(device: str) -> str:
    if device == "cuda":
        return f"cuda ({torch.cuda.get_device_name()})"
    return "cpu (no GPU: the smallest case, which says nothing about a GPU)"


def main(argv: list[str] | None = None) -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="tiny,100m" if cuda else "tiny", help="comma-separated")
    parser.add_argument("--engines", default="torch,deepspeed" if cuda else "torch", help="comma-separated")
    parser.add_argument("--batch", type=int, default=8 if cuda else 4)
    parser.add_argument("--length", type=int, default=1024 if cuda else 32, help="tokens per row")
    parser.add_argument("--steps", type=int, default=100 if cuda else 10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=20 if cuda else 2)
    parser.add_argument("--logging-steps", type=int, default=10 if cuda else 2)
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the model in both loops")
    args = parser.parse_args(argv)
    if args.steps % args.logging_steps or args.warmup % args.logging_steps:
        parser.error("--steps and --warmup must be multiples of --logging-steps (whole logging windows)")
    device = "cuda" if cuda else "cpu"
    torch.set_num_threads(torch.get_num_threads() if cuda else 1)
    for name in ("arctic_like", "DeepSpeed", "deepspeed", "torch._dynamo", "torch._inductor"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(
        f"arctic_like vs a bare PyTorch loop on {device_name(device)}, {args.precision}, "
        f"{args.steps} timed steps after {args.warmup}, logging every {args.logging_steps}"
        + (", compiled" if args.compile else "")
    )
    header = (
        f"{'config':<6} {'params':>7} {'engine':<9} {'batch':>9} {'bare tok/s':>12} {'arctic tok/s':>13} "
        f"{'ratio':>6}  {'syncs/step loop+model (cuda)':>30}"
    )
    print(header)
    details = []
    for config in args.configs.split(","):
        for engine in args.engines.split(","):
            case = Case(config, engine, args.batch, args.length, args.precision, args.compile, device)
            with tempfile.TemporaryDirectory() as tmp:
                result = measure(case, args, Path(tmp))
            bare, arctic = result["bare"], result["arctic_like"]
            syncs = "  ".join(
                f"{r['loop_syncs']:.2f}+{r['model_syncs']:.2f}"
                + (f" ({r['cuda_syncs']:.2f})" if cuda else "")
                for r in (bare, arctic)
            )
            print(
                f"{config:<6} {result['parameters'] / 1e6:6.1f}M {engine:<9} "
                f"{f'{args.batch}x{args.length}':>9} {bare['tokens_per_second']:12.0f} "
                f"{arctic['tokens_per_second']:13.0f} {result['ratio']:6.3f}  {syncs:>30}",
                flush=True,
            )
            details.append((case, result))
    print("syncs/step: bare, then arctic_like; 'loop' reads come from the loop, 'model' from transformers")
    for case, result in details:
        mfu = result.get("mfu")
        print(
            f"{case.config}/{case.engine}: first logged loss bare {result['bare']['first_loss']:.4f}, "
            f"arctic_like {result['arctic_like']['first_loss']:.4f}"
            + (f"; arctic_like MFU {mfu:.3f}" if mfu is not None else "")
        )
        for name in ("bare", "arctic_like"):
            places = ", ".join(f"{n} x{count}" for n, count in result[name]["places"].items())
            print(f"  {name} reads in the counted steps: {places or 'none'}")


if __name__ == "__main__":
    main()
