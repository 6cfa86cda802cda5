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
    from arctic_like.config import load_recipe
    from tests.integrations.recipe import tiny_recipe

    recipe = tiny_recipe(
        tmp_path,
        gradient_accumulation_steps=2,
        epochs=3,
        logging_steps=5,
        eval_steps=10,
        save_steps=20,
        seed=7,
        max_grad_norm=None,
        precision="bf16",
        optimizer={"type": "adamw", "lr": 3e-4, "weight_decay": 0.1, "betas": [0.8, 0.95], "eps": 1e-6},
        scheduler={"type": "cosine", "warmup_steps": 3},
        load_best_model_at_end=True,
        checkpoint=[{"type": "torch", "save_total_limit": 2}],
    )
    recipe["data"]["num_workers"] = 1
    args = training_arguments_from_config(load_recipe(recipe), horizon=30, device="cpu")
    assert isinstance(args, transformers.TrainingArguments)
    assert args.output_dir == str(tmp_path / "out")
    assert (args.per_device_train_batch_size, args.per_device_eval_batch_size) == (2, 2)
    assert (args.gradient_accumulation_steps, args.num_train_epochs, args.max_steps, args.seed) == (
        2,
        3,
        -1,
        7,
    )
    assert (args.logging_steps, args.eval_steps, args.save_steps) == (5, 10, 20)
    assert args.eval_strategy == "steps" and args.save_strategy == "steps" and args.save_total_limit == 2
    assert (args.learning_rate, args.weight_decay, args.optim) == (3e-4, 0.1, "adamw_torch")
    assert (args.adam_beta1, args.adam_beta2, args.adam_epsilon) == (0.8, 0.95, 1e-6)
    assert (args.lr_scheduler_type, args.warmup_steps) == ("cosine", 3)
    assert args.bf16 and not args.fp16 and args.use_cpu and args.dataloader_num_workers == 1
    assert args.load_best_model_at_end and args.metric_for_best_model == "loss" and not args.greater_is_better
    assert args.max_grad_norm == 0.0 and args.disable_tqdm and args.report_to == []
    assert args.dataloader_drop_last and args.restore_callback_states_from_checkpoint


@pytest.mark.parametrize(
    ("scheduler", "optimizer", "expected"),
    [
        ({"type": "constant"}, {"type": "sgd", "momentum": 0.9}, ("constant", 0, None, "sgd")),
        ({"type": "constant", "warmup_ratio": 0.1}, {}, ("constant_with_warmup", 3, None, "adamw_torch")),
        ({"type": "linear"}, {}, ("linear", 0, None, "adamw_torch")),
        (
            {"type": "cosine", "min_lr_ratio": 0.1},
            {},
            ("cosine_with_min_lr", 0, {"min_lr_rate": 0.1}, "adamw_torch"),
        ),
        (
            {"type": "wsd", "warmup_steps": 2, "decay_steps": 5, "decay_shape": "sqrt"},
            {},
            (
                "warmup_stable_decay",
                2,
                {"num_decay_steps": 5, "decay_type": "1-sqrt", "min_lr_ratio": 0.0},
                "adamw_torch",
            ),
        ),
    ],
)
def test_scheduler_and_optimizer_mapping(tmp_path, scheduler, optimizer, expected):
    from arctic_like.config import load_recipe
    from tests.integrations.recipe import tiny_recipe

    config = load_recipe(tiny_recipe(tmp_path, scheduler=scheduler, optimizer=optimizer))
    args = training_arguments_from_config(config, horizon=30)
    assert (
        args.lr_scheduler_type,
        args.warmup_steps,
        args.lr_scheduler_kwargs or None,
        args.optim,
    ) == expected
    if optimizer.get("type") == "sgd":
        assert args.optim_args == "momentum=0.9,nesterov=False"


def test_hf_defaults_where_the_recipe_is_silent():
    args = training_arguments_from_config(types.SimpleNamespace(output_dir="o", eval_steps=None))
    assert args.eval_strategy == "no" and args.metric_for_best_model is None and args.save_total_limit is None


def test_hf_args_overrides_only_what_the_recipe_does_not_set(make_trainer):
    trainer = make_trainer(
        eval_steps=2,
        callbacks=[{"path": "arctic_like.integrations.hf.HFArgs", "kwargs": {"run_name": "tiny"}}],
    )
    assert trainer.hf_args.run_name == "tiny" and trainer.hf_args.eval_steps == 2
    args = trainer.update_hf_args(hub_model_id="me/tiny")
    assert args.hub_model_id == "me/tiny" and args.run_name == "tiny" and trainer.hf_args is args
    with pytest.raises(
        ValueError, match=r"HFArgs cannot override metric_for_best_model \(recipe: metric_for_best_model\)"
    ):
        trainer.add_callback(HFArgs(metric_for_best_model="accuracy"))
    with pytest.raises(ValueError, match=r"HFArgs cannot set eval_delay: .* Fix: set eval_steps"):
        trainer.update_hf_args(eval_delay=3)
    with pytest.raises(ValueError, match=r"cannot build transformers\.TrainingArguments"):
        trainer.add_callback(HFArgs(hub_strategy="sometimes"))
