"""The `arctic-like` command: `train`, `process-data` and `callbacks` for a YAML recipe.

Every failure ends with a clear outcome (docs/errors.md has the table):

* 0: done (also `--help`, `--version`, `train --dry-run`, `callbacks`, `process-data`).
* 2: a mistake the user can fix (recipe, command line, callback, checkpoint, data file, model settings, not
  enough memory to build the model): one message naming the thing and the fix, no traceback, nothing
  written (`--traceback` shows the traceback).
* 3: training failed: a non-finite loss (`nonfinite_loss: stop`, or `skip` with the losses staying
  non-finite).
* 74: an I/O error while training, such as a full disk; the previous checkpoint is intact.
* 128 + signal (130 SIGINT, 143 SIGTERM): interrupted. The first signal during training finishes the step,
  writes a checkpoint, runs `post-train` and prints how to resume; a second one, or one during start-up,
  stops at once.
* 1: an unexpected error (a bug in arctic_like or in user code while training): the traceback.

This module imports only the standard library at the top, so `run()` installs the signal handlers before
torch is imported: a signal during the imports exits 130/143 with one line, too.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from arctic_like import interrupts
from arctic_like.launch import Launch, LaunchError, launcher_command, run_launcher

logger = logging.getLogger("arctic_like.cli")

EXIT_ERROR = 1
EXIT_USER_ERROR = 2
EXIT_TRAINING_FAILED = 3
EXIT_IO_ERROR = 74
"""``EX_IOERR`` of sysexits.h."""

MAX_MESSAGE_CHARS = 1500
"""Longer error messages (some libraries list hundreds of names) are cut in the middle."""


class UsageError(Exception):
    """A bad command line (unknown flag, missing argument, malformed `--set`)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises `UsageError` instead of printing usage and calling `sys.exit`."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}. Fix: see `{self.prog} --help`.")


def _version() -> str:
    from arctic_like import __version__

    versions = []
    for package in ("torch", "transformers", "deepspeed"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} not installed")
    python = ".".join(map(str, sys.version_info[:3]))
    return f"arctic-like {__version__} (python {python}, {', '.join(versions)})"


