"""Keep only the best checkpoints by an evaluation metric (plus the latest, which resume needs)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Literal

from arctic_like.callbacks.base import Callback, check_mode

logger = logging.getLogger("arctic_like.callbacks.best_checkpoint")


def delete_atomically(path: Path) -> None:
    """Rename ``path`` out of sight first, then delete it: a checkpoint is either complete or gone."""
    hidden = path.with_name(f".{path.name}.deleting")
    os.replace(path, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


class BestCheckpoint(Callback):
    """After each save, keep the ``keep`` best checkpoint directories (``checkpoint-<step>``) by ``metric``.

    Checkpoints are looked for in ``checkpoint_dir``, else in each checkpoint engine's directory, else in
    the output directory. A checkpoint is ranked by the metric of the evaluation at the same step; unranked
    ones are deleted once a newer checkpoint exists. The latest checkpoint is always kept, so
    ``auto_resume`` still finds it; so is ``state.best_model_checkpoint``. Unless the recipe sets
    ``metric_for_best_model`` (then the trainer owns them), ``state.best_metric``, ``best_global_step`` and
    ``best_model_checkpoint`` are set from this callback's ranking. Rank 0 deletes.
    """

    def __init__(
        self,
        metric: str = "eval_loss",
        mode: Literal["min", "max"] = "min",
        keep: int = 1,
        checkpoint_dir: str | Path | None = None,
        state_key: str | None = None,
    ) -> None:
        check_mode("BestCheckpoint", mode)
        if keep < 1:
            raise ValueError(f"BestCheckpoint keep must be at least 1, got {keep}.")
        super().__init__(state_key)
        self.metric = metric
        self.mode = mode
        self.keep = keep
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoints: list[dict[str, Any]] = []
        self._pending: dict[int, float] = {}

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any
    ) -> None:
        metrics = metrics or {}
        key = self.metric if self.metric in metrics else f"eval_{self.metric}"
        if key not in metrics:
            raise ValueError(
                f"BestCheckpoint metric {self.metric!r} is not among the evaluation metrics "
                f"{sorted(metrics)}. "
                "Fix: set `metric` to one of them."
            )
        self._pending[state.global_step] = float(metrics[key])

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        candidates = self._candidates(args, state.global_step)
        path = next((p for p in candidates if p.is_dir()), None)
        if path is None:
            logger.warning("BestCheckpoint: none of %s exists after the save; not tracked", candidates)
            return
        self.checkpoints = [c for c in self.checkpoints if c["path"] != str(path)]
        self.checkpoints.append(
            {
                "path": str(path),
                "step": state.global_step,
                "value": self._pending.pop(state.global_step, None),
            }
        )
        ranked = sorted(
            (c for c in self.checkpoints if c["value"] is not None),
            key=lambda c: c["value"],
            reverse=self.mode == "max",
        )
        keep = {c["path"] for c in ranked[: self.keep]} | {str(path)}
        if ranked and not self._trainer_tracks_best():
            state.best_metric = ranked[0]["value"]
            state.best_global_step = ranked[0]["step"]
            state.best_model_checkpoint = ranked[0]["path"]
        if state.best_model_checkpoint is not None:
            keep.add(str(state.best_model_checkpoint))
        for c in [c for c in self.checkpoints if c["path"] not in keep]:
            self.checkpoints.remove(c)
            if state.is_world_process_zero and Path(c["path"]).is_dir():
                delete_atomically(Path(c["path"]))
                logger.info("BestCheckpoint: deleted %s (%s=%s)", c["path"], self.metric, c["value"])

    def _trainer_tracks_best(self) -> bool:
        return getattr(getattr(self.trainer, "config", None), "metric_for_best_model", None) is not None

    def _candidates(self, args: Any, step: int) -> list[Path]:
        """Where the checkpoint of ``step`` may be: each engine's folder for it, else ``checkpoint-<step>``
        under ``checkpoint_dir`` or the output directory."""
        engines = getattr(self.trainer, "checkpoint_engines", None) or []
        if self.checkpoint_dir is None and engines:
            return [engine.path_for(step) for engine in engines]
        root = self.checkpoint_dir if self.checkpoint_dir is not None else self.output_dir(args)
        return [root / f"checkpoint-{step}"]

    @property
    def best(self) -> list[str]:
        """Paths of the kept ranked checkpoints, best first."""
        ranked = sorted(
            (c for c in self.checkpoints if c["value"] is not None),
            key=lambda c: c["value"],
            reverse=self.mode == "max",
        )
        return [c["path"] for c in ranked[: self.keep]]

    def state_dict(self) -> dict[str, Any]:
        """The tracked checkpoints with their metric values."""
        return {"checkpoints": [dict(c) for c in self.checkpoints]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (entries whose directory is gone are dropped)."""
        self.checkpoints = [dict(c) for c in state.get("checkpoints", []) if Path(c["path"]).is_dir()]
