"""Golden event trace: the HF events arctic_like emits equal those HF's own Trainer emits for the same run."""

import copy

import pytest
import transformers

# Events whose global_step is compared too (HF's on_optimizer_step runs before its step counter moves).
STEP_CHECKED = {"on_step_end", "on_log", "on_evaluate", "on_save", "on_epoch_end", "on_train_end"}


class Recorder(transformers.TrainerCallback):
    """Records every HF event it receives, with the global step where it matters."""

    def __init__(self):
        self.events = []

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if not name.startswith("on_"):
            return attr

        def record(args, state, control, **kwargs):
            self.events.append((name, state.global_step) if name in STEP_CHECKED else name)
            return attr(args, state, control, **kwargs)

        return record


def _golden() -> list:
    step = ["on_step_begin", "on_substep_end", "on_pre_optimizer_step", "on_optimizer_step"]
    evaluation = ["on_prediction_step"] * 4
    return [
        "on_init_end",
        "on_train_begin",
        "on_epoch_begin",
        *step,
        ("on_step_end", 1),
        *step,
        ("on_step_end", 2),
        ("on_log", 2),
        *evaluation,
        ("on_log", 2),
        ("on_evaluate", 2),
        *step,
        ("on_step_end", 3),
        *step,
        ("on_step_end", 4),
        ("on_log", 4),
        *evaluation,
        ("on_log", 4),
        ("on_evaluate", 4),
        ("on_save", 4),
        ("on_epoch_end", 4),
        ("on_log", 4),
        ("on_train_end", 4),
    ]


def hf_trace(trainer, tmp_path) -> list:
    """Run HF's Trainer with the same settings, on a copy of the same model and the same data."""
    recorder = Recorder()
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "hf"),
        per_device_train_batch_size=2,
        per_device_eval_batch_size=2,
        gradient_accumulation_steps=2,
        max_steps=4,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=4,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    hf = transformers.Trainer(
        model=copy.deepcopy(trainer.model),
        args=args,
        train_dataset=trainer.train_dataloader.dataset,
        eval_dataset=trainer.eval_dataloader.dataset,
        data_collator=trainer.train_dataloader.collate_fn,
        callbacks=[recorder],
    )
    hf.remove_callback(transformers.PrinterCallback)
    hf.train()
    return recorder.events


@pytest.mark.slow
def test_trace_matches_hf_trainer(make_trainer, tmp_path):
    trainer = make_trainer(
        max_steps=4,
        gradient_accumulation_steps=2,
        logging_steps=2,
        eval_steps=2,
        save_steps=4,
        callbacks=["tests.integrations.test_event_trace.Recorder"],
    )
    reference = hf_trace(trainer, tmp_path)
    trainer.train()
    ours = trainer.hf_callbacks[0].events
    assert ours == _golden()
    assert ours == reference
