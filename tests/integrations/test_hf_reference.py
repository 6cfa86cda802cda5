"""HF callbacks see in arctic_like exactly what they see in HF's Trainer: compared with the real Trainer.

Every scenario of tests/integrations/hf_reference.py runs in both (once per session); the recorded traces
must be identical, the logged numbers equal to a tolerance, and HF's own logging callbacks must write the
same things.
"""

import ast
import dataclasses
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from arctic_like.trainer import TrainerState
from tests.integrations.hf_reference import ARCTIC_ONLY_LOGS, SCENARIOS, hf_view, history

pytestmark = pytest.mark.slow

TIMING = ("runtime", "per_second")


def _step(n: int, end_flags: str) -> list[tuple]:
    """One optimizer step n -> n + 1 of scenario "steps" (accumulation 2, 8 steps per epoch)."""
    before, after = round(n / 8, 6), round((n + 1) / 8, 6)
    return [
        ("on_step_begin", n, before, ".....", False),
        ("on_substep_end", n, before, ".....", True),
        ("on_pre_optimizer_step", n, before, ".....", True),
        ("on_optimizer_step", n, before, ".....", True),  # gradients still there, step not yet counted
        ("on_step_end", n + 1, after, end_flags, False),
    ]


def _log(n: int, flags: str) -> list[tuple]:
    return [("on_log", n, round(n / 8, 6), flags, False)]


def _evaluate_and_save(n: int, stop: str) -> list[tuple]:
    epoch = round(n / 8, 6)
    return [
        *[("on_prediction_step", n, epoch, f"{stop}.SE.", False)] * 2,  # should_evaluate still set
        ("on_log", n, epoch, f"{stop}.SE.", False),
        ("on_evaluate", n, epoch, f"{stop}.S..", False),
        ("on_save", n, epoch, f"{stop}....", False),
    ]


STEPS_GOLDEN = [
    ("on_init_end", 0, 0.0, ".....", False),
    ("on_train_begin", 0, 0.0, ".....", False),
    ("on_epoch_begin", 0, 0.0, ".....", False),
    *_step(0, "....."),
    *_step(1, "....L"),
    *_log(2, "....."),
    *_step(2, "....."),
    *_step(3, "..SEL"),
    *_log(4, "..SE."),
    *_evaluate_and_save(4, "."),
    *_step(4, "....."),
    *_step(5, "....L"),
    *_log(6, "....."),
    *_step(6, "....."),
    *_step(7, "T.SEL"),
    *_log(8, "T.SE."),
    *_evaluate_and_save(8, "T"),
    ("on_epoch_end", 8, 1.0, "T....", False),
    ("on_log", 8, 1.0, "T....", False),  # train_* metrics; no extra save after it
    ("on_train_end", 8, 1.0, "T....", False),
]
"""Scenario "steps" as HF's Trainer 5.x fires it: (event, global step, epoch, flags T E S E L, gradients
exist)."""


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_event_as_in_hf(hf_reference, name):
    pair = hf_reference[name]
    assert hf_view(pair.arctic.events) == pair.hf.events
    logs = [set(e[6]) for e in pair.arctic.events if e[0] == "on_log"]
    assert all(keys & ARCTIC_ONLY_LOGS for keys in logs)  # arctic_like's throughput figures, documented


def test_the_steps_scenario_golden(hf_reference):
    pair = hf_reference["steps"]
    assert [e[:5] for e in pair.hf.events] == STEPS_GOLDEN
    optimizer_steps = [e for e in pair.arctic.events if e[0] == "on_optimizer_step"]
    logged_lr = {h["step"]: h["learning_rate"] for h in pair.arctic.trainer.state.log_history if "loss" in h}
    assert {e[1] + 1: e[5] for e in optimizer_steps if e[1] + 1 in logged_lr} == pytest.approx(logged_lr)
    assert [e[6] for e in hf_view(pair.arctic.events) if e[0] == "on_evaluate"] == [
        ("epoch", "eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second")
    ] * 2


@pytest.mark.parametrize(
    ("name", "final_step", "final_epoch"),
    [("steps", 8, 1.0), ("stop-at-3", 3, 0.375), ("epoch-stop", 11, 2.0), ("incomplete-window", 12, 2.0)],
)
def test_numbers_as_in_hf(hf_reference, name, final_step, final_epoch):
    pair = hf_reference[name]
    ours, theirs = history(pair.arctic.trainer), history(pair.hf.trainer)
    assert [sorted(e) for e in ours] == [sorted(e) for e in theirs]
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine == pytest.approx(reference, rel=1e-5)
    state, reference = pair.arctic.trainer.state, pair.hf.trainer.state
    assert (
        (state.global_step, state.epoch)
        == (reference.global_step, reference.epoch)
        == (final_step, final_epoch)
    )
    fields = [
        "max_steps",
        "num_train_epochs",
        "logging_steps",
        "eval_steps",
        "save_steps",
        "train_batch_size",
    ]
    assert [getattr(state, f) for f in fields] == [getattr(reference, f) for f in fields]
    assert state.total_flos == pytest.approx(reference.total_flos)


