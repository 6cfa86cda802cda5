"""HF TrainerCallbacks run unmodified: kwargs, control, management, state, the real transformers classes."""

import pytest
import torch
import transformers
from transformers import TrainerCallback, TrainingArguments

from arctic_like.callback import CallbackError, run_first
from arctic_like.callbacks import EarlyStopping
from arctic_like.integrations.hf import CallbackStateError


class KwargsProbe(TrainerCallback):
    def __init__(self):
        self.seen = {}

    def on_init_end(self, args, state, control, **kwargs):
        self.seen["init_end"] = kwargs

    def on_train_begin(self, args, state, control, **kwargs):
        self.seen["train_begin"] = (args, state, control, kwargs)

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.seen.setdefault("logs", []).append(dict(logs))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.seen.setdefault("metrics", []).append(dict(metrics))
        self.seen["evaluate"] = kwargs


def test_events_receive_hf_arguments(make_trainer):
    trainer = make_trainer(
        eval_steps=4, max_steps=4, callbacks=["tests.integrations.test_hf_callbacks.KwargsProbe"]
    )
    probe = trainer.hf_callbacks[0]
    trainer.train()
    args, state, control, kwargs = probe.seen["train_begin"]
    assert isinstance(args, TrainingArguments)
    assert args.output_dir == str(trainer.config.output_dir)
    assert args.per_device_train_batch_size == 2 and args.eval_strategy == "steps" and args.eval_steps == 4
    assert isinstance(state, transformers.TrainerState) and isinstance(control, transformers.TrainerControl)
    assert state is trainer.state and control is trainer.control
    names = ["model", "processing_class", "optimizer", "lr_scheduler", "train_dataloader", "eval_dataloader"]
    assert sorted(kwargs) == sorted(names)  # exactly HF's CallbackHandler keyword arguments
    assert kwargs["model"] is trainer.model and kwargs["processing_class"] is trainer.tokenizer
    assert kwargs["optimizer"] is trainer.optimizer and kwargs["lr_scheduler"] is trainer.scheduler
    assert kwargs["train_dataloader"] is trainer.train_dataloader
    # As in HF's Trainer: no optimizer, scheduler or data before train(), no eval data before an evaluation.
    assert [probe.seen["init_end"][k] for k in names[2:]] == [None] * 4
    assert kwargs["eval_dataloader"] is None
    assert probe.seen["evaluate"]["eval_dataloader"] is trainer.eval_dataloader
    assert trainer.callback_handler.eval_dataloader is trainer.eval_dataloader
    assert probe.seen["logs"][0]["loss"] > 0
    assert len(probe.seen["metrics"]) == 1
    metrics = probe.seen["metrics"][0]
    assert metrics == probe.seen["logs"][-2]  # what on_log got for the evaluation, epoch included
    assert {"eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "epoch"} <= set(
        metrics
    )


