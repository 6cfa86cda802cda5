"""Built-in synthetic tasks: problems generated from a seed, with held-out evaluation problems.

Each task yields ``(prompt, answer)`` pairs (``"12+7="``, ``"19"``), read as ``prompt``/``response`` rows
by the ``addition`` and ``reverse`` sources. The problems of a task are distinct, and the first
``eval_samples`` of them are held out, so the evaluation problems never appear in training. Accuracy is
exact match of the greedy continuation.
"""

from __future__ import annotations

import functools
import random
from typing import ClassVar

import datasets
from pydantic import Field, model_validator

from arctic_like.config.base import HumanInt
from arctic_like.config.parts import DataSourceConfig
from arctic_like.data.source import DataSource

__all__ = [
    "AdditionSource",
    "AdditionSourceConfig",
    "AdditionTask",
    "ReverseSource",
    "ReverseSourceConfig",
    "ReverseTask",
    "SyntheticSource",
    "SyntheticSourceConfig",
    "SyntheticTask",
    "make_task",
]


class SyntheticSourceConfig(DataSourceConfig):
    """Common fields of the built-in synthetic tasks; training and held-out eval problems are disjoint."""

    num_samples: HumanInt = Field(default=2000, ge=1)
    eval_samples: HumanInt = Field(default=200, ge=0)


class AdditionSourceConfig(SyntheticSourceConfig):
    """``12+7=19``: sums of two random numbers of up to ``digits`` digits."""

    digits: int = Field(default=2, ge=1, le=9)


class ReverseSourceConfig(SyntheticSourceConfig):
    """``abc>cba``: reverse a random string of ``min_length``..``max_length`` letters from ``alphabet``."""

    min_length: int = Field(default=3, ge=1)
    max_length: int = Field(default=6, ge=1)
    alphabet: str = Field(default="abcdefgh", min_length=2)

    @model_validator(mode="after")
    def _lengths(self) -> ReverseSourceConfig:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) is larger than max_length ({self.max_length})")
        return self


class SyntheticTask:
    """Base of the synthetic tasks: distinct problems from ``seed``, split into train and held-out eval."""

    name: ClassVar[str]

    def __init__(self, config: AdditionSourceConfig | ReverseSourceConfig, seed: int) -> None:
        self.config = config
        self.seed = config.seed if config.seed is not None else seed
        self._problems: list[tuple[str, str]] | None = None

    def capacity(self) -> int:
        """How many distinct problems the task can produce."""
        raise NotImplementedError

    def sample(self, rng: random.Random) -> tuple[str, str]:
        """One random ``(prompt, answer)``."""
        raise NotImplementedError

    def problems(self) -> list[tuple[str, str]]:
        """``eval_samples + num_samples`` distinct problems, the same for the same seed and settings."""
        if self._problems is None:
            wanted = self.config.num_samples + self.config.eval_samples
            if wanted > self.capacity():
                raise ValueError(
                    f"the {self.name!r} task asks for {wanted} distinct problems "
                    f"(num_samples + eval_samples) but its settings allow only {self.capacity()}. "
                    f"Fix: lower num_samples/eval_samples or make "
                    f"the problems larger."
                )
            rng = random.Random(f"{self.name}-{self.seed}")
            seen: dict[str, str] = {}
            while len(seen) < wanted:
                prompt, answer = self.sample(rng)
                seen.setdefault(prompt, answer)
            self._problems = list(seen.items())
        return self._problems

    def eval_problems(self) -> list[tuple[str, str]]:
        return self.problems()[: self.config.eval_samples]

    def train_problems(self) -> list[tuple[str, str]]:
        return self.problems()[self.config.eval_samples :]


class AdditionTask(SyntheticTask):
    """``a+b=c`` with ``a`` and ``b`` of up to ``digits`` digits."""

    name = "addition"
    config: AdditionSourceConfig

    def capacity(self) -> int:
        return (10**self.config.digits) ** 2

    def sample(self, rng: random.Random) -> tuple[str, str]:
        top = 10**self.config.digits - 1
        a, b = rng.randint(0, top), rng.randint(0, top)
        return f"{a}+{b}=", str(a + b)


class ReverseTask(SyntheticTask):
    """``abc>cba``: reverse a random string."""

    name = "reverse"
    config: ReverseSourceConfig

    def capacity(self) -> int:
        k = len(set(self.config.alphabet))
        return sum(k**n for n in range(self.config.min_length, self.config.max_length + 1))

    def sample(self, rng: random.Random) -> tuple[str, str]:
        alphabet = sorted(set(self.config.alphabet))
        length = rng.randint(self.config.min_length, self.config.max_length)
        word = "".join(rng.choice(alphabet) for _ in range(length))
        return f"{word}>", word[::-1]


_TASKS: dict[str, type[SyntheticTask]] = {"addition": AdditionTask, "reverse": ReverseTask}


def make_task(config: AdditionSourceConfig | ReverseSourceConfig, seed: int) -> SyntheticTask:
    """The task object for a synthetic source config."""
    return _TASKS[config.type](config, seed)


class SyntheticSource(DataSource):
    """A synthetic task's problems as ``prompt``/``response`` rows: ``train`` gives the training problems,
    ``eval`` the held-out ones, which ``compute_metrics`` also scores by greedy generation."""

    config = SyntheticSourceConfig

    def describe(self) -> str:
        return f"the {self.config.type!r} task"

    @functools.cached_property
    def task(self) -> SyntheticTask:
        """The task generating this source's problems."""
        return make_task(self.config, self.data_factory.seed)

    def load(self, config: SyntheticSourceConfig, split: str) -> datasets.Dataset:
        problems = self.task.train_problems() if split == "train" else self.task.eval_problems()
        return datasets.Dataset.from_dict(
            {"prompt": [p for p, _ in problems], "response": [a for _, a in problems]}
        )

    def held_out(self) -> bool:
        return self.config.eval_samples > 0

    def exact_match_problems(self) -> list[tuple[str, str]]:
        return self.task.eval_problems()


class AdditionSource(SyntheticSource):
    name = "addition"
    config = AdditionSourceConfig


class ReverseSource(SyntheticSource):
    name = "reverse"
    config = ReverseSourceConfig
