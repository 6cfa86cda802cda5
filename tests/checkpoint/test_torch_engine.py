import json
import os

import pytest
import torch

from arctic_like.checkpoint import CheckpointError
from arctic_like.checkpoint.manifest import FORMAT_VERSION


def params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_save_load_roundtrip_continues_exactly(make_engine):
    engine, trainer = make_engine()
    torch.manual_seed(3)
    trainer.train_steps(3)
    path = engine.save()
    assert path.name == "checkpoint-3" and (path / "manifest.json").is_file()
    expected = trainer.train_steps(2)

    engine2, fresh = make_engine(seed=99)
    assert engine2.latest() == path
    engine2.load(path)
    assert fresh.state.global_step == 3 and fresh.batches_in_epoch == 3
    assert fresh.cb_state == {"patience": 3}
    assert fresh.scheduler.last_epoch == 3
    assert fresh.train_steps(2) == expected


def test_manifest_and_files(make_engine):
    engine, trainer = make_engine()
    trainer.train_steps(1)
    path = engine.save()
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["complete"] is True
    assert manifest["engine"] == "torch" and manifest["step"] == 1
    assert manifest["model_class"].endswith("LlamaForCausalLM")
    for name in [
        "model.safetensors",
        "optimizer.pt",
        "scheduler.pt",
        "rng_state_rank0.pt",
        "trainer_state.json",
        "data_state.json",
        "callback_states.pt",
        "recipe.yaml",
        "tokenizer/tokenizer.json",
    ]:
        assert name in manifest["files"], name
    assert (path.parent / "latest").read_text().strip() == "checkpoint-1"


def test_rng_restored(make_engine):
    engine, trainer = make_engine()
    trainer.train_steps(1)
    path = engine.save()
    expected = (torch.rand(3), __import__("random").random(), __import__("numpy").random.rand())
    engine.load(path)
    got = (torch.rand(3), __import__("random").random(), __import__("numpy").random.rand())
    assert torch.equal(expected[0], got[0]) and expected[1:] == got[1:]


def test_save_total_limit_keeps_newest(make_engine):
    engine, trainer = make_engine(save_total_limit=2)
    for _ in range(4):
        trainer.train_steps(1)
        engine.save()
    assert [p.name for p in engine.checkpoints()] == ["checkpoint-3", "checkpoint-4"]
    assert not [p for p in engine.output_dir.iterdir() if p.name.startswith(".tmp")]


def test_save_total_limit_never_deletes_just_written(make_engine):
    engine, trainer = make_engine(save_total_limit=1)
    trainer.train_steps(5)
    engine.save()
    trainer.state.global_step = 2  # e.g. a re-run writing an older step number
    engine.save()
    assert [p.name for p in engine.checkpoints()] == ["checkpoint-2"]


def test_resave_same_step_replaces(make_engine):
    engine, trainer = make_engine()
    trainer.train_steps(1)
    engine.save()
    engine.save()
    assert [p.name for p in engine.checkpoints()] == ["checkpoint-1"]


def test_crash_mid_write_keeps_previous(make_engine, monkeypatch):
    engine, trainer = make_engine()
    trainer.train_steps(1)
    good = engine.save()
    trainer.train_steps(1)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        engine.save()
    monkeypatch.undo()
    assert engine.latest() == good
    assert not [p for p in engine.output_dir.iterdir() if p.name.startswith(".tmp")]
    engine.load(good)


def test_partial_dirs_ignored_and_cleaned(make_engine):
    engine, trainer = make_engine(auto_resume=True)
    trainer.train_steps(1)
    good = engine.save()
    (engine.output_dir / ".tmp-checkpoint-7-abc").mkdir()
    (engine.output_dir / ".tmp-checkpoint-7-abc" / "model.safetensors").write_bytes(b"xx")
    partial = engine.output_dir / "checkpoint-9"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    assert engine.latest() == good
    engine2, _ = make_engine(auto_resume=True)
    assert engine2.resume() == good
    assert (engine.output_dir / ".tmp-checkpoint-7-abc").exists()  # resuming writes nothing (--dry-run)
    engine2.save()
    assert not (engine.output_dir / ".tmp-checkpoint-7-abc").exists()  # the next save cleans up
    with pytest.raises(CheckpointError, match=r"checkpoint-9 is incomplete or corrupted: it has no manifest"):
        engine2.load(partial)
    with pytest.raises(CheckpointError, match="temporary directory of an interrupted save"):
        engine2.load(engine.output_dir / ".tmp-checkpoint-1-x")


