"""The `arctic-like` command: `train`, `process-data` and `callbacks` for a YAML recipe.

Errors a user can cause (a recipe, a registry name, a checkpoint, a callback definition, a missing file, a bad
flag) are printed as one message without a traceback and exit with status 2; `--traceback` shows it anyway.
SIGINT/SIGTERM during `train` stop the run gracefully: the current step finishes, a checkpoint is written,
`post-train` callbacks run, and the command exits with 130/143 saying where to resume from.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import torch

from arctic_like.callback import CallbackError, CallbackMixin
from arctic_like.checkpoint.errors import CheckpointError
from arctic_like.config import RecipeError, build_trainer, load_recipe, resolve_factory
from arctic_like.registry import RegistryError

logger = logging.getLogger("arctic_like.cli")

USER_ERRORS: tuple[type[BaseException], ...] = (
    RecipeError,
    RegistryError,
    CheckpointError,
    CallbackError,
    FileNotFoundError,
)
"""Exceptions shown as one line and exit status 2 (the user can fix them; a traceback would not help)."""

EXIT_USER_ERROR = 2


class UsageError(Exception):
    """A bad command line (unknown flag, missing argument, malformed `--set`)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises `UsageError` instead of printing usage and calling `sys.exit`."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}. Fix: see `{self.prog} --help`.")


def build_parser() -> argparse.ArgumentParser:
    """The `arctic-like` argument parser."""
    parser = _Parser(prog="arctic-like", description="Train models from YAML recipes, every step hookable.")
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks for user errors")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    # DeepSpeed's launcher appends --local_rank=N right after the module name; LOCAL_RANK (also set) is used.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def recipe_command(
        name: str, help: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("recipe", type=Path, help="path to the YAML recipe")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY.PATH=VALUE",
            help="override a recipe value (repeatable), e.g. --set optimizer.lr=1e-3",
        )
        p.set_defaults(func=func)
        return p

    recipe_command("train", "train a model from a recipe", cmd_train)
    recipe_command(
        "process-data", "build (and cache) the recipe's data sets and report their sizes", cmd_process_data
    )
    recipe_command(
        "callbacks",
        "print every callback chain of the trainer, factories and engines, in run order",
        cmd_callbacks,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: `sys.argv[1:]`); returns the exit status."""
    parser = build_parser()
    show_traceback = False
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as done:  # --help / --version: argparse printed and wants to exit
            return int(done.code or 0)
        show_traceback = args.traceback
        if args.local_rank is not None:
            os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
        _check_overrides(args.overrides)
        _setup_logging(args.log_level)
        return args.func(args)
    except UsageError as error:
        _print_error(f"usage error: {error}")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        _print_error("interrupted; stopped at once without writing a checkpoint for the current step")
        return 130
    except USER_ERRORS as error:
        if show_traceback:
            raise
        _print_error(_describe(error))
        return EXIT_USER_ERROR


def _check_overrides(overrides: Sequence[str]) -> None:
    for item in overrides:
        key, sep, _value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"--set {item!r} is not KEY.PATH=VALUE. Fix: write it like --set optimizer.lr=1e-3"
            )


def _describe(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"file not found: {error.filename}. Fix: check the path in the recipe or on the command line."
    return str(error)


def _rank_prefix() -> str:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return f"[rank {os.environ.get('RANK', '0')}] " if world > 1 else ""


def _print_error(message: str) -> None:
    print(f"{_rank_prefix()}arctic-like: error: {message}", file=sys.stderr, flush=True)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of the record (so redirections are honoured)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging(level: str) -> None:
    """Show arctic_like's log records on stderr unless the application configured logging itself."""
    package = logging.getLogger("arctic_like")
    if not package.handlers and not logging.getLogger().handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(f"{_rank_prefix()}%(levelname)s %(name)s: %(message)s"))
        package.addHandler(handler)
    package.setLevel(level)


def _build(args: argparse.Namespace) -> Any:
    """Load the recipe and build its trainer."""
    return _build_config(args, load_recipe(args.recipe, args.overrides))


def _build_config(args: argparse.Namespace, config: Any) -> Any:
    """Build the trainer of a loaded recipe; plain `ValueError`s raised while building are recipe problems
    (an engine or factory rejecting a setting) and are reported like a `RecipeError`."""
    try:
        return build_trainer(config)
    except ValueError as error:
        if isinstance(error, USER_ERRORS) or args.traceback:
            raise
        raise RecipeError(f"{args.recipe}: {error}", file=str(args.recipe)) from error


# ---------------------------------------------------------------------------------------------- train


