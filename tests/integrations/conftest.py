import pytest
import torch

from tests.integrations.recipe import build


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest single-threaded; intra-op threads only contend on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def make_trainer(tmp_path):
    """Build the real arctic_like trainer on the tiny recipe; keyword arguments override recipe fields."""

    def make(**overrides):
        return build(tmp_path, **overrides)

    return make
