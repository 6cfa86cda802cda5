"""Where the loop's steps happen as in HF's Trainer: the optimizer step, the step end, saving at the end,
the best model, the control in checkpoints."""

import pytest
import transformers

from arctic_like.config import load_recipe
from arctic_like.trainer import SkipStep, StopTraining
from tests.trainer.helpers import build, tiny_recipe


def _grads(model):
    return any(p.grad is not None for p in model.parameters())


def test_post_optimizer_step_comes_before_the_scheduler_zero_grad_and_step_count(tmp_path):
    trainer = build(tmp_path, max_steps=2, scheduler={"type": "linear", "warmup_steps": 1})
    seen = []

    def at(event):
        def look(self):
            lr = self.optimizer.param_groups[0]["lr"]
            seen.append((event, self.state.global_step, _grads(self.model), lr, self.optimizer_stepped))

        return look

    trainer.callbacks.append(("post-optimizer-step", at("post-optimizer-step")))
    trainer.callbacks.append(("post-step", at("post-step")))
    trainer.train()
    assert seen == [
        ("post-optimizer-step", 0, True, 0.0, False),  # gradients, the step's number and lr (warmup)
        ("post-step", 1, False, 1e-3, True),  # then the scheduler stepped, grads zeroed, step counted
        ("post-optimizer-step", 1, True, 1e-3, False),
        ("post-step", 2, False, 0.0, True),
    ]
    assert trainer.state.log_history[0]["learning_rate"] == 0.0  # the lr the first step used


def test_stop_training_from_post_optimizer_step_still_counts_the_step(tmp_path):
    trainer = build(tmp_path, max_steps=4)

    def stop(self):
        if self.state.global_step == 1:
            raise StopTraining

    trainer.callbacks.append(("post-optimizer-step", stop))
    trainer.train()
    assert trainer.state.global_step == 2 and trainer.scheduler.last_epoch == 2
    assert not _grads(trainer.model)


def test_skip_step_from_post_optimizer_step_is_too_late_to_skip(tmp_path):
    trainer = build(tmp_path, max_steps=2)
    trainer.callbacks.append(("post-optimizer-step", lambda self: (_ for _ in ()).throw(SkipStep("late"))))
    trainer.train()
    assert trainer.state.global_step == 2 and trainer.state.skipped_optimizer_steps == 0


class StepEnds(transformers.TrainerCallback):
    def __init__(self):
        self.steps = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def test_a_skipped_last_micro_batch_still_ends_the_hf_step(tmp_path):
    trainer = build(tmp_path, gradient_accumulation_steps=2)  # 4 micro-batches, 2 optimizer steps
    ends = trainer.add_callback(StepEnds())

    def skip_second(self, batch):
        if self.state.micro_step == 2:
            raise SkipStep
        return batch

    trainer.callbacks.append(("pre-step", skip_second))
    trainer.train()
    assert ends.steps == [1, 2] and trainer.state.skipped_micro_batches == 1


def _stop_at_two(self):
    if self.optimizer_stepped and self.state.global_step == 2:
        self.control.should_training_stop = True


@pytest.mark.parametrize(
    ("checkpoint", "saved"),
    [
        ({"type": "torch"}, []),  # HF-style saving (save_steps): no extra save at the end, as in HF
        ({"type": "torch", "save_end_of_training": True}, ["checkpoint-2"]),  # ArcticTraining's, asked for
    ],
)
def test_save_at_the_end_only_when_asked_with_hf_style_saving(
    tmp_path, recording_trainer_type, checkpoint, saved
):
    trainer = build(tmp_path, trainer_type=recording_trainer_type, save_steps=3, checkpoint=[checkpoint])
    trainer.callbacks.append(("post-step", _stop_at_two))
    trainer.train()
    assert sorted(p.name for p in (tmp_path / "out" / "checkpoints").glob("checkpoint-*")) == saved
    tail = ["post-epoch", "pre-log", "post-log", "pre-checkpoint", "post-checkpoint", "post-train"]
    expected = tail if saved else [*tail[:3], tail[-1]]
    assert trainer.trace[-len(expected) :] == expected