class _VersionAction(argparse.Action):
    """`--version`: the versions of arctic_like and the libraries it runs on (looked up only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show versions and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(_version())
        parser.exit()


def _global_flags(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Flags accepted before or after the command (after it, they override nothing unless given)."""
    default: Any = argparse.SUPPRESS
    parser.add_argument(
        "--traceback",
        action="store_true",
        default=False if defaults else default,
        help="show the full traceback of an error",
    )
    parser.add_argument(
        "--log-level",
        default="INFO" if defaults else default,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much arctic_like logs (default INFO)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The `arctic-like` argument parser."""
    parser = _Parser(prog="arctic-like", description="Train models from YAML recipes, every step hookable.")
    parser.add_argument("--version", action=_VersionAction)
    _global_flags(parser, defaults=True)
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
        p.add_argument(
            "--explain",
            action="store_true",
            help="print how an ArcticTraining recipe was translated: one line per key mapped and default set",
        )
        _global_flags(p, defaults=False)
        p.set_defaults(func=func)
        return p

    train = recipe_command("train", "train a model from a recipe", cmd_train)
    train.add_argument(
        "--dry-run",
        action="store_true",
        help="check everything and print the plan (parts, parameters, steps, schedule); train nothing, "
        "write nothing",
    )
    launch = train.add_argument_group(
        "launch",
        "start the processes of a distributed run (torchrun, or DeepSpeed's launcher for "
        "engine: deepspeed or a hostfile); see docs/scaling.md",
    )
    launch.add_argument("--num-gpus", type=int, metavar="N", help="N processes on this machine, one per GPU")
    launch.add_argument("--num-procs", type=int, metavar="N", help="N processes on the CPU (gloo)")
    launch.add_argument("--num-nodes", type=int, metavar="M", help="machines in the run")
    launch.add_argument("--node-rank", type=int, metavar="R", help="this machine's rank (without a hostfile)")
    launch.add_argument(
        "--hostfile", type=Path, metavar="PATH", help="DeepSpeed hostfile: `host slots=N` lines"
    )
    launch.add_argument("--master-addr", metavar="HOST", help="address of the first machine")
    launch.add_argument("--master-port", type=int, metavar="PORT", help="port on the first machine")
    recipe_command(
        "process-data", "build (and cache) the recipe's data sets and report their sizes", cmd_process_data
    )
    callbacks = recipe_command(
        "callbacks",
        "print every callback chain of the trainer, factories and checkpoint engines, in run order "
        "(builds nothing, writes nothing)",
        cmd_callbacks,
    )
    callbacks.add_argument(
        "--all", action="store_true", help="also list the HF bridge entries one by one (folded by default)"
    )
    return parser


def run() -> int:
    """The console entry point: signal handling first (before torch is imported), then `main()`."""
    try:
        interrupts.install(interrupts.abort)
        interrupts.start_watchdog()
    except interrupts.Interrupted as stop:
        return _stopped_at_start_up(stop)
    return main()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: `sys.argv[1:]`); returns the exit status."""
    previous: dict[int, Any] = {}
    del interrupts.received[:]
    try:
        previous = interrupts.install(interrupts.abort)
        return _main(list(sys.argv[1:] if argv is None else argv))
    except interrupts.Interrupted as stop:  # between installing the handlers and `_main`'s own handling
        return _stopped_at_start_up(stop)
    finally:
        interrupts.restore(previous)


def _stopped_at_start_up(stop: interrupts.Interrupted) -> int:
    _print_error(_interrupted(stop, argparse.Namespace(started=False, trainer=None)))
    return stop.exit_code


def _main(argv: list[str]) -> int:
    show_traceback = "--traceback" in argv
    args = argparse.Namespace(trainer=None, started=False, recipe=None)
    try:
        try:
            build_parser().parse_args(argv, namespace=args)
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
    except interrupts.Interrupted as stop:
        _print_error(_interrupted(stop, args))
        return stop.exit_code
    except KeyboardInterrupt:
        _print_error("interrupted; stopped at once without writing a checkpoint for the current step")
        return 130
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else EXIT_ERROR
        where = _origin(exit_)
        stopped = "without a checkpoint of the current step" if args.started else "before training began"
        _print_error(f"sys.exit({exit_.code!r}) was called {where}; the run stopped there, {stopped}")
        return code
    except Exception as error:
        code, message = _classify(error, started=args.started)
        if code == EXIT_ERROR or show_traceback:
            raise
        _print_error(message)
        return code


def _check_overrides(overrides: Sequence[str]) -> None:
    for item in overrides:
        key, sep, _value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"--set {item!r} is not KEY.PATH=VALUE. Fix: write it like --set optimizer.lr=1e-3"
            )


# ---------------------------------------------------------------------------------------------- outcomes


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's to fix, whenever they happen (imported when an error is reported)."""
    from arctic_like.callback import CallbackError
    from arctic_like.checkpoint.errors import CheckpointError
    from arctic_like.config import RecipeError
    from arctic_like.integrations.hf import CallbackSpecError, CallbackStateError
    from arctic_like.registry import RegistryError

    return (RecipeError, RegistryError, CheckpointError, CallbackError, CallbackSpecError, CallbackStateError)


def _classify(error: Exception, *, started: bool) -> tuple[int, str]:
    """The exit status and message for an exception that ended the command (EXIT_ERROR: show it)."""
    from arctic_like.trainer.exceptions import NonFiniteLossError

    if isinstance(error, NonFiniteLossError):
        return EXIT_TRAINING_FAILED, f"training failed: {error}"
    if isinstance(error, _user_errors()):
        return EXIT_USER_ERROR, str(error)
    if isinstance(error, OSError) and (started or error.errno in (errno.ENOSPC, errno.EDQUOT)):
        return EXIT_IO_ERROR, _describe_os_error(error, started)
    if not started and isinstance(error, OSError):
        return EXIT_USER_ERROR, _describe_os_error(error, started)
    if not started and _out_of_memory(error):
        first = (str(error).splitlines() or [""])[0]
        return EXIT_USER_ERROR, (
            f"not enough memory to build the run ({type(error).__name__}: {first}). Fix: make the model "
            "smaller (model.config), load it in bf16 (model.dtype), or use a machine with more memory."
        )
    return EXIT_ERROR, ""


