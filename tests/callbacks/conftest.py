from tests.integrations.conftest import make_trainer, one_torch_thread

__all__ = ["make_trainer", "one_torch_thread"]
