import pytest

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
