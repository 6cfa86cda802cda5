"""Each run that fails says so and leaves what docs/errors.md promises (in-process, through the CLI):

a loss that stays non-finite fails the run (exit 3) with its skip counters saved; a full disk during a save
(exit 74) keeps the previous checkpoint; auto_resume falls back past a corrupted checkpoint; signals during
start-up, mid-step, mid-save and twice end with 130/143 and the checkpoints described.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
from pathlib import Path

import pytest
import yaml

from arctic_like.cli import main
from arctic_like.config import build_trainer
from arctic_like.trainer import TrainerState
from tests.trainer.helpers import tiny_recipe

STAYS_NAN = """
from arctic_like.trainer import CausalTrainer

def nan_from_step_3(self, loss):
    return loss * float("nan") if self.state.global_step >= 2 else loss

class Diverging(CausalTrainer):
    name = "diverging"
    callbacks = [("post-loss", nan_from_step_3)]
"""

# Sends SIGNAL `count` times from inside write_run_state during the save of checkpoint-AT.
SIGNAL_MID_SAVE = """
import os, signal
import arctic_like.checkpoint.torch_engine as te

_write_run_state = te.write_run_state

def write_run_state(trainer, tmp, rank, *, rank_zero):
    if trainer.state.global_step == {at}:
        for _ in range({count}):
            os.kill(os.getpid(), signal.{signal})
    _write_run_state(trainer, tmp, rank, rank_zero=rank_zero)

te.write_run_state = write_run_state
"""

# Sends SIGNAL `count` times from a callback on EVENT (taking `params`) at optimizer step AT (once).
SIGNAL_AT = """
import os, signal
from arctic_like.trainer import CausalTrainer

def send(self{params}):
    if self.state.global_step == {at} and not self.__dict__.get("_sent"):
        self._sent = True
        for _ in range({count}):
            os.kill(os.getpid(), signal.{signal})
    return {result}

class Signalling(CausalTrainer):
    name = "signalling"
    callbacks = [("{event}", send)]
"""


def signal_at(event: str, at: int, count: int, sig: str) -> str:
    takes = event == "pre-backward"
    return SIGNAL_AT.format(
        params=", loss" if takes else "",
        result="loss" if takes else "None",
        event=event,
        at=at,
        count=count,
        signal=sig,
    )


# The KeyboardInterrupt of a start-up SIGINT is raised inside code that swallows it.
SWALLOWED = """
import os, signal, time

class Swallower:
    def __init__(self):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        except BaseException:
            pass
"""


@pytest.fixture(autouse=True)
def restore_checkpoint_writers(monkeypatch):
    """The code files below wrap functions of the torch checkpoint engine: undo that after each test."""
    import arctic_like.checkpoint.torch_engine as te

    monkeypatch.setattr(te, "write_run_state", te.write_run_state)
    monkeypatch.setattr(te, "save_model", te.save_model)


def write(work: Path, files: dict[str, str] | None = None, **overrides) -> str:
    recipe = tiny_recipe(work, checkpoint=[{"type": "torch", "save_every_n_steps": 2}], **overrides)
    (work / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    for name, text in (files or {}).items():
        (work / name).write_text(text)
    return "recipe.yaml"


def checkpoints(work: Path) -> list[str]:
    root = work / "out" / "checkpoints"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "arctic-like: error:" in line]


# ---- 1. a loss that stays non-finite is a failed run -------------------------------------------------------


def test_skip_with_a_loss_that_stays_nan_fails_and_saves_its_counters(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = write(
        tmp_path,
        {"diverging.py": STAYS_NAN},
        code="diverging.py",
        type="diverging",
        epochs=4,
        nonfinite_loss="skip",
        nonfinite_loss_patience=5,
    )
    assert main(["train", recipe]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(error_lines(err)) == 1
    assert "training failed: 5 non-finite losses in a row (the last at optimizer step 3 " in err
    assert "nonfinite_loss_patience: 5" in err and "Fix: lower the learning rate" in err
    assert "The state at failure, skip counters included: " in err
    # checkpoint-2 was saved normally, then replaced by the state at failure: same step, with the counters.
    assert checkpoints(tmp_path) == ["checkpoint-2", "latest"]
    state = TrainerState.load_from_json(tmp_path / "out/checkpoints/checkpoint-2/trainer_state.json")
    counters = ("global_step", "nonfinite_losses", "skipped_micro_batches", "skipped_optimizer_steps")
    assert [getattr(state, name) for name in counters] == [2, 5, 4, 4]  # the fifth failed the run


def test_a_run_whose_every_loss_is_nan_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = build_trainer(tiny_recipe(tmp_path, nonfinite_loss="skip", nonfinite_loss_patience=100))
    trainer.callbacks.append(("post-loss", lambda self, loss: loss * float("nan")))
    from arctic_like.trainer import NonFiniteLossError

    with pytest.raises(NonFiniteLossError, match=r"every loss of the run was non-finite \(4 micro-batches"):
        trainer.train()
    assert trainer.state.global_step == 0


# ---- 3. a full disk during a save --------------------------------------------------------------------------

FULL_DISK_AT_STEP_4 = """
import errno
import arctic_like.checkpoint.torch_engine as te

_save_model = te.save_model

def save_model(model, filename, *args, **kwargs):
    if "checkpoint-4" in filename:
        raise OSError(errno.ENOSPC, "No space left on device", filename)
    return _save_model(model, filename, *args, **kwargs)

