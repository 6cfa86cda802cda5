"""One harness callback class in each framework: golden traces, ready callbacks, stopping, state."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch

from arctic_like.harness import (
    ArcticHarnessCallback,
    EarlyStopping,
    HarnessCallback,
    HarnessError,
    NaNGuard,
    to_hf,
)
from arctic_like.trainer.exceptions import NonFiniteLossError
from tests.harness.frameworks import (
    Run,
    Trace,
    arctic_trainer,
    core,
    crafted_scores,
    hf_trainer,
    lightning_trainer,
)

pytestmark = pytest.mark.slow


def _steps(first: int, last: int) -> list[tuple]:
    out: list[tuple] = []
    for k in range(first, last):
        out += [("batch_start", k), ("before_optimizer_step", k), ("batch_end", k + 1)]
    return out


def golden(save_before_validation: bool) -> list[tuple]:
    """6 steps, 4 per epoch, evaluation and checkpoint every 3 steps (logs left out)."""

    def eval_save(step: int) -> list[tuple]:
        pair = [("validation_end", step), ("save", step)]
        return pair[::-1] if save_before_validation else pair

    return [
        ("train_start", 0, 0),
        ("epoch_start", 0, 0),
        *_steps(0, 3),
        *eval_save(3),
        *_steps(3, 4),
        ("epoch_end", 0, 4),
        ("epoch_start", 1, 4),
        *_steps(4, 6),
        *eval_save(6),
        ("epoch_end", 1, 6),
        ("train_end", 6),
    ]


HF_GOLDEN = golden(save_before_validation=False)
ARCTIC_GOLDEN = HF_GOLDEN
LIGHTNING_GOLDEN = golden(save_before_validation=True)


def test_hf_golden_trace(hf_run: Run) -> None:
    assert core(hf_run.trace.calls) == HF_GOLDEN
    # HF logs at logging_steps (train log + eval log) and once more with the training summary.
    assert [c for c in hf_run.trace.calls if c[0] == "log"] == [("log", 3)] * 2 + [("log", 6)] * 3
    assert hf_run.trace.calls[-2:] == [("log", 6), ("train_end", 6)]


def test_lightning_golden_trace(lightning_run: Run) -> None:
    assert core(lightning_run.trace.calls) == LIGHTNING_GOLDEN


def test_arctic_golden_trace_is_hf_order_logs_included(arctic_run: Run, hf_run: Run) -> None:
    assert core(arctic_run.trace.calls) == ARCTIC_GOLDEN
    assert arctic_run.trace.calls == hf_run.trace.calls


def test_frameworks_agree_on_every_core_call_but_save_order(
    hf_run: Run, lightning_run: Run, arctic_run: Run
) -> None:
    hf, pl, al = hf_run.trace, lightning_run.trace, arctic_run.trace
    assert core(hf.calls, drop=("log", "save")) == core(pl.calls, drop=("log", "save"))
    assert core(al.calls, drop=("log", "save")) == core(pl.calls, drop=("log", "save"))
    saves = [[c for c in t.calls if c[0] == "save"] for t in (hf, pl, al)]
    assert saves[0] == saves[1] == saves[2] == [("save", 3), ("save", 6)]
    for trace in (hf, pl, al):
        assert trace.max_steps == 6 and trace.is_main_process is True
        assert len(trace.losses) == 6 and all(math.isfinite(x) and 0.5 < x < 6.0 for x in trace.losses)
    assert all("eval_loss" in keys for keys in hf.metric_keys + al.metric_keys)
    assert all("val_loss" in keys for keys in pl.metric_keys)


def test_arctic_loss_and_checkpoint_dir(arctic_run: Run) -> None:
    history = [h for h in arctic_run.trainer.state.log_history if "loss" in h and "eval_loss" not in h]
    assert history[0]["loss"] == pytest.approx(sum(arctic_run.trace.losses[:3]) / 3, rel=1e-4)
    root = arctic_run.out / "out" / "checkpoints"
    assert arctic_run.trace.save_dirs == [str(root / "checkpoint-3"), str(root / "checkpoint-6")]
    assert all(Path(d).is_dir() for d in arctic_run.trace.save_dirs)


def test_checkpoint_dir_in_hf_and_its_absence_in_lightning(hf_run: Run, lightning_run: Run) -> None:
    assert hf_run.trace.save_dirs == [str(hf_run.out / "checkpoint-3"), str(hf_run.out / "checkpoint-6")]
    assert all(Path(d).is_dir() for d in hf_run.trace.save_dirs)
    assert lightning_run.trace.save_dirs == [None, None]  # Lightning cannot supply it: the default is kept


def test_hf_loss_is_the_step_loss_hf_logs(hf_run: Run) -> None:
    history = [h for h in hf_run.trainer.state.log_history if "loss" in h and "eval_loss" not in h]
    assert history[0]["loss"] == pytest.approx(sum(hf_run.trace.losses[:3]) / 3, rel=1e-3)


@pytest.mark.parametrize("name", ["hf_run", "lightning_run", "arctic_run"])
def test_loss_logger_writes_one_line_per_step(name: str, request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(name)
    lines = [json.loads(line) for line in (run.out / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4, 5, 6]
    assert [r["epoch"] for r in lines] == [0, 0, 0, 0, 1, 1]
    assert [r["loss"] for r in lines] == pytest.approx(run.trace.losses)
    assert all(r["learning_rate"] > 0 for r in lines)


@pytest.mark.parametrize("name", ["hf_run", "arctic_run"])
def test_grad_norm_and_step_timer_values_reach_the_log_history(
    name: str, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(name)
    assert [s for s, _ in run.grad_norm.history] == [1, 2, 3, 4, 5, 6]
    # Values a harness callback logs go out with the next log record (steps 3 and 6, last value wins).
    logged = [h for h in run.trainer.state.log_history if "steps_per_second" in h]
    assert [h["step"] for h in logged] == [3, 6]
    norms = dict(run.grad_norm.history)
    assert [h["harness/grad_norm"] for h in logged] == pytest.approx([norms[3], norms[6]])
    assert all(h["samples_per_second"] > 0 and "loss" in h for h in logged)
    # learning_rate at batch end is the one the step used, which is also what the framework logs.
    lines = {r["step"]: r for r in map(json.loads, (run.out / "loss.jsonl").read_text().splitlines())}
    assert [lines[h["step"]]["learning_rate"] for h in logged] == pytest.approx(
        [h["learning_rate"] for h in logged]
    )
    assert run.timer.steps == 6 and run.timer.samples == 24
    assert run.nan_guard.tripped_step is None


def test_grad_norm_and_step_timer_values_reach_lightning_metrics(lightning_run: Run) -> None:
    metrics = lightning_run.trainer.callback_metrics
    assert float(metrics["harness/grad_norm"]) == pytest.approx(
        lightning_run.grad_norm.history[-1][1], rel=1e-5
    )
    assert float(metrics["samples_per_second"]) > 0
    assert lightning_run.timer.steps == 6
    assert lightning_run.nan_guard.tripped_step is None


SCORES = [5.0, 4.0, 4.5, 4.2, 4.1, 1.0]  # best at step 2, no improvement at 3 and 4: stop at 4 (patience 2)


def test_early_stopping_stops_all_three_at_the_same_step(tmp_path: Path) -> None:
    hf_es = EarlyStopping(monitor="score", mode="min", patience=2)
    hf = hf_trainer(
        [hf_es], tmp_path / "hf", max_steps=10, eval_steps=1, save_steps=None, scores=crafted_scores(SCORES)
    )
    hf.train()
    pl_es = EarlyStopping(monitor="score", mode="min", patience=2)
    pl, module = lightning_trainer(
        [pl_es], tmp_path / "pl", max_steps=10, eval_steps=1, save_steps=None, scores=crafted_scores(SCORES)
    )
    pl.fit(module)
    al_es = EarlyStopping(monitor="score", mode="min", patience=2)
    al = arctic_trainer(
        [al_es], tmp_path / "al", max_steps=10, eval_steps=1, save_steps=None, scores=crafted_scores(SCORES)
    )
    al.train()
    assert hf.state.global_step == pl.global_step == al.state.global_step == 4
    assert hf_es.stopped_step == pl_es.stopped_step == al_es.stopped_step == 4
    expected = {"best": 4.0, "best_step": 2, "wait": 2, "stopped_step": 4}
    assert hf_es.state_dict() == pl_es.state_dict() == al_es.state_dict() == expected
    # EarlyStopping declares no loss/batch: the HF adapter never hooked the model nor synced a loss.
    adapter = next(
        cb for cb in hf.callback_handler.callbacks if type(cb).__name__ == "Harness[EarlyStopping]"
    )
    assert adapter._hook is None and adapter._losses.values == []


def test_nan_guard_stops_hf_and_lightning_naming_the_step(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hf_guard, pl_guard = NaNGuard(), NaNGuard()
    with caplog.at_level(logging.WARNING, logger="arctic_like.harness"):
        hf = hf_trainer([hf_guard], tmp_path / "hf", eval_steps=None, save_steps=None, nan_at=3)
        hf.train()
        pl, module = lightning_trainer(
            [pl_guard], tmp_path / "pl", eval_steps=None, save_steps=None, nan_at=3
        )
        pl.fit(module)
    assert hf.state.global_step == pl.global_step == 3
    assert hf_guard.tripped_step == pl_guard.tripped_step == 3
    assert caplog.text.count("NaNGuard: non-finite loss (nan) at step 3; stopping training") == 2


def test_hf_state_goes_through_exportable_state(tmp_path: Path) -> None:
    es = EarlyStopping(monitor="score", mode="min", patience=5)
    trainer = hf_trainer(
        [es], tmp_path, max_steps=4, eval_steps=1, save_steps=4, scores=crafted_scores(SCORES)
    )
    trainer.train()
    saved = json.loads((tmp_path / "checkpoint-4" / "trainer_state.json").read_text())
    stored = saved["stateful_callbacks"]["Harness[EarlyStopping]"]
    assert stored == {"args": {}, "attributes": {"harness_state": es.state_dict()}}
    assert es.state_dict()["best_step"] == 2

    fresh = EarlyStopping(monitor="score", mode="min", patience=5)
    resumed = hf_trainer(
        [fresh],
        tmp_path,
        max_steps=4,
        eval_steps=1,
        save_steps=4,
        scores=crafted_scores(SCORES),
        restore_callback_states_from_checkpoint=True,  # HF restores callback states only when asked to
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-4"))
    assert fresh.state_dict() == es.state_dict()
    adapters = [
        cb for cb in resumed.callback_handler.callbacks if type(cb).__name__ == "Harness[EarlyStopping]"
    ]
    assert len(adapters) == 1 and adapters[0].callback is fresh


class ProbedEarlyStopping(EarlyStopping):
    """EarlyStopping that remembers its state when training starts (after any restore)."""

    def _on_train_start(self) -> None:
        self.at_start = self.state_dict()


def test_lightning_state_goes_through_state_dict(tmp_path: Path) -> None:
    es = ProbedEarlyStopping(monitor="score", mode="min", patience=5)
    pl, module = lightning_trainer(
        [es], tmp_path, max_steps=4, eval_steps=1, save_steps=4, scores=crafted_scores(SCORES)
    )
    pl.fit(module)
    ckpt_path = tmp_path / "ckpt" / "epoch=0-step=4.ckpt"
    # Lightning's ModelCheckpoint saves at the end of step 4, before step 4's validation ran.
    stored = torch.load(ckpt_path, weights_only=False)["callbacks"]["Harness[ProbedEarlyStopping]"]
    assert stored == {"best": 4.0, "best_step": 2, "wait": 1, "stopped_step": None}

    fresh = ProbedEarlyStopping(monitor="score", mode="min", patience=5)
    pl2, module2 = lightning_trainer(
        [fresh], tmp_path / "again", max_steps=6, eval_steps=1, save_steps=None, scores=crafted_scores(SCORES)
    )
    pl2.fit(module2, ckpt_path=str(ckpt_path))
    assert fresh.at_start == stored


class CrashRecorder(HarnessCallback):
    optional_events = frozenset({"_on_exception"})

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    def _on_exception(self, current_step: int, exception: BaseException) -> None:
        self.seen.append((current_step, type(exception).__name__))


def test_arctic_stops_on_nan_itself_and_reports_the_exception(tmp_path: Path) -> None:
    """arctic_like checks the loss before any step-end event, so NaNGuard never sees it: the trainer's own
    guard raises, naming the step, and harness callbacks get ``_on_exception``."""
    guard, crash = NaNGuard(), CrashRecorder()
    trainer = arctic_trainer([guard, crash], tmp_path, eval_steps=None, save_steps=None, nan_at=3)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \(nan\) at optimizer step 3"):
        trainer.train()
    assert crash.seen == [(2, "NonFiniteLossError")]
    assert guard.tripped_step is None and trainer.state.global_step == 2


def test_arctic_state_goes_through_callback_states(tmp_path: Path) -> None:
    es = EarlyStopping(monitor="score", mode="min", patience=5)
    trainer = arctic_trainer(
        [es], tmp_path, max_steps=4, eval_steps=1, save_steps=4, scores=crafted_scores(SCORES)
    )
    trainer.train()
    checkpoint = tmp_path / "out" / "checkpoints" / "checkpoint-4"
    states = torch.load(checkpoint / "callback_states.pt", weights_only=True)
    assert (
        states["Harness[EarlyStopping]"]
        == es.state_dict()
        == {
            "best": 4.0,
            "best_step": 2,
            "wait": 2,
            "stopped_step": None,
        }
    )
    # A recipe's ``callbacks:`` entry can name a harness callback; auto-resume restores its state.
    resumed = arctic_trainer(
        [],
        tmp_path,
        max_steps=6,
        eval_steps=1,
        save_steps=4,
        callbacks=[
            {"path": "arctic_like.harness.EarlyStopping", "kwargs": {"monitor": "score", "patience": 5}}
        ],
        checkpoint=[
            {"type": "torch", "save_every_n_steps": 4, "save_end_of_training": False, "auto_resume": True}
        ],
    )
    assert resumed.state.global_step == 4
    restored = [cb for cb in resumed.hf_callbacks if isinstance(cb, EarlyStopping)]
    assert len(restored) == 1 and restored[0].state_dict() == es.state_dict()
    adapters = {
        id(fn.__self__)
        for _, fn in resumed.callbacks
        if isinstance(getattr(fn, "__self__", None), ArcticHarnessCallback)
    }
    assert len(adapters) == 1  # the recipe's harness callback drives the trainer through one arctic adapter


ACCUMULATION_GOLDEN = [
    ("train_start", 0, 0),
    ("epoch_start", 0, 0),
    *_steps(0, 2),
    ("epoch_end", 0, 2),
    ("train_end", 2),
]


def test_gradient_accumulation_one_train_batch_per_optimizer_step(tmp_path: Path) -> None:
    """4 micro-batches, 2 per optimizer step: every framework fires the batch events once per step."""
    traces = [Trace(), Trace(), Trace()]
    hf = hf_trainer(
        [traces[0]],
        tmp_path / "hf",
        max_steps=2,
        eval_steps=None,
        save_steps=None,
        gradient_accumulation_steps=2,
        logging_steps=1,
    )
    hf.train()
    pl, module = lightning_trainer(
        [traces[1]], tmp_path / "pl", max_steps=2, eval_steps=None, save_steps=None, accumulate_grad_batches=2
    )
    pl.fit(module)
    al = arctic_trainer(
        [traces[2]],
        tmp_path / "al",
        max_steps=2,
        eval_steps=None,
        save_steps=None,
        gradient_accumulation_steps=2,
        logging_steps=1,
    )
    al.train()
    for trace in traces:
        assert core(trace.calls) == ACCUMULATION_GOLDEN
        assert len(trace.losses) == 2 and all(0.5 < x < 6.0 for x in trace.losses)
    for trainer, trace in ((hf, traces[0]), (al, traces[2])):
        logged = [h["loss"] for h in trainer.state.log_history if "loss" in h][:2]
        assert logged == pytest.approx(trace.losses, rel=1e-4)


class Boom(HarnessCallback):
    def _on_train_batch_end(self, current_step: int) -> None:
        if current_step == 2:
            raise ValueError("boom at step 2")


def test_exception_event_in_lightning_and_arctic(tmp_path: Path) -> None:
    pl_crash, al_crash = CrashRecorder(), CrashRecorder()
    pl, module = lightning_trainer([Boom(), pl_crash], tmp_path / "pl", eval_steps=None, save_steps=None)
    with pytest.raises(ValueError, match="boom at step 2"):
        pl.fit(module)
    al = arctic_trainer([Boom(), al_crash], tmp_path / "al", eval_steps=None, save_steps=None)
    with pytest.raises(ValueError, match="boom at step 2"):
        al.train()
    assert pl_crash.seen == al_crash.seen == [(2, "ValueError")]
    with pytest.raises(HarnessError, match=r"CrashRecorder\._on_exception: HuggingFace Trainer never fires"):
        to_hf(type("CrashRecorder", (CrashRecorder,), {"optional_events": frozenset()})())