def test_corrupted_file_detected(make_engine):
    engine, trainer = make_engine()
    trainer.train_steps(1)
    path = engine.save()
    with open(path / "model.safetensors", "r+b") as f:
        f.seek(200)
        f.write(b"garbage!")
    with pytest.raises(
        CheckpointError, match=r"is corrupted: file model.safetensors does not match its checksum"
    ):
        engine.load(path)


def test_corrupted_manifest(make_engine):
    engine, trainer = make_engine()
    trainer.train_steps(1)
    path = engine.save()
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"manifest.json is not valid JSON.*Fix:"):
        engine.load(path)
    assert engine.latest() is None


def test_missing_file(make_engine):
    engine, trainer = make_engine()
    trainer.train_steps(1)
    path = engine.save()
    os.remove(path / "optimizer.pt")
    with pytest.raises(CheckpointError, match=r"file optimizer\.pt listed in manifest\.json is missing"):
        engine.load(path)


def test_other_model_shape(make_engine):
    engine, trainer = make_engine()
    trainer.train_steps(1)
    path = engine.save()
    other, _ = make_engine(hidden=64)
    with pytest.raises(
        CheckpointError,
        match=r"from another model shape .*embed_tokens.weight: saved \[16, 32\], "
        r"current \[16, 64\].*Fix: use the model settings",
    ):
        other.load(path)


def test_incompatible_version(make_engine):
    engine, trainer = make_engine()
    trainer.train_steps(1)
    path = engine.save()
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=r"incompatible format version 99.*reads format version 1"):
        engine.load(path)


def test_missing_path(make_engine, tmp_path):
    engine, _ = make_engine(resume_from=tmp_path / "nope")
    with pytest.raises(CheckpointError, match=r"nope does not exist or is not a directory"):
        engine.resume()


def test_resume_without_checkpoint_starts_fresh(make_engine):
    engine, _ = make_engine(auto_resume=True)
    assert engine.resume() is None
    engine, _ = make_engine()
    assert engine.resume() is None


def test_should_save(make_engine):
    engine, trainer = make_engine(save_every_n_steps=2, save_every_n_epochs=1, save_end_of_training=False)
    assert not engine.should_save()
    trainer.train_steps(1)
    assert not engine.should_save()
    assert not engine.should_save(end_of_training=True)
    trainer.control.should_save = True
    assert engine.should_save()
    trainer.control.should_save = False
    trainer.train_steps(1)
    assert engine.should_save()
    engine.save()
    assert not engine.should_save()
    trainer.train_steps(1)
    trainer.state.epoch = 1.0
    assert engine.should_save(end_of_epoch=True)


def test_default_output_dir(make_engine, tmp_path):
    engine, _ = make_engine()
    assert engine.output_dir == tmp_path / "out" / "checkpoints"
    engine, _ = make_engine(output_dir=tmp_path / "elsewhere")
    assert engine.output_dir == tmp_path / "elsewhere"


def test_save_load_events_fire(make_engine):
    engine, trainer = make_engine()
    seen = []
    engine.callbacks.append(("post-save", lambda self, path: seen.append(path) or path))
    engine.callbacks.append(("pre-load", lambda self, path: seen.append(("load", path)) or path))
    trainer.train_steps(1)
    path = engine.save()
    engine.load(path)
    assert seen == [path, ("load", path)]


def test_torch_engine_refuses_deepspeed_runs(make_engine, tmp_path):
    engine, trainer = make_engine()

    class FakeDeepSpeed:
        def save_checkpoint(self, *args):
            raise AssertionError("not called")

    trainer.engine = type("Engine", (), {"wrapped": FakeDeepSpeed(), "unwrap": lambda self: trainer.model})()
    with pytest.raises(CheckpointError, match=r"cannot save a DeepSpeed run.*Fix: use `type: deepspeed`"):
        type(engine)(trainer, engine.config)