def _out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def _describe_os_error(error: OSError, started: bool) -> str:
    from arctic_like.checkpoint.errors import CheckpointWriteError

    if isinstance(error, CheckpointWriteError) or error.errno is None:  # raised with a message of our own
        return str(error)
    what = error.strerror or str(error)
    where = f": {error.filename}" if error.filename else ""
    if isinstance(error, FileNotFoundError) and not started:
        return f"file not found{where}. Fix: check the path in the recipe or on the command line."
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full{where} ({what}). Fix: free space on that disk, then resume (auto_resume: true)."
    if started:
        return f"I/O error while training{where}: {what}. The last complete checkpoint is intact."
    return f"{what}{where}. Fix: check the path and its permissions."


def _interrupted(stop: interrupts.Interrupted, args: argparse.Namespace) -> str:
    name = signal.Signals(stop.signum).name
    if not args.started:
        return f"interrupted by {name} during start-up, before training began; nothing was written"
    latest = _latest(args.trainer)
    kept = f"the last complete checkpoint is {latest}" if latest else "no checkpoint has been written"
    again = "again " if getattr(args.trainer, "_stop_requested", None) is not None else ""
    return f"interrupted {again}by {name}: stopped at once, without a checkpoint of the current step; {kept}"


def _origin(error: BaseException) -> str:
    """`in FILE:LINE (FUNCTION)` of the innermost frame of `error`'s traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "by user code"
    last = frames[-1]
    return f"in {last.filename}:{last.lineno} ({last.name})"


def _rank_prefix() -> str:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return f"[rank {os.environ.get('RANK', '0')}] " if world > 1 else ""


def _print_error(message: str) -> None:
    if len(message) > MAX_MESSAGE_CHARS:
        half = MAX_MESSAGE_CHARS // 2
        cut = len(message) - 2 * half
        message = f"{message[:half]} [... {cut} characters cut; --traceback shows all ...] {message[-half:]}"
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


def _load(args: argparse.Namespace) -> Any:
    """The recipe; with ``--explain``, how it was translated from ArcticTraining's schema is printed first."""
    from arctic_like.config import load_recipe

    notes: list[str] = []
    config = load_recipe(args.recipe, args.overrides, notes=notes)
    if args.explain:
        print("\n".join(notes) if notes else f"{args.recipe}: an arctic_like recipe, nothing translated")
    return config


def _build(args: argparse.Namespace, config: Any) -> Any:
    """Build the trainer of a loaded recipe. Plain `ValueError`s raised while building are recipe problems
    (an engine or factory rejecting a setting) and are reported like a `RecipeError`."""
    from arctic_like.config import RecipeError, build_trainer

    try:
        trainer = build_trainer(config)
    except ValueError as error:
        if isinstance(error, _user_errors()) or args.traceback:
            raise
        raise RecipeError(f"{args.recipe}: {error}", file=str(args.recipe)) from error
    if interrupts.received:  # a signal whose KeyboardInterrupt was swallowed while building
        raise interrupts.Interrupted(interrupts.received[-1])
    return trainer


def _latest(trainer: Any) -> Path | None:
    for engine in getattr(trainer, "checkpoint_engines", None) or []:
        latest = engine.latest()
        if latest is not None:
            return latest
    return None


# ---------------------------------------------------------------------------------------------- train


