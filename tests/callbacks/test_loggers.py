"""JsonLogger and TensorBoardLogger."""

import json

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from arctic_like.callbacks import JsonLogger, TensorBoardLogger


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
    tensors = acc.Tags()["tensors"]
    assert "recipe/text_summary" in tensors
    assert any(p.startswith("_hparams_") for p in acc.summary_metadata)
