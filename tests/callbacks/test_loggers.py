"""JsonLogger and TensorBoardLogger."""

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from arctic_like.callbacks import JsonLogger, TensorBoardLogger
from arctic_like.callbacks.loggers import flatten


def test_json_logger_writes_one_object_per_event(make_trainer, tmp_path):
    trainer = make_trainer(max_steps=4, eval_steps=2, save_steps=4, logging_steps=2)
    trainer.add_callback(JsonLogger())
    trainer.train()
    lines = [json.loads(line) for line in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    assert lines[0]["event"] == "run" and "recipe" in lines[0] and lines[0]["run"]["max_steps"] == 4
    events = [line["event"] for line in lines]
    assert events[1] == "train_begin" and events[-1] == "train_end"
    assert events.count("evaluate") == 2 and events.count("save") == 1 and "epoch_end" in events
    log = next(line for line in lines if line["event"] == "log")
    assert set(log) >= {"timestamp", "global_step", "epoch", "metrics"}
    assert log["global_step"] == 2 and log["metrics"]["loss"] > 0
    throughput = {"tokens_per_second", "samples_per_second", "step_time", "peak_memory_gib"}
    assert throughput <= set(log["metrics"]) and log["metrics"]["tokens_per_second"] > 0
    assert "learning_rate" in log["metrics"] and "grad_norm" in log["metrics"]
    # each evaluation once, as an `evaluate` line with its speed; never again as a `log` line
    evaluations = [line for line in lines if line["event"] == "evaluate"]
    assert [e["global_step"] for e in evaluations] == [2, 4]
    assert {"eval_loss", "eval_accuracy", "eval_tokens_per_second", "eval_samples_per_second"} <= set(
        evaluations[0]["metrics"]
    )
    logged = [line["metrics"] for line in lines if line["event"] == "log"]
    assert not any(key.startswith("eval_") for metrics in logged for key in metrics)


def test_json_logger_explicit_path_and_write(make_trainer, tmp_path):
    path = tmp_path / "custom" / "events.jsonl"
    trainer = make_trainer(max_steps=1)
    cb = trainer.add_callback(JsonLogger(path))
    trainer.train()
    cb.write("note", {"x": float("nan")}, extra="yes")
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["event"] == "note" and last["metrics"] == {"x": "nan"} and last["extra"] == "yes"


def test_tensorboard_logger_scalars_recipe_and_hparams(make_trainer, tmp_path):
    trainer = make_trainer(max_steps=4, eval_steps=2, logging_steps=1)
    trainer.add_callback(TensorBoardLogger())
    trainer.train()
    acc = EventAccumulator(str(tmp_path / "out" / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.step for e in acc.Scalars("eval/loss")] == [2, 4]
    for tag in ("tokens_per_second", "samples_per_second", "step_time", "peak_memory_gib", "learning_rate"):
        assert [e.step for e in acc.Scalars(f"train/{tag}")] == [1, 2, 3, 4]
        assert all(e.value > 0 for e in acc.Scalars(f"train/{tag}"))
    assert [e.step for e in acc.Scalars("eval/tokens_per_second")] == [2, 4]
    tensors = acc.Tags()["tensors"]
    assert "recipe/text_summary" in tensors
    start = HParamsPluginData.FromString(
        acc.summary_metadata["_hparams_/session_start_info"].plugin_data.content
    ).session_start_info.hparams
    assert start["optimizer.lr"].number_value == pytest.approx(1e-3)
    assert start["model.config.hidden_size"].number_value == 32
    assert start["data.sources.0.type"].string_value == "addition"
    assert start["micro_batch_size"].number_value == 2


def test_flatten_nested_recipe():
    assert flatten({"optimizer": {"lr": 0.1, "betas": [0.9, 0.99]}, "seed": 1, "code": []}) == {
        "optimizer.lr": 0.1,
        "optimizer.betas.0": 0.9,
        "optimizer.betas.1": 0.99,
        "seed": 1,
    }
