import pytest

from tests.integrations.recipe import build


@pytest.fixture
def make_trainer(tmp_path):
    """Build the real arctic_like trainer on the tiny recipe; keyword arguments override recipe fields."""

    def make(**overrides):
        return build(tmp_path, **overrides)

    return make