te.save_model = save_model
"""


def test_a_full_disk_during_a_save_says_so_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = write(tmp_path, {"full.py": FULL_DISK_AT_STEP_4}, code="full.py")
    assert main(["train", recipe]) == 74
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(error_lines(err)) == 1
    checkpoints_dir = tmp_path / "out" / "checkpoints"
    assert f"disk full: checkpoint checkpoint-4 could not be written to {checkpoints_dir}" in err
    assert f"the previous checkpoint {checkpoints_dir / 'checkpoint-2'} is intact" in err
    assert "Fix: free space on that disk" in err
    assert checkpoints(tmp_path) == ["checkpoint-2", "latest"]  # the partial checkpoint-4 is gone
    assert (checkpoints_dir / "latest").read_text().strip() == "checkpoint-2"


# ---- 10. auto_resume falls back past a corrupted checkpoint ------------------------------------------------


def test_auto_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    checkpoint = [{"type": "torch", "save_every_n_steps": 2, "auto_resume": True}]
    build_trainer(tiny_recipe(tmp_path, checkpoint=checkpoint)).train()
    assert checkpoints(tmp_path) == ["checkpoint-2", "checkpoint-4", "latest"]
    newest = tmp_path / "out" / "checkpoints" / "checkpoint-4"
    with open(newest / "model.safetensors", "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"\0" * 8)
    with caplog.at_level(logging.WARNING, logger="arctic_like.checkpoint"):
        trainer = build_trainer(tiny_recipe(tmp_path, checkpoint=checkpoint, epochs=2))
    assert trainer.state.global_step == 2
    warning = next(r.getMessage() for r in caplog.records if "auto_resume: skipping" in r.getMessage())
    assert f"skipping {newest}, falling back to an earlier checkpoint" in warning
    assert "model.safetensors does not match its checksum" in warning


# ---- 8. signals --------------------------------------------------------------------------------------------


def test_a_swallowed_start_up_interrupt_still_stops_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = write(tmp_path, {"swallow.py": SWALLOWED}, code="swallow.py", callbacks=["swallow.Swallower"])
    assert main(["train", recipe]) == 130
    err = capsys.readouterr().err
    assert "interrupted by SIGINT during start-up, before training began; nothing was written" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("event", ["pre-train", "pre-epoch", "pre-step"])
def test_one_signal_at_the_start_of_training_is_never_lost(event, tmp_path, monkeypatch, capsys):
    """The window of issue 13: a signal between `train()` starting and the first step used to stop the run
    early and exit 0. Before the training loop (pre-train) it stops at once; from pre-epoch on, gracefully."""
    monkeypatch.chdir(tmp_path)
    code = signal_at(event, at=0, count=1, sig="SIGINT")
    recipe = write(tmp_path, {"sig.py": code}, code="sig.py", type="signalling")
    assert main(["train", recipe]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if event == "pre-train":
        assert "interrupted by SIGINT: stopped at once" in err and checkpoints(tmp_path) == []
    else:
        assert "training interrupted by SIGINT at step 1; checkpoint written to" in err
        assert checkpoints(tmp_path) == ["checkpoint-1", "latest"]


def test_a_second_sigterm_exits_143_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = signal_at("pre-backward", at=2, count=2, sig="SIGTERM")
    recipe = write(tmp_path, {"sig.py": code}, code="sig.py", type="signalling")
    assert main(["train", recipe]) == 143
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(error_lines(err)) == 1
    checkpoints_dir = tmp_path / "out" / "checkpoints"
    assert (
        "interrupted again by SIGTERM: stopped at once, without a checkpoint of the current step; "
        f"the last complete checkpoint is {checkpoints_dir / 'checkpoint-2'}"
    ) in err
    assert checkpoints(tmp_path) == ["checkpoint-2", "latest"]


def test_a_signal_mid_save_lets_the_save_finish_then_stops_after_the_next_step(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = SIGNAL_MID_SAVE.format(at=2, count=1, signal="SIGTERM")
    recipe = write(tmp_path, {"mid_save.py": code}, code="mid_save.py")
    assert main(["train", recipe]) == 143
    err = capsys.readouterr().err
    assert "training interrupted by SIGTERM at step 3; checkpoint written to" in err
    assert checkpoints(tmp_path) == ["checkpoint-2", "checkpoint-3", "latest"]
    manifest = json.loads((tmp_path / "out/checkpoints/checkpoint-2/manifest.json").read_text())
    assert manifest["complete"] is True


def test_two_signals_mid_save_abandon_that_save_only(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = SIGNAL_MID_SAVE.format(at=4, count=2, signal="SIGTERM")
    recipe = write(tmp_path, {"mid_save.py": code}, code="mid_save.py", epochs=2)
    assert main(["train", recipe]) == 143
    err = capsys.readouterr().err
    assert "interrupted again by SIGTERM: stopped at once" in err and "Traceback" not in err
    assert checkpoints(tmp_path) == ["checkpoint-2", "latest"]  # no .tmp-checkpoint-4 left behind
    assert (tmp_path / "out/checkpoints/latest").read_text().strip() == "checkpoint-2"


def test_the_handlers_before_the_command_are_restored(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    assert main(["train", write(tmp_path), "--set", "max_steps=1"]) == 0
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_disk_full_is_recognised_when_the_writer_hides_the_errno(tmp_path, monkeypatch):
    """torch's zip writer raises `RuntimeError: ... unexpected pos` on a full disk: the free space decides."""
    from arctic_like.checkpoint import base

    hidden = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 470")
    assert base.disk_full(OSError(errno.ENOSPC, "No space left on device"), tmp_path)
    assert not base.disk_full(hidden, tmp_path)
    monkeypatch.setattr(base.shutil, "disk_usage", lambda path: type("U", (), {"free": 4096, "total": 2**20}))
    assert base.disk_full(hidden, tmp_path)