def test_arctic_style_checkpointing_still_saves_at_the_end(tmp_path):
    trainer = build(tmp_path, checkpoint=[{"type": "torch", "save_every_n_steps": 3}])
    assert trainer.config.checkpoint[0].save_end_of_training is True
    trainer.callbacks.append(("post-step", _stop_at_two))
    trainer.train()
    assert [p.name for p in (tmp_path / "out" / "checkpoints").glob("checkpoint-*")] == ["checkpoint-2"]


def test_save_steps_without_checkpoint_section_saves_into_output_dir(tmp_path):
    trainer = build(tmp_path, save_steps=2)
    (engine,) = trainer.checkpoint_engines
    assert engine.output_dir == tmp_path / "out" and engine.config.save_end_of_training is False
    trainer.train()
    assert sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]


def test_the_default_engine_follows_the_training_engine(tmp_path):
    trainer = build(tmp_path, save_steps=2)
    trainer.config = trainer.config.model_copy(update={"engine": "deepspeed"})
    (config,) = trainer._checkpoint_configs()
    assert (config.type, config.output_dir, config.save_end_of_training) == (
        "deepspeed",
        tmp_path / "out",
        False,
    )


def test_the_control_travels_with_the_callback_states(tmp_path):
    trainer = build(tmp_path, max_steps=1)
    trainer.control.should_epoch_stop = True
    states = trainer.callback_states()
    assert states["TrainerControl"] == trainer.control.state()
    assert trainer.state.stateful_callbacks == states
    fresh = build(tmp_path, max_steps=1)
    fresh.load_callback_states(states)
    assert fresh.control.should_epoch_stop and not fresh.__dict__.get("_hf_pending_states")


def test_best_model_needs_a_checkpoint_at_each_evaluation(tmp_path):
    base = {"load_best_model_at_end": True, "eval_steps": 2}
    with pytest.raises(ValueError, match=r"save_strategy to match eval_strategy.*'steps'.*'no'"):
        load_recipe(tiny_recipe(tmp_path, **base))
    with pytest.raises(ValueError, match=r"save_steps to be a multiple of eval_steps, but save_steps is 3"):
        load_recipe(tiny_recipe(tmp_path, **base, save_steps=3))
    config = load_recipe(tiny_recipe(tmp_path, **base, save_steps=4))
    assert (config.metric_for_best_model, config.greater_is_better) == ("loss", False)
    config = load_recipe(tiny_recipe(tmp_path, metric_for_best_model="accuracy"))
    assert config.greater_is_better is True and not config.load_best_model_at_end


def test_best_metric_tracked_and_its_checkpoint_reloaded(tmp_path):
    trainer = build(
        tmp_path,
        eval_steps=1,
        save_steps=1,
        load_best_model_at_end=True,
        checkpoint=[{"type": "torch", "save_total_limit": 2}],
    )
    losses = iter([3.0, 1.0, 2.0, 2.5])
    trainer.callbacks.append(("post-evaluate", lambda self, m: {**m, "eval_loss": next(losses)}))
    weights = {}
    trainer.callbacks.append(
        (
            "post-checkpoint",
            lambda self, path: weights.setdefault(self.state.global_step, _copy(self)) and path,
        )
    )
    trainer.train()
    state, root = trainer.state, tmp_path / "out" / "checkpoints"
    assert (state.best_metric, state.best_global_step, state.best_model_checkpoint) == (
        1.0,
        2,
        str(root / "checkpoint-2"),
    )
    # save_total_limit 2 keeps the newest and the best
    assert sorted(p.name for p in root.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    for name, param in trainer.model.state_dict().items():
        assert param.equal(weights[2][name]), name


def _copy(trainer):
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_a_missing_best_metric_names_the_setting(tmp_path):
    trainer = build(tmp_path, eval_steps=1, metric_for_best_model="bleu")
    with pytest.raises(
        ValueError, match=r"metric_for_best_model is 'bleu', but the evaluation gave no 'eval_bleu'"
    ):
        trainer.train()
