"""Recipe `callbacks:` entries, TrainingArguments built from the recipe, and HFArgs overrides."""

import types

import pytest
import transformers

from arctic_like.callbacks import EarlyStopping, JsonLogger
from arctic_like.integrations.hf import (
    CallbackSpecError,
    HFArgs,
    resolve_callback_spec,
    training_arguments_from_config,
)


class InitProbe(transformers.TrainerCallback):
    def __init__(self):
        self.seen = []

    def on_init_end(self, args, state, control, **kwargs):
        self.seen.append("init_end")


def test_recipe_entries_are_resolved_with_kwargs_and_get_on_init_end(make_trainer):
    trainer = make_trainer(
        callbacks=[
            "transformers.PrinterCallback",
            {"path": "arctic_like.callbacks.EarlyStopping", "kwargs": {"patience": 5}},
            "arctic_like.callbacks:JsonLogger",
            "tests.integrations.test_recipe_callbacks.InitProbe",
        ]
    )
    kinds = [type(cb) for cb in trainer.hf_callbacks]
    assert kinds == [transformers.PrinterCallback, EarlyStopping, JsonLogger, InitProbe]
    assert trainer.hf_callbacks[1].patience == 5
    assert trainer.hf_callbacks[3].seen == ["init_end"]


def test_objects_classes_and_instances_are_accepted():
    spec = types.SimpleNamespace(path="arctic_like.callbacks.EarlyStopping", kwargs={"patience": 2})
    assert resolve_callback_spec(spec).patience == 2
    assert isinstance(resolve_callback_spec(InitProbe), InitProbe)
    probe = InitProbe()
    assert resolve_callback_spec(probe) is probe


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuchpkg.Thing", r"cannot import module 'nosuchpkg'"),
        ("transformers.NoSuchCallback", r"module 'transformers' has no attribute 'NoSuchCallback'"),
        ("Bare", r"is not an import path"),
        (
            {"path": "arctic_like.callbacks.EarlyStopping", "kwargs": {"bogus": 1}},
            r"rejected kwargs \['bogus'\]",
        ),
        ({"kwargs": {}}, r"must have a 'path'"),
        ({"path": "x.Y", "args": []}, r"must have a 'path' and optional 'kwargs'"),
        ("transformers.__version__", r"cannot be called"),
    ],
)
def test_bad_entries_are_clear(spec, message):
    with pytest.raises(CallbackSpecError, match=message):
        resolve_callback_spec(spec)


def test_bad_recipe_entry_names_its_index(make_trainer):
    with pytest.raises(CallbackSpecError, match=r"recipe callbacks\[1\]: .*nosuchpkg"):
        make_trainer(callbacks=["transformers.PrinterCallback", "nosuchpkg.Thing"])


def test_training_arguments_mirror_the_recipe(tmp_path):
    config = types.SimpleNamespace(
        output_dir=tmp_path,
        micro_batch_size=4,
        gradient_accumulation_steps=2,
        epochs=3,
        max_steps=None,
        logging_steps=5,
        logging_strategy="steps",
        eval_steps=10,
        eval_strategy="steps",
        save_steps=20,
        save_strategy="steps",
        seed=7,
        max_grad_norm=None,
        device="cpu",
        progress=False,
        optimizer=types.SimpleNamespace(lr=3e-4, weight_decay=0.1),
    )
    args = training_arguments_from_config(config)
    assert (args.learning_rate, args.weight_decay) == (3e-4, 0.1)
    assert isinstance(args, transformers.TrainingArguments)
    assert args.output_dir == str(tmp_path)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (4, 2)
    assert (args.num_train_epochs, args.max_steps, args.seed) == (3, -1, 7)
    assert (args.logging_steps, args.eval_steps, args.save_steps) == (5, 10, 20)
    assert args.eval_strategy == "steps" and args.save_strategy == "steps"
    assert args.max_grad_norm == 0.0 and args.disable_tqdm and args.report_to == []
    assert args.metric_for_best_model == "eval_loss" and args.greater_is_better is False


def test_no_eval_means_no_metric_for_best_model():
    args = training_arguments_from_config(types.SimpleNamespace(output_dir="o", eval_steps=None))
    assert args.eval_strategy == "no" and args.metric_for_best_model is None


def test_hf_args_overrides(make_trainer):
    trainer = make_trainer(
        eval_steps=2,
        callbacks=[
            {
                "path": "arctic_like.integrations.hf.HFArgs",
                "kwargs": {"metric_for_best_model": "accuracy", "greater_is_better": True},
            }
        ],
    )
    assert trainer.hf_args.metric_for_best_model == "accuracy" and trainer.hf_args.greater_is_better
    assert trainer.hf_args.eval_steps == 2
    with pytest.raises(ValueError, match=r"cannot build transformers\.TrainingArguments"):
        trainer.add_callback(HFArgs(eval_strategy="sometimes"))