def test_returned_control_replaces_the_trainers(make_trainer):
    class Replace(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            new = type(control)()
            new.should_training_stop = True
            return new

    trainer = make_trainer()
    trainer.add_callback(Replace)
    trainer.train()
    assert trainer.control.should_training_stop
    assert trainer.state.global_step == 1


def test_hf_doc_style_custom_callback(make_trainer, capsys):
    class MyCallback(TrainerCallback):
        "A callback that prints a message at the beginning of training"

        def on_train_begin(self, args, state, control, **kwargs):
            print("Starting training")

    trainer = make_trainer(max_steps=1)
    trainer.add_callback(MyCallback)  # a class, as HF allows
    trainer.train()
    assert "Starting training" in capsys.readouterr().out


def test_printer_callback(make_trainer, capsys):
    trainer = make_trainer(max_steps=2, logging_steps=1)
    trainer.add_callback(transformers.PrinterCallback)
    trainer.train()
    out = capsys.readouterr().out
    assert out.count("'loss'") == 2 and "learning_rate" in out


def test_progress_callback(make_trainer, capsys):
    trainer = make_trainer(max_steps=4, eval_steps=2)
    cb = trainer.add_callback(transformers.ProgressCallback())
    trainer.train()
    err = capsys.readouterr().err
    assert "4/4" in err
    assert cb.training_bar is None and cb.prediction_bar is None


def test_tensorboard_callback_writes_readable_events(make_trainer, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = make_trainer(max_steps=4, logging_steps=1)
    trainer.add_callback(transformers.integrations.TensorBoardCallback())
    trainer.train()
    files = list((tmp_path / "out" / "runs").rglob("events.out.tfevents.*"))
    assert files
    acc = EventAccumulator(str(files[0].parent))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("train/loss")]
    assert steps == [1, 2, 3, 4]


def test_hf_early_stopping_stops_when_metric_stalls(make_trainer):
    trainer = make_trainer(max_steps=6, eval_steps=1, logging_steps=1, metric_for_best_model="eval_loss")
    trainer.callbacks.append(
        ("post-evaluate", run_first(lambda self, metrics: {**metrics, "eval_loss": 1.0}))
    )
    cb = trainer.add_callback(transformers.EarlyStoppingCallback(early_stopping_patience=2))
    trainer.train()
    assert trainer.control.should_training_stop
    assert trainer.state.global_step == 3  # first eval sets the best, two more without improvement
    assert cb.early_stopping_patience_counter == 2
    assert trainer.state.best_metric is not None


def test_add_pop_remove(make_trainer):
    trainer = make_trainer()
    printer = trainer.add_callback(transformers.PrinterCallback)
    assert isinstance(printer, transformers.PrinterCallback)
    progress = transformers.ProgressCallback()
    trainer.add_callback(progress)
    assert trainer.pop_callback(transformers.PrinterCallback) is printer
    assert trainer.pop_callback(transformers.PrinterCallback) is None
    trainer.remove_callback(progress)
    assert trainer.hf_callbacks == []


def test_duplicate_state_key_rejected_naming_both(make_trainer):
    trainer = make_trainer()
    trainer.add_callback(EarlyStopping(metric="eval_loss"))
    with pytest.raises(CallbackStateError, match=r"EarlyStopping.*'EarlyStopping'.*EarlyStopping.*state_key"):
        trainer.add_callback(EarlyStopping(metric="eval_accuracy"))
    trainer.add_callback(EarlyStopping(metric="eval_accuracy", state_key="es-acc"))
    with pytest.raises(CallbackStateError, match=r"saved under 'TrainerControl', where the trainer's"):
        trainer.add_callback(EarlyStopping(state_key="TrainerControl"))


def test_callback_states_round_trip(make_trainer):
    trainer = make_trainer()
    hf = trainer.add_callback(transformers.EarlyStoppingCallback(early_stopping_patience=3))
    ours = trainer.add_callback(EarlyStopping(patience=4))
    hf.early_stopping_patience_counter = 2
    ours.best, ours.bad_evaluations = 1.5, 1
    states = trainer.callback_states()
    assert trainer.state.stateful_callbacks == states
    assert states["EarlyStoppingCallback"]["attributes"] == {"early_stopping_patience_counter": 2}

    fresh = make_trainer()
    fresh.add_callback(transformers.EarlyStoppingCallback(early_stopping_patience=3))
    mine = fresh.add_callback(EarlyStopping(patience=4))
    fresh.load_callback_states(states)
    restored = next(c for c in fresh.hf_callbacks if isinstance(c, transformers.EarlyStoppingCallback))
    assert restored.early_stopping_patience_counter == 2
    assert (mine.best, mine.bad_evaluations) == (1.5, 1)


def test_state_loaded_before_the_callback_is_added_waits_for_it(make_trainer, caplog):
    trainer = make_trainer(max_steps=1)
    trainer.load_callback_states({"EarlyStopping": {"best": 0.5, "bad_evaluations": 2}, "Gone": {"x": 1}})
    cb = trainer.add_callback(EarlyStopping())
    assert (cb.best, cb.bad_evaluations) == (0.5, 2)
    trainer.train()
    assert "Gone" in caplog.text and "EarlyStopping" not in caplog.text


def test_error_in_hf_callback_names_it(make_trainer):
    class Broken(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            raise RuntimeError("boom")

    trainer = make_trainer()
    trainer.add_callback(Broken)
    with pytest.raises(RuntimeError, match="boom") as info:
        trainer.train()
    assert any("Broken.on_epoch_begin" in note for note in info.value.__notes__)


def test_gradients_seen_at_pre_optimizer_step(make_trainer):
    norms = []

    class Grad(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            norms.append(sum(float(p.grad.norm()) for p in model.parameters() if p.grad is not None))

    trainer = make_trainer(max_steps=2)
    trainer.add_callback(Grad)
    trainer.train()
    assert len(norms) == 2 and all(n > 0 for n in norms)
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in trainer.model.parameters())


def test_no_hf_callbacks_means_no_training_arguments(make_trainer):
    trainer = make_trainer(max_steps=2, eval_steps=1)
    trainer.train()
    assert "_hf_args" not in trainer.__dict__
    assert not any("hf_bridge" in e[1].__qualname__ for e in trainer.callbacks)


def test_our_state_key_may_not_shadow_an_hf_stateful_callback(make_trainer):
    trainer = make_trainer()
    trainer.add_callback(transformers.EarlyStoppingCallback())
    trainer.add_callback(transformers.EarlyStoppingCallback())  # HF keeps several as a list
    with pytest.raises(CallbackStateError, match=r"'EarlyStoppingCallback' is already used by transformers"):
        trainer.add_callback(EarlyStopping(state_key="EarlyStoppingCallback"))


def test_adding_the_same_class_twice_warns(make_trainer, caplog):
    trainer = make_trainer()
    trainer.add_callback(transformers.PrinterCallback)
    trainer.add_callback(transformers.PrinterCallback)
    assert "adding a second transformers.trainer_callback.PrinterCallback" in caplog.text
    trainer.add_callback(transformers.EarlyStoppingCallback())
    trainer.add_callback(transformers.EarlyStoppingCallback())  # stateful ones too, as HF warns
    assert "adding a second transformers.trainer_callback.EarlyStoppingCallback" in caplog.text
    assert "Callbacks now: PrinterCallback, PrinterCallback, EarlyStoppingCallback" in caplog.text
    assert len(trainer.hf_callbacks) == 4


class Misspelled(TrainerCallback):
    def on_stepp_end(self, args, state, control, **kwargs):
        control.should_training_stop = True


def test_a_method_named_like_no_hf_event_is_rejected_with_a_suggestion(make_trainer):
    trainer = make_trainer()
    with pytest.raises(
        CallbackError, match=r"Misspelled\.on_stepp_end is not a HuggingFace .*did you mean on_step_end\?"
    ):
        trainer.add_callback(Misspelled)
    with pytest.raises(CallbackError, match=r"test_hf_callbacks\.Misspelled\.on_stepp_end"):
        make_trainer(callbacks=["tests.integrations.test_hf_callbacks.Misspelled"])
    assert trainer.hf_callbacks == []


def test_callback_handler_is_hfs(make_trainer):
    trainer = make_trainer()
    handler = trainer.callback_handler
    assert isinstance(handler, transformers.trainer_callback.CallbackHandler)
    assert handler.callbacks is trainer.hf_callbacks and handler.callback_list == ""
    handler.add_callback(transformers.PrinterCallback)
    stopper = handler.add_callback(EarlyStopping()) or trainer.hf_callbacks[-1]
    assert handler.callback_list == "PrinterCallback\nEarlyStopping"
    assert stopper.trainer is trainer  # set up like any arctic_like callback
    assert isinstance(handler.pop_callback(transformers.PrinterCallback), transformers.PrinterCallback)
    handler.remove_callback(stopper)
    assert handler.callbacks == [] and stopper.trainer is None
    assert handler.model is trainer.model and handler.processing_class is trainer.tokenizer
    assert handler.optimizer is None  # attached when training starts, as in HF


def test_describe_hf_callbacks(make_trainer):
    trainer = make_trainer()
    assert "(none)" in trainer.describe_hf_callbacks()
    trainer.add_callback(transformers.PrinterCallback)
    trainer.add_callback(EarlyStopping())
    table = trainer.describe_hf_callbacks()
    assert "1  transformers.trainer_callback.PrinterCallback: on_log" in table
    assert "2  arctic_like.callbacks.early_stopping.EarlyStopping: on_evaluate" in table
