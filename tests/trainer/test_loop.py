"""The training loop: accumulation, control flags, flow exceptions, early exits, non-finite losses."""

import math

import pytest
import torch

from arctic_like.trainer import NonFiniteLossError, SkipStep, StopEpoch, StopTraining
from tests.trainer.helpers import build, losses


def test_gradient_accumulation_matches_manual_sgd(tmp_path):
    # SGD, constant lr, no clipping: after one optimizer step over a window of 2 micro-batches the weights
    # must equal w - lr * mean(grad of micro-batch 1, grad of micro-batch 2).
    trainer = build(
        tmp_path,
        gradient_accumulation_steps=2,
        max_steps=1,
        max_grad_norm=None,
        optimizer={"type": "sgd", "lr": 0.5, "weight_decay": 0.0},
        scheduler={"type": "constant"},
    )
    model = trainer.model
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer.train_dataloader.sampler.set_epoch(0)
    batches = [b for _, b in zip(range(2), trainer.train_dataloader, strict=False)]
    reference = type(model)(model.config)
    reference.load_state_dict(start)
    for batch in batches:
        (reference(**batch).loss / 2).backward()
    expected = {n: p.detach() - 0.5 * p.grad for n, p in reference.named_parameters()}
    trainer.train()
    assert trainer.state.global_step == 1 and trainer.state.micro_step == 2
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=1e-5, atol=1e-6)


def test_logged_loss_is_mean_over_window_and_horizon_counts_optimizer_steps(tmp_path):
    trainer = build(tmp_path, gradient_accumulation_steps=2, epochs=3, logging_steps=2)
    micro = []
    trainer.callbacks.append(("post-loss", lambda self, loss: micro.append(float(loss.detach())) or loss))
    trainer.train()
    assert trainer.steps_per_epoch == 2 and trainer.training_horizon == 6
    assert trainer.state.global_step == 6 and trainer.state.max_steps == 6
    logged = losses(trainer)
    assert len(logged) == 3
    for i, value in enumerate(logged):
        assert value == pytest.approx(sum(micro[4 * i : 4 * i + 4]) / 4, rel=1e-6)
    assert trainer.scheduler.last_epoch == 6  # one scheduler step per optimizer step
    steps = [e["step"] for e in trainer.state.log_history if "loss" in e]
    assert steps == [2, 4, 6]


def test_max_steps_overrides_epochs_and_sets_epoch_fraction(tmp_path):
    trainer = build(tmp_path, max_steps=5, epochs=1)
    assert trainer.num_epochs == 2 and trainer.training_horizon == 5
    trainer.train()
    assert trainer.state.global_step == 5
    assert trainer.state.epoch == pytest.approx(1.25)
    assert trainer.state.num_input_tokens_seen > 0 and trainer.state.total_flos > 0


def test_control_flags_set_by_callbacks_are_honoured(tmp_path):
    trainer = build(
        tmp_path, epochs=3, logging_steps=100, checkpoint=[{"type": "torch", "save_end_of_training": False}]
    )
    seen = []

    def steer(self):
        step = self.state.global_step
        if step == 1:
            self.control.should_log = True
            self.control.should_evaluate = True
        if step == 2:
            self.control.should_save = True
            self.control.should_epoch_stop = True
        if step == 4:
            self.control.should_training_stop = True

    trainer.callbacks.append(("post-step", steer))  # after the step: global_step counts it
    trainer.callbacks.append(("post-epoch", lambda self: seen.append(self.state.global_step)))
    trainer.train()
    assert trainer.state.global_step == 4
    assert seen == [2, 4]  # epoch 1 cut after step 2; training stopped at step 4 (in epoch 2)
    history = trainer.state.log_history
    assert [e["step"] for e in history if "loss" in e] == [1]
    assert [e["step"] for e in history if "eval_loss" in e] == [1]
    assert [p.name for p in (tmp_path / "out" / "checkpoints").glob("checkpoint-*")] == ["checkpoint-2"]
    assert not trainer.control.should_log and not trainer.control.should_save


def test_control_resets_at_hf_points(tmp_path):
    trainer = build(tmp_path, epochs=2, gradient_accumulation_steps=2, logging_steps=100)
    seen = {}

    def on(event, flag):
        def look(self):
            seen.setdefault(event, getattr(self.control, flag))

        trainer.callbacks.append((f"pre-{event}", look))

    on("train", "should_training_stop")
    on("epoch", "should_epoch_stop")
    on("step", "should_log")
    trainer.control.should_training_stop = True
    trainer.control.should_epoch_stop = True
    trainer.control.should_log = True
    trainer.train()
    assert seen == {"train": False, "epoch": False, "step": False}
    assert trainer.state.global_step == 4
    assert trainer.control.should_training_stop  # set by the flow at max steps, kept after train()


def test_skip_step_drops_micro_batches(tmp_path):
    trainer = build(tmp_path, gradient_accumulation_steps=2, epochs=1)

    def skip_first(self, batch):
        if self.state.micro_step == 1:
            raise SkipStep("not this one")
        return batch

    trainer.callbacks.append(("pre-step", skip_first))
    trainer.train()
    assert trainer.state.skipped_micro_batches == 1
    assert trainer.state.global_step == 2  # the window still stepped with its other micro-batch


