import pytest
import torch

from arctic_like.trainer import CausalTrainer
from tests.trainer.helpers import EVENTS


def _recorder(event: str):
    def record(self) -> None:
        self.__dict__.setdefault("trace", []).append(event)

    record.__name__ = f"record_{event.replace('-', '_')}"
    return record


class RecordingTrainer(CausalTrainer):
    """A causal trainer that records every pre/post event of the trainer in ``self.trace``."""

    name = "recording"
    callbacks = [(f"{w}-{event}", _recorder(f"{w}-{event}")) for event in EVENTS for w in ("pre", "post")]


@pytest.fixture
def recording_trainer_type() -> str:
    return RecordingTrainer.name


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