def _leave_process_group() -> None:
    """After a run every process finished: meet once more, then close the process group, so that no
    communication thread is still running when the interpreter exits (gloo then aborts the process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def cmd_train(args: argparse.Namespace) -> int:
    """`arctic-like train RECIPE`: build the trainer and train (or, with `--dry-run`, print the plan); with
    `--num-gpus`/`--num-procs`/`--num-nodes`/`--hostfile`, start the launcher that runs it in each process."""
    from arctic_like.context import call_with_optional

    launch = Launch.from_args(args)
    if launch is not None:
        return _launch(args, launch)
    trainer = args.trainer = _build(args, _load(args))
    if args.dry_run:
        from arctic_like.plan import describe_plan

        print(describe_plan(trainer, args.recipe))
        return 0
    args.started = True
    trainer.train()
    if trainer.stop_signal is None:
        _leave_process_group()
        return 0
    step = int(trainer.state.global_step)
    engines = list(getattr(trainer, "checkpoint_engines", None) or [])
    saved = []
    for engine in engines:
        latest = engine.latest()
        if latest is None or latest != engine.path_for(step):
            latest = call_with_optional(engine.save, model=trainer.model)
        saved.append(latest)
    name = signal.Signals(trainer.stop_signal).name
    if saved:
        where = ", ".join(str(p) for p in saved)
        resume = " ".join(["arctic-like train", str(args.recipe), *(f"--set {o}" for o in args.overrides)])
        if not any(e.config.auto_resume for e in engines):
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
    return 128 + int(trainer.stop_signal)


def _launch(args: argparse.Namespace, launch: Launch) -> int:
    """Check the recipe here (one clear error instead of one per process), then run it under the launcher
    its engine needs; returns the launcher's exit status."""
    config = _load(args)
    device = "cpu" if launch.num_procs is not None else ("cuda" if launch.num_gpus is not None else None)
    child = ["train", str(args.recipe), "--log-level", args.log_level]
    for override in [*args.overrides, *([f"device={device}"] if device else [])]:
        child += ["--set", override]
    child += [flag for flag, on in (("--dry-run", args.dry_run), ("--traceback", args.traceback)) if on]
    try:
        command = launcher_command(launch, config.engine, child)
    except LaunchError as error:
        raise UsageError(str(error)) from None
    logger.info("launching: %s", " ".join(command))
    return run_launcher(command)


# ---------------------------------------------------------------------------------------------- process-data


def cmd_process_data(args: argparse.Namespace) -> int:
    """`arctic-like process-data RECIPE`: run the tokenizer and data factories only (no model) and report the
    data set sizes and the cache path, so the next `train` starts from the cache."""
    import torch

    from arctic_like.config import resolve_factory

    config = _load(args)
    trainer_cls = config.trainer_class()
    host = _DataHost(config, torch.device("cpu"))
    host.data_factory = resolve_factory(trainer_cls, "data", config.data.type)(host, config.data)
    host.tokenizer_factory = resolve_factory(trainer_cls, "tokenizer", config.tokenizer.type)(
        host, config.tokenizer
    )
    host.tokenizer = host.tokenizer_factory()
    factory = host.data_factory
    key = factory.cache_key() if config.data.use_cache else None
    cache = factory.cache_dir() / key if key is not None else None
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
        columns = [c for c in dataset.column_names if c.endswith("_ids")]  # dpo: prompt, chosen, rejected
        tokens = sum(len(ids) for column in columns for ids in dataset[column])
        lines.append(f"{split}: {len(dataset)} examples, {tokens} tokens, {len(loader)} batches per epoch")
    if not config.data.use_cache:
        lines.append("cache: off (data.use_cache: false)")
    elif cache is None:
        lines.append("cache: not used (a data callback or source has no fingerprint; see the warning)")
    else:
        lines.append(f"cache: {cache} ({'reused' if cached else 'written'})")
    print("\n".join(lines))
    return 0


class _DataHost:
    """The part of a trainer the tokenizer and data factories use, without building a model."""

    def __init__(self, config: Any, device: Any) -> None:
        self.config = config
        self.world_size, self.global_rank, self.local_rank = 1, 0, 0
        self.device = device
        self.data_factory: Any = None
        self.tokenizer_factory: Any = None
        self.tokenizer: Any = None


# ---------------------------------------------------------------------------------------------- callbacks


def cmd_callbacks(args: argparse.Namespace) -> int:
    """`arctic-like callbacks RECIPE`: every callback chain of the recipe's trainer, factories and checkpoint
    engines in run order, with the recipe's `callbacks:` attached, without building or writing anything."""
    from arctic_like.chains import describe_chains

    print(describe_chains(_load(args), show_bridge=args.all))
    return 0


if __name__ == "__main__":
    sys.exit(run())
