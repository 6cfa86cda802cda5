import pytest

from tests.integrations.fake_trainer import FakeConfig, FakeTrainer


@pytest.fixture
def make_trainer(tmp_path):
    """Build the stand-in trainer with output in tmp_path; keyword arguments override FakeConfig."""

    def make(**kwargs):
        kwargs.setdefault("output_dir", tmp_path / "out")
        return FakeTrainer(FakeConfig(**kwargs))

    return make
