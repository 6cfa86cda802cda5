"""`CheckpointEngine`: the base of every checkpoint engine, with atomic saving, selection and pruning.

Subclasses implement two protected methods: `_write(tmp_dir)` (write this engine's files into a fresh
temporary directory; called on every rank) and `_read(path, manifest)` (restore a verified checkpoint into the
trainer). The base class owns everything that must be the same for all engines: the `checkpoint-<step>`
layout (`dir_prefix` names it: `global_step_<step>` as ArcticTraining's), the temporary-directory-then-rename
protocol, the manifest, the `latest` pointer, `save_total_limit`, finding the newest complete checkpoint and
refusing broken ones with a `CheckpointError` (`auto_resume` falls back past corrupted ones), and reporting a
full disk during a save as a `CheckpointWriteError`.
"""

from __future__ import annotations

import abc
import errno
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import torch

from arctic_like.callback import CallbackMixin
from arctic_like.checkpoint.atomic import (
    fsync_dir,
    fsync_tree,
    honour_umask,
    remove_tree,
    write_text_atomic,
)
from arctic_like.checkpoint.config import CheckpointEngineConfig
from arctic_like.checkpoint.errors import CheckpointError, CheckpointWriteError, CorruptCheckpointError
from arctic_like.checkpoint.manifest import MANIFEST_NAME, build_manifest, read_manifest, verify
from arctic_like.checkpoint.state import barrier, broadcast_object, unwrap_model
from arctic_like.context import TrainerContext, call_with_optional
from arctic_like.registry import Registrable

logger = logging.getLogger("arctic_like.checkpoint")

TMP_PREFIX = ".tmp-"
LATEST_NAME = "latest"