def test_save_steps_without_a_checkpoint_section_save_like_hf(hf_reference):
    pair = hf_reference["steps"]
    assert pair.arctic.trainer.config.checkpoint == []
    for run in (pair.arctic, pair.hf):
        assert sorted(p.name for p in run.out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-8"]
    assert [e[1] for e in pair.arctic.events if e[0] == "on_save"] == [4, 8]


def test_best_model_loaded_at_the_end_and_kept_as_in_hf(hf_reference):
    pair = hf_reference["best-model"]
    for run in (pair.hf, pair.arctic):
        state = run.trainer.state
        assert (state.global_step, state.best_global_step, state.best_metric) == (8, 4, 2.0)
        assert Path(state.best_model_checkpoint) == run.out / "checkpoint-4"
        # save_total_limit 1: the best checkpoint survived the rotation; at the end only it is kept
        assert sorted(p.name for p in run.out.glob("checkpoint-*")) == ["checkpoint-4"]
        saved = load_file(str(run.out / "checkpoint-4" / "model.safetensors"))
        for name, param in run.trainer.model.named_parameters():
            assert torch.equal(param.detach().cpu(), saved[name]), name
        stopper = next(
            cb
            for cb in run.trainer.callback_handler.callbacks
            if type(cb).__name__ == "EarlyStoppingCallback"
        )
        assert stopper.early_stopping_patience_counter == 2
    for (name, mine), theirs in zip(
        pair.arctic.trainer.model.named_parameters(), pair.hf.trainer.model.parameters(), strict=True
    ):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5, msg=name)


def test_hf_reads_our_trainer_state(hf_reference):
    pair = hf_reference["best-model"]
    path = pair.arctic.out / "checkpoint-4" / "trainer_state.json"
    ours = transformers.TrainerState.load_from_json(str(path))
    theirs = transformers.TrainerState.load_from_json(
        str(pair.hf.out / "checkpoint-4" / "trainer_state.json")
    )
    differ = {
        "log_history",
        "stateful_callbacks",
        "best_model_checkpoint",
        "num_input_tokens_seen",
        "total_flos",
    }
    same = [f.name for f in dataclasses.fields(transformers.TrainerState) if f.name not in differ]
    assert [getattr(ours, f) for f in same] == [getattr(theirs, f) for f in same]
    assert Path(ours.best_model_checkpoint).name == Path(theirs.best_model_checkpoint).name == "checkpoint-4"
    for key in ("EarlyStoppingCallback", "TrainerControl"):
        assert ours.stateful_callbacks[key] == theirs.stateful_callbacks[key]
    assert ours.stateful_callbacks["arctic_like.TrainerState"]["attributes"]["micro_step"] == 8
    restored = TrainerState.load_from_json(path)
    assert isinstance(restored, transformers.TrainerState) and restored.micro_step == 8
    assert "arctic_like.TrainerState" not in restored.stateful_callbacks


def _printed(text: str) -> list[dict]:
    lines = [ast.literal_eval(line) for line in text.splitlines() if line.startswith("{")]
    return [
        {k: v for k, v in line.items() if not k.endswith(TIMING) and k not in ARCTIC_ONLY_LOGS}
        for line in lines
    ]


def _scalars(out: Path) -> dict[str, list[tuple[int, float]]]:
    (events,) = out.glob("runs/*")
    acc = EventAccumulator(str(events))
    acc.Reload()
    tags = [
        t
        for t in acc.Tags()["scalars"]
        if not t.endswith(TIMING) and t.split("/")[-1] not in ARCTIC_ONLY_LOGS
    ]
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags}


def test_printer_progress_and_tensorboard_write_what_they_write_in_hf(hf_reference):
    pair = hf_reference["steps"]
    ours, theirs = _printed(pair.arctic.stdout), _printed(pair.hf.stdout)
    assert len(ours) == len(theirs) == 2 * 7  # the printer and the progress bar, 7 records each
    assert [sorted(e) for e in ours] == [sorted(e) for e in theirs]
    for mine, reference in zip(ours, theirs, strict=True):
        assert {k: float(v) for k, v in mine.items()} == pytest.approx(
            {k: float(v) for k, v in reference.items()}, rel=1e-3
        )
    assert "8/8" in pair.arctic.stderr and "8/8" in pair.hf.stderr
    ours, theirs = _scalars(pair.arctic.out), _scalars(pair.hf.out)
    assert sorted(ours) == sorted(theirs) and "train/loss" in ours and "eval/loss" in ours
    for tag, values in ours.items():
        assert [s for s, _ in values] == [s for s, _ in theirs[tag]]
        assert [v for _, v in values] == pytest.approx([v for _, v in theirs[tag]], rel=1e-5), tag