def test_skip_step_in_pre_optimizer_step_discards_the_window(tmp_path):
    trainer = build(tmp_path, gradient_accumulation_steps=2, epochs=1)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    def veto(self):
        raise SkipStep("no update")

    trainer.callbacks.append(("pre-optimizer-step", veto))
    trainer.train()
    assert trainer.state.global_step == 0 and trainer.state.skipped_optimizer_steps == 2
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, before[k])


def test_stop_epoch_and_stop_training(tmp_path):
    trainer = build(tmp_path, epochs=3)
    ends = []

    def stop(self):
        if self.state.global_step in (1, 5):
            raise StopEpoch
        if self.state.global_step == 6:
            raise StopTraining

    trainer.callbacks.append(("post-step", stop))
    trainer.callbacks.append(("post-epoch", lambda self: ends.append(self.state.global_step)))
    post_train = []
    trainer.callbacks.append(("post-train", lambda self: post_train.append(True)))
    trainer.train()
    # epoch 1 stops after step 1, epoch 2 runs 4 steps (2..5) and is stopped at 5, epoch 3 stops training at 6
    assert ends == [1, 5]
    assert trainer.state.global_step == 6 and post_train == [True]


def test_exit_iteration_and_kill_switch(tmp_path):
    trainer = build(tmp_path, epochs=3, exit_iteration=3)
    trainer.train()
    assert trainer.state.global_step == 3

    kill = tmp_path / "STOP"
    trainer = build(tmp_path, epochs=3, kill_switch_path=str(kill), checkpoint=[{"type": "torch"}])
    trainer.callbacks.append(
        ("post-step", lambda self: kill.touch() if self.state.global_step == 2 else None)
    )
    trainer.train()
    assert trainer.state.global_step == 3
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-3").is_dir()


def _poison(self, loss):
    return loss * float("nan") if self.state.micro_step == 2 else loss


def test_nonfinite_loss_stop_names_the_step(tmp_path):
    trainer = build(tmp_path, epochs=1)
    trainer.callbacks.append(("post-loss", _poison))
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss \(nan\) at optimizer step 2 .*nonfinite_loss: skip"
    ):
        trainer.train()


def test_nonfinite_loss_skip_counts(tmp_path):
    trainer = build(tmp_path, epochs=1, nonfinite_loss="skip")
    trainer.callbacks.append(("post-loss", _poison))
    trainer.train()
    assert trainer.state.nonfinite_losses == 1 and trainer.state.skipped_micro_batches == 1
    assert trainer.state.skipped_optimizer_steps == 1 and trainer.state.global_step == 3
    assert all(math.isfinite(v) for v in losses(trainer))


def test_model_modes_and_eval_metrics(tmp_path):
    trainer = build(tmp_path, eval_steps=4)
    modes = []
    trainer.callbacks.append(
        ("pre-step", lambda self, batch: modes.append(("step", self.model.training)) or batch)
    )
    trainer.callbacks.append(
        ("pre-prediction-step", lambda self: modes.append(("eval", self.model.training)))
    )
    metrics = {}
    trainer.callbacks.append(("post-evaluate", lambda self, m: metrics.update(m) or m))
    trainer.train()
    assert set(modes) == {("step", True), ("eval", False)}
    assert set(metrics) >= {"eval_loss", "eval_accuracy"} and 0.0 <= metrics["eval_accuracy"] <= 1.0
    assert trainer.model.training


def test_incomplete_last_window_steps_with_its_mean_gradient(tmp_path):
    # 4 micro-batches per epoch, accumulation 3: windows of 3 and of 1 micro-batch, 2 optimizer steps (as HF).
    trainer = build(
        tmp_path,
        gradient_accumulation_steps=3,
        max_grad_norm=None,
        optimizer={"type": "sgd", "lr": 0.5, "weight_decay": 0.0},
        scheduler={"type": "constant"},
    )
    model = trainer.model
    reference = type(model)(model.config)
    reference.load_state_dict(model.state_dict())
    trainer.train_dataloader.sampler.set_epoch(0)
    batches = list(trainer.train_dataloader)
    for window in (batches[:3], batches[3:]):
        reference.zero_grad()
        for batch in window:
            (reference(**batch).loss / len(window)).backward()
        with torch.no_grad():
            for param in reference.parameters():
                param -= 0.5 * param.grad
    trainer.train()
    assert trainer.steps_per_epoch == 2 and trainer.training_horizon == 2
    assert trainer.state.global_step == 2 and trainer.state.micro_step == 4 and trainer.state.epoch == 1.0
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.detach(), dict(reference.named_parameters())[name].detach())


def test_sft_trainer_masks_prompt(tmp_path):
    trainer = build(tmp_path, trainer_type="sft", data={"type": "sft"}, max_steps=1)
    batch = next(iter(trainer.train_dataloader))
    labels, ids = batch["labels"], batch["input_ids"]
    eq = trainer.tokenizer.convert_tokens_to_ids("=")
    for row_ids, row_labels in zip(ids.tolist(), labels.tolist(), strict=True):
        cut = row_ids.index(eq)
        assert all(label == -100 for label in row_labels[: cut + 1])
    trainer.train()
    assert trainer.state.global_step == 1
