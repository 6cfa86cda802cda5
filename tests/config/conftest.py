import pytest

import arctic_like.config.trainer as trainer_module


@pytest.fixture(autouse=True)
def fake_trainer_base(monkeypatch):
    """Resolve `type:` among the stand-in trainers of tests/config/fakes.py."""
    monkeypatch.setattr(trainer_module, "TRAINER_BASE", "tests.config.fakes:FakeTrainer")
