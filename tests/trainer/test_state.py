import json

import transformers

from arctic_like.trainer import TrainerControl, TrainerState
from arctic_like.trainer.state import EXTRAS_KEY


def test_state_and_control_are_hf_classes():
    assert TrainerControl is transformers.TrainerControl
    state = TrainerState()
    assert isinstance(state, transformers.TrainerState)
    assert state.log_history == [] and state.stateful_callbacks == {}
    assert state.is_world_process_zero and state.is_local_process_zero
    assert TrainerState.extra_fields() == (
        "micro_step",
        "skipped_micro_batches",
        "skipped_optimizer_steps",
        "nonfinite_losses",
    )


def test_state_json_roundtrip_is_readable_by_hf(tmp_path):
    state = TrainerState(epoch=1.5, global_step=7, max_steps=10, log_history=[{"loss": 1.0, "step": 5}])
    state.best_metric, state.micro_step, state.nonfinite_losses = 0.25, 14, 1
    state.stateful_callbacks = {"TrainerControl": TrainerControl(should_save=True).state()}
    path = tmp_path / "trainer_state.json"
    state.save_to_json(path)
    assert list(tmp_path.iterdir()) == [path]  # written atomically: no temporary file left
    data = json.loads(path.read_text())
    assert data["global_step"] == 7 and "micro_step" not in data
    assert data["stateful_callbacks"][EXTRAS_KEY]["attributes"]["micro_step"] == 14
    assert TrainerState.load_from_json(path) == state
    hf = transformers.TrainerState.load_from_json(str(path))  # HF's own loader takes it as it is
    assert (hf.global_step, hf.epoch, hf.best_metric, hf.log_history) == (7, 1.5, 0.25, state.log_history)
    assert hf.stateful_callbacks["TrainerControl"]["args"]["should_save"] is True


def test_state_loads_hf_json_and_ignores_unknown_keys(tmp_path):
    path = tmp_path / "hf.json"
    transformers.TrainerState(global_step=3, epoch=0.5).save_to_json(str(path))
    data = json.loads(path.read_text())
    data["from_the_future"] = 1
    path.write_text(json.dumps(data))
    loaded = TrainerState.load_from_json(path)
    assert loaded.global_step == 3 and loaded.epoch == 0.5 and loaded.micro_step == 0


def test_flat_dict_roundtrip():
    state = TrainerState(global_step=2, micro_step=4)
    assert TrainerState.from_dict(state.to_dict()) == state
