import itertools
import pickle
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from arctic_like.config import SchedulerConfig
from arctic_like.scheduler import (
    ConstantSchedulerFactory,
    CosineSchedulerFactory,
    LinearSchedulerFactory,
    Schedule,
    SchedulerFactory,
    WSDSchedulerConfig,
    WSDSchedulerFactory,
)


def optimizer(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def lrs(factory_cls, config, horizon, lr=1.0):
    opt = optimizer(lr)
    scheduler = factory_cls(SimpleNamespace(optimizer=opt, training_horizon=horizon), config)()
    out = []
    for _ in range(horizon + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return out


def test_constant_with_warmup_steps():
    assert lrs(ConstantSchedulerFactory, SchedulerConfig(warmup_steps=4), 8) == [
        0,
        0.25,
        0.5,
        0.75,
        1,
        1,
        1,
        1,
        1,
    ]


def test_linear_with_warmup_ratio_and_floor():
    values = lrs(LinearSchedulerFactory, SchedulerConfig(warmup_ratio="20%", min_lr_ratio=0.1), 10)
    assert values[:3] == [0, 0.5, 1.0]
    assert values[10] == pytest.approx(0.1)
    assert values[6] == pytest.approx(0.1 + 0.9 * (1 - 4 / 8))


def test_cosine_reaches_half_at_midpoint_and_floor_at_end():
    values = lrs(CosineSchedulerFactory, SchedulerConfig(), 10, lr=2.0)
    assert values[0] == 2.0 and values[5] == pytest.approx(1.0) and values[10] == pytest.approx(0.0)


def test_wsd_phases():
    config = WSDSchedulerConfig(warmup_steps=2, decay_steps=4, min_lr_ratio=0.0)
    values = lrs(WSDSchedulerFactory, config, 10)
    assert values[:2] == [0.0, 0.5]
    assert values[2:7] == [1.0] * 5
    assert values[7:] == pytest.approx([0.75, 0.5, 0.25, 0.0])


def test_wsd_decay_ratio_default_and_shapes():
    config = WSDSchedulerConfig()
    assert config.decay(100, 0) == 10
    assert WSDSchedulerConfig(decay_ratio="30%").decay(100, 0) == 30
    assert WSDSchedulerConfig(decay_steps=90).decay(100, 20) == 80
    sqrt = Schedule("wsd", 100, 0, 0.0, 100, "sqrt")
    assert sqrt(25) == pytest.approx(0.5)
    cosine = Schedule("wsd", 100, 0, 0.0, 100, "cosine")
    assert cosine(50) == pytest.approx(0.5)


def test_config_errors():
    with pytest.raises(ValidationError, match="give either warmup_steps or warmup_ratio, not both"):
        SchedulerConfig(warmup_steps=1, warmup_ratio=0.1)
    with pytest.raises(ValidationError, match="give either decay_steps or decay_ratio, not both"):
        WSDSchedulerConfig(decay_steps=1, decay_ratio=0.1)
    with pytest.raises(ValidationError, match="warmup_ratio"):
        SchedulerConfig(warmup_ratio="150%")


def test_warmup_is_capped_by_horizon():
    assert SchedulerConfig(warmup_steps="1k").warmup(10) == 10
    assert SchedulerConfig(warmup_ratio=0.05).warmup(200) == 10


def test_horizon_and_optimizer_are_required():
    with pytest.raises(ValueError, match=r"the scheduler needs trainer\.training_horizon .* got None"):
        CosineSchedulerFactory(SimpleNamespace(optimizer=optimizer()), SchedulerConfig())()
    with pytest.raises(ValueError, match="got 0"):
        CosineSchedulerFactory(
            SimpleNamespace(optimizer=optimizer(), training_horizon=0), SchedulerConfig()
        )()
    with pytest.raises(ValueError, match=r"the scheduler factory needs trainer\.optimizer"):
        CosineSchedulerFactory(SimpleNamespace(training_horizon=3), SchedulerConfig())()


def test_state_dict_round_trip_resumes_position():
    trainer = SimpleNamespace(optimizer=optimizer(), training_horizon=20)
    scheduler = CosineSchedulerFactory(trainer, SchedulerConfig(warmup_steps=3))()
    for _ in range(7):
        trainer.optimizer.step()
        scheduler.step()
    state = pickle.loads(pickle.dumps(scheduler.state_dict()))
    fresh = SimpleNamespace(optimizer=optimizer(), training_horizon=20)
    resumed = CosineSchedulerFactory(fresh, SchedulerConfig(warmup_steps=3))()
    resumed.load_state_dict(state)
    assert resumed.get_last_lr() == scheduler.get_last_lr()
    trainer.optimizer.step()
    scheduler.step()
    fresh.optimizer.step()
    resumed.step()
    assert resumed.get_last_lr() == scheduler.get_last_lr()


def test_create_scheduler_event():
    seen = []

    class Recording(ConstantSchedulerFactory):
        name = "recording-constant"

        def post_create_scheduler_callback(self, scheduler):
            seen.append(type(scheduler).__name__)
            return scheduler

    Recording(SimpleNamespace(optimizer=optimizer(), training_horizon=5), SchedulerConfig())()
    assert seen == ["LambdaLR"]


def test_base_factory_requires_create_scheduler():
    with pytest.raises(NotImplementedError, match="must implement create_scheduler"):
        SchedulerFactory(SimpleNamespace(optimizer=optimizer(), training_horizon=3), SchedulerConfig())()


schedules = st.builds(
    lambda shape, horizon, warmup_frac, floor, decay_frac, decay_shape: Schedule(
        shape, horizon, int(warmup_frac * horizon), floor, int(decay_frac * horizon), decay_shape
    ),
    st.sampled_from(["constant", "linear", "cosine", "wsd"]),
    st.integers(1, 500),
    st.floats(0, 0.5),
    st.floats(0, 1),
    st.floats(0, 0.5),
    st.sampled_from(["linear", "cosine", "sqrt"]),
)


@settings(deadline=None)
@given(schedules)
def test_property_bounded_and_monotonic_in_each_phase(schedule):
    values = [schedule(step) for step in range(schedule.horizon + 5)]
    assert all(0.0 <= v <= 1.0 + 1e-12 for v in values)
    warmup = schedule.warmup
    assert all(a < b for a, b in itertools.pairwise(values[: warmup + 1]))
    after = values[warmup:]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(after))
    if schedule.shape != "constant":
        assert values[-1] == pytest.approx(schedule.min_lr_ratio) or schedule.horizon == schedule.warmup
    assert min(after) >= schedule.min_lr_ratio - 1e-12 or schedule.shape == "constant"
