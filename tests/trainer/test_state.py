import json

from arctic_like.trainer import TrainerControl, TrainerState


def test_state_defaults_cover_hf_fields():
    import transformers

    ours = set(TrainerState.__dataclass_fields__)
    hf = set(transformers.TrainerState.__dataclass_fields__)
    assert hf <= ours
    state = TrainerState()
    assert state.log_history == [] and state.stateful_callbacks == {}
    assert state.is_world_process_zero and state.is_local_process_zero


def test_state_json_roundtrip(tmp_path):
    state = TrainerState(epoch=1.5, global_step=7, max_steps=10, log_history=[{"loss": 1.0, "step": 5}])
    state.best_metric = 0.25
    path = tmp_path / "trainer_state.json"
    state.save_to_json(path)
    assert json.loads(path.read_text())["global_step"] == 7
    assert TrainerState.load_from_json(path) == state
    assert list(tmp_path.iterdir()) == [path]


def test_state_loads_hf_json_and_ignores_unknown_keys(tmp_path):
    import transformers

    path = tmp_path / "hf.json"
    transformers.TrainerState(global_step=3, epoch=0.5).save_to_json(str(path))
    data = json.loads(path.read_text())
    data["from_the_future"] = 1
    path.write_text(json.dumps(data))
    loaded = TrainerState.load_from_json(path)
    assert loaded.global_step == 3 and loaded.epoch == 0.5


def test_control_resets_match_hf():
    control = TrainerControl(True, True, True, True, True)
    control._new_step()
    assert (control.should_save, control.should_evaluate, control.should_log) == (False, False, False)
    assert control.should_epoch_stop and control.should_training_stop
    control._new_epoch()
    assert not control.should_epoch_stop and control.should_training_stop
    control._new_training()
    assert not control.should_training_stop


def test_control_exportable_state_roundtrip():
    control = TrainerControl(should_save=True)
    again = TrainerControl.from_state(control.state())
    assert again == control
