"""What `arctic-like train --dry-run` prints: the plan of a built (not trained) run.

The trainer is built as for training, which checks everything (recipe, callbacks, data, model, engine,
checkpoints to resume from) and writes nothing; the plan lists each part, the parameter count, the number of
steps and how they are made up, the learning-rate schedule and when the run logs, evaluates and saves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["describe_plan"]


def _count(n: int) -> str:
    return f"{n:,}"


def _data(trainer: Any) -> str:
    config = trainer.config.data
    train = trainer.train_dataloader
    text = f"{config.type}: train {_count(len(train.dataset))} examples, {len(train)} micro-batches per epoch"
    evaluation = trainer.eval_dataloader
    text += (
        f"; eval {_count(len(evaluation.dataset))} examples" if evaluation is not None else "; no eval data"
    )
    factory = trainer.data_factory
    if not getattr(config, "use_cache", False):
        return text + "; cache off"
    key = factory.cache_key()
    if key is None:
        return text + "; cache not used (a data callback or source has no fingerprint)"
    cache = Path(factory.cache_dir()) / key
    state = "reused" if cache.exists() else "written when training starts"
    return f"{text}; cache {cache} ({state})"


def _model(trainer: Any) -> str:
    model = trainer.model
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    kind = trainer.config.model.type
    return (
        f"{kind}: {type(model).__name__}, {_count(total)} parameters ({_count(trainable)} trainable), {dtype}"
    )


def _steps(trainer: Any) -> str:
    config = trainer.config
    per_step = (
        f"{trainer.samples_per_step} samples per step = micro_batch_size {config.micro_batch_size} x "
        f"gradient_accumulation_steps {config.gradient_accumulation_steps} x {trainer.world_size} process(es)"
    )
    horizon = f"{trainer.steps_per_epoch} per epoch x {trainer.num_epochs} epoch(s)"
    if config.max_steps:
        horizon = f"max_steps {config.max_steps} ({trainer.steps_per_epoch} per epoch)"
    start = trainer.state.global_step
    resumed = f"; resumes at step {start}" if start else ""
    return f"{trainer.training_horizon} optimizer steps: {horizon}{resumed}; {per_step}"


def _schedule(trainer: Any) -> str:
    config, scheduler = trainer.config, trainer.scheduler
    text = f"{config.scheduler.type}"
    lambdas = getattr(scheduler, "lr_lambdas", None)
    base = getattr(scheduler, "base_lrs", None)
    if lambdas and base:
        horizon = trainer.training_horizon
        warmup = config.scheduler.warmup(horizon)
        points = sorted({0, warmup, horizon // 2, horizon})
        text += f", {warmup} warmup step(s); lr " + ", ".join(
            f"{base[0] * lambdas[0](step):.3g} at step {step}" for step in points
        )
    return text


def _when(trainer: Any) -> str:
    config = trainer.config
    parts = [
        f"log every {config.logging_steps} steps"
        if config.logging_strategy == "steps"
        else f"log: {config.logging_strategy}",
        f"evaluate every {config.eval_steps} steps"
        if config.eval_strategy == "steps"
        else f"evaluate: {config.eval_strategy}",
    ]
    return "; ".join(parts)


def _compile(setting: Any) -> str:
    given = setting.model_dump(exclude_defaults=True)
    return ", ".join(f"{k}: {v}" for k, v in {"backend": setting.backend, **given}.items())


def _checkpoint(engine: Any) -> str:
    cfg = engine.config
    when = [f"every {cfg.save_every_n_steps} steps"] if getattr(cfg, "save_every_n_steps", None) else []
    if getattr(cfg, "save_every_n_epochs", None):
        when.append(f"every {cfg.save_every_n_epochs} epoch(s)")
    if getattr(cfg, "save_end_of_training", False):
        when.append("at the end")
    keep = f", keep {cfg.save_total_limit}" if cfg.save_total_limit else ""
    resume = ", auto_resume" if cfg.auto_resume else ""
    return f"{engine.name} -> {engine.output_dir} ({', '.join(when) or 'on request'}{keep}{resume})"


def describe_plan(trainer: Any, recipe: Any) -> str:
    """The plan of the built `trainer` of `recipe`, one line per part."""
    config = trainer.config
    tokenizer = trainer.tokenizer
    base_lrs = getattr(trainer.scheduler, "base_lrs", None) or [trainer.optimizer.param_groups[0]["lr"]]
    rows = [
        ("trainer", f"{config.type} ({type(trainer).__name__})"),
        (
            "tokenizer",
            f"{config.tokenizer.type}: {type(tokenizer).__name__}, {_count(len(tokenizer))} tokens",
        ),
        ("data", _data(trainer)),
        ("model", _model(trainer)),
        (
            "optimizer",
            f"{config.optimizer.type}: {type(trainer.optimizer).__name__}, lr {base_lrs[0]:.3g}",
        ),
        ("scheduler", _schedule(trainer)),
        (
            "engine",
            f"{config.engine} on {trainer.device}, {config.precision}, {trainer.world_size} process(es)"
            + (f", torch.compile ({_compile(config.compile)})" if config.compile is not None else ""),
        ),
        ("steps", _steps(trainer)),
        ("schedule", _when(trainer)),
    ]
    rows += [(f"checkpoint[{i}]", _checkpoint(e)) for i, e in enumerate(trainer.checkpoint_engines)]
    if not trainer.checkpoint_engines:
        rows.append(("checkpoint", "none (nothing will be saved)"))
    names = [type(cb).__name__ for cb in getattr(trainer, "hf_callbacks", [])]
    rows.append(("callbacks", ", ".join(names) or "none from the recipe"))
    width = max(len(name) for name, _ in rows)
    lines = [f"plan of {recipe} (dry run: nothing was trained or written)"]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
    return "\n".join(lines)