class CheckpointEngine(TrainerContext, Registrable, CallbackMixin):
    """Saves and restores a trainer's run under `config.output_dir` as `checkpoint-<global_step>/`.

    Events: `save` (returns the checkpoint path) and `load` (takes the path). Built as
    `Engine(trainer, config)` by the trainer, one per entry of the recipe's `checkpoint:` list.
    """

    config: ClassVar[type[CheckpointEngineConfig]] = CheckpointEngineConfig
    default_subdir: ClassVar[str] = "checkpoints"
    """Directory under the trainer's output_dir used when `output_dir` is not set."""

    def __init__(self, trainer: Any, config: CheckpointEngineConfig) -> None:
        self.trainer = trainer
        self.config = config
        self._last_saved_step: int | None = None

    # ------------------------------------------------------------------ where and who
    @property
    def output_dir(self) -> Path:
        """The directory holding this engine's `checkpoint-<step>` directories."""
        if self.config.output_dir is not None:
            return Path(self.config.output_dir)
        return Path(self.trainer.config.output_dir) / self.default_subdir

    @property
    def epoch_finished(self) -> bool:
        """Whether the trainer's current epoch is over (ArcticTraining's name)."""
        return bool(getattr(self.trainer, "epoch_finished", False))

    @property
    def training_finished(self) -> bool:
        """Whether the trainer's training loop is over (ArcticTraining's name)."""
        return bool(getattr(self.trainer, "training_finished", False))

    @property
    def is_rank_zero(self) -> bool:
        return self.global_rank == 0

    @property
    def step(self) -> int:
        """The trainer's current optimizer step (the number in `checkpoint-<step>`)."""
        return int(self.trainer.state.global_step)

    def path_for(self, step: int) -> Path:
        """The folder of this engine's checkpoint of ``step``: ``<output_dir>/<dir_prefix><step>``."""
        return self.output_dir / f"{self.config.dir_prefix}{step}"

    @property
    def _name_re(self) -> re.Pattern[str]:
        return re.compile(rf"^{re.escape(self.config.dir_prefix)}(\d+)$")

    # ------------------------------------------------------------------ when
    def should_save(self, *, end_of_epoch: bool = False, end_of_training: bool = False) -> bool:
        """Whether the trainer should call `save()` now (called by the trainer after an optimizer step,
        at the end of an epoch and at the end of training).

        True when `save_every_n_steps` divides the step, `save_every_n_epochs` divides the finished epoch
        count, or a callback or an interrupt set `trainer.control.should_save`; at the end of training only
        with `save_end_of_training`; never twice for the same step.
        """
        step = self.step
        if step == self._last_saved_step or step == 0:
            return False
        cfg = self.config
        if end_of_training:
            return bool(cfg.save_end_of_training)
        control = getattr(self.trainer, "control", None)
        if control is not None and getattr(control, "should_save", False):
            return True
        if end_of_epoch:
            n = cfg.save_every_n_epochs
            epochs_done = round(float(getattr(self.trainer.state, "epoch", 0) or 0))
            return bool(n) and epochs_done > 0 and epochs_done % n == 0
        n = cfg.save_every_n_steps
        return bool(n) and step % n == 0

    # ------------------------------------------------------------------ which
    def checkpoints(self) -> list[Path]:
        """This engine's complete checkpoints in `output_dir`, oldest first (partial ones skipped)."""
        found: list[tuple[int, Path]] = []
        if not self.output_dir.is_dir():
            return []
        for p in self.output_dir.iterdir():
            m = self._name_re.match(p.name)
            if not m or not p.is_dir():
                continue
            manifest = read_manifest(p)
            if manifest is None:
                logger.warning("ignoring %s: no complete %s (an interrupted save?)", p, MANIFEST_NAME)
                continue
            if manifest.get("engine") != self.name:
                continue
            found.append((int(m.group(1)), p))
        return [p for _, p in sorted(found)]

    def best(self) -> Path | None:
        """This engine's checkpoint of the best evaluation (`state.best_global_step`), once the trainer has
        recorded a best model checkpoint; None otherwise."""
        state = self.trainer.state
        if getattr(state, "best_model_checkpoint", None) is None or not getattr(
            state, "best_global_step", None
        ):
            return None
        return self.path_for(state.best_global_step)

    def latest(self) -> Path | None:
        """The newest complete checkpoint of this engine, or None."""
        complete = self.checkpoints()
        return complete[-1] if complete else None

    def cleanup_partial(self) -> list[Path]:
        """Delete leftovers of interrupted saves/deletes (`.tmp-*` directories); rank 0 only."""
        removed: list[Path] = []
        if not self.is_rank_zero or not self.output_dir.is_dir():
            return removed
        for p in self.output_dir.iterdir():
            if p.name.startswith(TMP_PREFIX) and p.is_dir():
                logger.warning("removing %s left by an interrupted checkpoint save", p)
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        return removed

    def resume(self) -> Path | None:
        """Load `resume_from` if set, else (with `auto_resume`) the newest complete checkpoint in
        `output_dir` that is intact; returns the loaded path or None. Called by the trainer once everything
        is built. A corrupted checkpoint is skipped with a warning naming it; if every one is corrupted, a
        `CorruptCheckpointError` says so (starting afresh would overwrite them)."""
        if self.config.resume_from is not None:
            return call_with_optional(self.load, self.config.resume_from, model=self.trainer_model)
        if not self.config.auto_resume:
            return None
        candidates = self.checkpoints()
        if not candidates:
            logger.info("auto_resume: no checkpoint in %s, starting fresh", self.output_dir)
            return None
        for path in reversed(candidates):
            try:
                call_with_optional(self.load, path, model=self.trainer_model)
            except CorruptCheckpointError as error:
                logger.warning(
                    "auto_resume: skipping %s, falling back to an earlier checkpoint: %s", path, error
                )
                continue
            return path
        raise CorruptCheckpointError(
            f"auto_resume: every checkpoint in {self.output_dir} is corrupted "
            f"({', '.join(p.name for p in candidates)}; the reasons were logged). Fix: delete them to start "
            "afresh, or resume_from a copy you trust."
        )

    # ------------------------------------------------------------------ save / load
    def save(self, model: torch.nn.Module | None = None) -> Path:
        """Write a checkpoint of the current step atomically and return its final path. ``model`` is the
        trainer's model (ArcticTraining's signature; ``pre-save`` callbacks may read it): the engine saves the
        trainer's run, so another model is an error.

        Files go to `<output_dir>/.tmp-checkpoint-<step>-<random>/`, are fsynced, and the directory is renamed
        to `checkpoint-<step>`; then the `latest` pointer is replaced and `save_total_limit` applied.
        """
        self._check_model(model, "save")
        step = self.step
        final = self.path_for(step)
        tmp: Path | None = None
        if self.is_rank_zero:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.cleanup_partial()
            tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{final.name}-", dir=self.output_dir))
        tmp = Path(broadcast_object(str(tmp) if tmp else None))
        try:
            self._write(tmp)
            barrier()
            if self.is_rank_zero:
                manifest = build_manifest(tmp, engine=self.name, step=step, model=self._model_for_manifest())
                (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
                honour_umask(tmp)
                fsync_tree(tmp)
                if final.exists():
                    remove_tree(final)
                os.rename(tmp, final)
                fsync_dir(self.output_dir)
                write_text_atomic(self.output_dir / LATEST_NAME, final.name + "\n")
                self._prune(keep=final)
        except BaseException as error:
            full = isinstance(error, Exception) and disk_full(error, self.output_dir)
            if self.is_rank_zero and tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
            if full:
                raise self._disk_full_error(final.name) from error
            raise
        barrier()
        self._last_saved_step = step
        logger.info("saved checkpoint %s", final)
        return final

    def load(self, path: str | os.PathLike, model: torch.nn.Module | None = None) -> Path:
        """Verify checkpoint `path` and restore it into the trainer; raises `CheckpointError` if unusable.
        ``model`` is the trainer's model (ArcticTraining's signature), as in `save`."""
        self._check_model(model, "load")
        path = Path(path)
        if path.name.startswith(TMP_PREFIX):
            raise CheckpointError(
                f"checkpoint {path} is a temporary directory of an interrupted save and is never loaded. "
                "Fix: load a checkpoint-<step> directory instead."
            )
        manifest = verify(path, engine=self.name, model=self._model_for_manifest())
        try:
            self._read(path, manifest)
        except CheckpointError:
            raise
        except (OSError, ValueError, KeyError, TypeError, EOFError, RuntimeError) as error:
            raise CheckpointError(
                f"checkpoint {path} cannot be loaded into this run: {type(error).__name__}: {error}. "
                "Fix: resume from another checkpoint, or start from a fresh output_dir."
            ) from error
        self._last_saved_step = int(manifest["step"])
        logger.info("loaded checkpoint %s (step %s)", path, manifest["step"])
        return path

    @property
    def trainer_model(self) -> torch.nn.Module | None:
        """The trainer's model, as the trainer holds it."""
        return getattr(self.trainer, "model", None)

    def _check_model(self, model: torch.nn.Module | None, action: str) -> None:
        if model is None or model is self.trainer_model or model is unwrap_model(self.trainer):
            return
        raise CheckpointError(
            f"checkpoint engine {self.name!r} was asked to {action} a model other than the trainer's. Fix: "
            f"pass the trainer's model (or nothing); a checkpoint holds the whole run of its trainer."
        )

    def _disk_full_error(self, name: str) -> CheckpointWriteError:
        usage = shutil.disk_usage(self.output_dir)
        previous = self.latest()
        kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
        return CheckpointWriteError(
            f"disk full: checkpoint {name} could not be written to {self.output_dir} "
            f"({usage.free / 2**20:.1f} MiB free of {usage.total / 2**20:.0f} MiB); the partial checkpoint "
            f"was removed and {kept}. Fix: free space on that disk, lower save_total_limit or point the "
            "checkpoint's output_dir at a larger disk, then resume with auto_resume: true."
        )

    def load_weights(self, path: str | os.PathLike) -> Path:
        """Verify checkpoint `path` and load only its model weights (`load_best_model_at_end`): the trainer's
        state, optimizer and data position stay as they are."""
        path = Path(path)
        verify(path, engine=self.name, model=self._model_for_manifest())
        self._read_weights(path)
        logger.info("loaded the model weights of %s", path)
        return path

    def remove_all_but(self, keep: Path) -> None:
        """Delete every complete checkpoint of this engine except `keep` (rank 0; HF's `save_total_limit=1`
        clean-up at the end of training)."""
        if self.is_rank_zero:
            for old in self.checkpoints():
                if old != keep:
                    logger.info("save_total_limit=1: deleting %s, keeping the best %s", old, keep)
                    remove_tree(old)
        barrier()

    # ------------------------------------------------------------------ for subclasses
    @abc.abstractmethod
    def _write(self, tmp: Path) -> None:
        """Write this engine's files into `tmp` (every rank calls this; rank-0-only files are the engine's
        business)."""

    @abc.abstractmethod
    def _read(self, path: Path, manifest: dict[str, Any]) -> None:
        """Restore the verified checkpoint at `path` into the trainer."""

    def _read_weights(self, path: Path) -> None:
        """Load the model weights of the verified checkpoint at `path` into the trainer's model."""
        raise CheckpointError(
            f"checkpoint engine {self.name!r} cannot load the model weights alone (load_best_model_at_end). "
            "Fix: use a torch or huggingface checkpoint engine first in `checkpoint:`."
        )

    def _model_for_manifest(self) -> torch.nn.Module | None:
        """The model whose parameter shapes the manifest records and loads check."""
        return unwrap_model(self.trainer)

    def _prune(self, keep: Path) -> None:
        """Apply `save_total_limit`: delete the oldest checkpoints, never `keep` (the newest) nor the best."""
        limit = self.config.save_total_limit
        if not limit:
            return
        protected = {keep, self.best()}
        complete = self.checkpoints()
        remaining, to_keep = len(complete), max(limit, len(protected - {None}))
        for old in complete:
            if remaining <= to_keep:
                break
            if old not in protected:
                logger.info("save_total_limit=%d: deleting %s", limit, old)
                remove_tree(old)
                remaining -= 1


NEARLY_FULL_BYTES = 64 * 2**20
"""A save that fails with this little space left on its disk is reported as a full disk."""


def disk_full(error: BaseException, directory: Path) -> bool:
    """Whether `error`, raised while writing into `directory`, means the disk is full.

    True for `ENOSPC`/`EDQUOT` anywhere in the exception chain; writers that hide the errno (torch's zip
    writer raises `RuntimeError: ... unexpected pos`) count when the disk has almost no space left.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        return shutil.disk_usage(directory).free < NEARLY_FULL_BYTES
    except OSError:
        return False