class GracefulStop:
    """SIGINT/SIGTERM handling for `arctic-like train`.

    The handler only records the signal. At each optimizer step (`pre-optimizer-step`) the request is agreed
    across ranks with an all-reduce in a distributed run and handed to the trainer as `trainer.stop_signal`,
    which makes the trainer set `control.should_training_stop` and `control.should_save` after that step:
    every rank stops after the same step, the checkpoint is written, `post-train` runs. A second signal
    aborts at once (`KeyboardInterrupt`). The handler is (re)installed at `pre-epoch`, after the trainer's
    own, so the agreement is not bypassed.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._entries = [("pre-epoch", self._install), ("pre-optimizer-step", self._agree)]

    @property
    def interrupted(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> GracefulStop:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        self.trainer.callbacks.extend(self._entries)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        for entry in self._entries:
            if entry in self.trainer.callbacks:
                self.trainer.callbacks.remove(entry)

    def _install(self, trainer: Any) -> None:
        for sig in self.SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(
            f"\n{_rank_prefix()}arctic-like: {signal.Signals(signum).name} received: finishing the current "
            "step and writing a checkpoint (send it again to abort without one)",
            file=sys.stderr,
            flush=True,
        )

    def _agree(self, trainer: Any) -> None:
        requested = self.signum or 0
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([requested], dtype=torch.int64)
            if torch.distributed.get_backend() == "nccl":
                flag = flag.cuda()
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            requested = int(flag.item())
        if requested:
            self.signum = self.signum or requested
            trainer.stop_signal = requested


def _engines(trainer: Any) -> list[Any]:
    return list(getattr(trainer, "checkpoint_engines", None) or [])


def cmd_train(args: argparse.Namespace) -> int:
    """`arctic-like train RECIPE`: build the trainer and train; exit 130/143 after a graceful interrupt."""
    trainer = _build(args)
    with GracefulStop(trainer) as stop:
        trainer.train()
    if not stop.interrupted:
        return 0
    step = int(trainer.state.global_step)
    saved = []
    for engine in _engines(trainer):
        latest = engine.latest()
        if latest is None or latest.name != f"checkpoint-{step}":
            latest = engine.save()
        saved.append(latest)
    name = signal.Signals(stop.signum).name
    if saved:
        where = ", ".join(str(p) for p in saved)
        resume = " ".join(["arctic-like train", str(args.recipe), *(f"--set {o}" for o in args.overrides)])
        if not any(e.config.auto_resume for e in _engines(trainer)):
            resume += " --set checkpoint.0.auto_resume=true"
        message = (
            f"training interrupted by {name} at step {step}; checkpoint written to {where}. "
            f"Resume with: {resume}"
        )
    else:
        message = (
            f"training interrupted by {name} at step {step}; no checkpoint engine is configured, so "
            "nothing was saved. Fix: add `checkpoint: [{type: torch, auto_resume: true}]` to the recipe."
        )
    print(f"{_rank_prefix()}arctic-like: {message}", file=sys.stderr, flush=True)
    return 128 + int(stop.signum)


# ---------------------------------------------------------------------------------------------- process-data


def cmd_process_data(args: argparse.Namespace) -> int:
    """`arctic-like process-data RECIPE`: run the tokenizer and data factories only (no model) and report the
    data set sizes and the cache path, so the next `train` starts from the cache."""
    config = load_recipe(args.recipe, args.overrides)
    trainer_cls = config.trainer_class()
    host = _DataHost(config)
    host.data_factory = resolve_factory(trainer_cls, "data", config.data.type)(host, config.data)
    host.tokenizer_factory = resolve_factory(trainer_cls, "tokenizer", config.tokenizer.type)(
        host, config.tokenizer
    )
    host.tokenizer = host.tokenizer_factory()
    factory = host.data_factory
    cache = factory.cache_dir() / factory.cache_key() if config.data.use_cache else None
    cached = cache is not None and cache.exists()
    train_loader, eval_loader = factory()
    lines = [
        f"recipe: {args.recipe}",
        f"tokenizer: {type(host.tokenizer).__name__}, vocabulary {len(host.tokenizer)}",
    ]
    for split, loader in (("train", train_loader), ("eval", eval_loader)):
        if loader is None:
            lines.append(f"{split}: none")
            continue
        dataset = loader.dataset
        tokens = sum(len(ids) for ids in dataset["input_ids"]) if "input_ids" in dataset.column_names else 0
        lines.append(f"{split}: {len(dataset)} examples, {tokens} tokens, {len(loader)} batches per epoch")
    if cache is None:
        lines.append("cache: off (data.use_cache: false)")
    else:
        lines.append(f"cache: {cache} ({'reused' if cached else 'written'})")
    print("\n".join(lines))
    return 0


class _DataHost:
    """The part of a trainer the tokenizer and data factories use, without building a model."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.world_size, self.global_rank, self.local_rank = 1, 0, 0
        self.device = torch.device("cpu")
        self.data_factory: Any = None
        self.tokenizer_factory: Any = None
        self.tokenizer: Any = None


# ---------------------------------------------------------------------------------------------- callbacks


def callback_owners(trainer: Any) -> list[tuple[str, Any]]:
    """`(label, object)` for the trainer and every factory and checkpoint engine it holds, in build order."""
    owners: list[tuple[str, Any]] = [("trainer", trainer)]
    for attr, value in vars(trainer).items():
        if isinstance(value, CallbackMixin):
            owners.append((attr, value))
        elif isinstance(value, list | tuple):
            owners += [(f"{attr}[{i}]", v) for i, v in enumerate(value) if isinstance(v, CallbackMixin)]
    return owners


def cmd_callbacks(args: argparse.Namespace) -> int:
    """`arctic-like callbacks RECIPE`: build the trainer (without resuming from checkpoints) and print every
    callback chain of it and its factories and engines, in run order, with where each was declared."""
    config = load_recipe(args.recipe, args.overrides)
    no_resume = {"auto_resume": False, "resume_from": None}
    config.checkpoint = [
        c.model_copy(update={k: v for k, v in no_resume.items() if k in type(c).model_fields})
        for c in config.checkpoint
    ]
    trainer = _build_config(args, config)
    blocks = [f"[{label}] {obj.describe_callbacks()}" for label, obj in callback_owners(trainer)]
    print("\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
