from tests.integrations.conftest import make_trainer

__all__ = ["make_trainer"]
