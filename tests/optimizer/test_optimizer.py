from types import SimpleNamespace

import pytest
import torch
from pydantic import ValidationError

from arctic_like.optimizer import (
    AdamWConfig,
    AdamWOptimizerFactory,
    OptimizerFactory,
    SGDConfig,
    SGDOptimizerFactory,
    weight_decay_groups,
)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.linear = torch.nn.Linear(4, 4)
        self.norm = torch.nn.LayerNorm(4)
        self.frozen = torch.nn.Linear(4, 4, bias=False)
        self.frozen.weight.requires_grad_(False)


class RMSNorm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(2, 2))


def names(model, params):
    ids = {id(p) for p in params}
    return sorted(n for n, p in model.named_parameters() if id(p) in ids)


def test_weight_decay_groups_exclude_bias_and_norm_weights():
    model = Tiny()
    decay, no_decay = weight_decay_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert names(model, decay["params"]) == ["embed.weight", "linear.weight"]
    assert names(model, no_decay["params"]) == ["linear.bias", "norm.bias", "norm.weight"]


def test_norm_modules_are_recognised_by_class_name_even_for_2d_params():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False), RMSNorm())
    groups = weight_decay_groups(model, 0.5)
    assert [names(model, g["params"]) for g in groups] == [["0.weight"], ["1.scale"]]


def test_empty_groups_are_dropped():
    assert len(weight_decay_groups(torch.nn.Linear(2, 2, bias=False), 0.1)) == 1


def test_adamw():
    model = Tiny()
    optimizer = AdamWOptimizerFactory(
        SimpleNamespace(model=model), AdamWConfig(lr="3e-4", betas=(0.8, 0.9))
    )()
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["lr"] == pytest.approx(3e-4) and optimizer.defaults["betas"] == (0.8, 0.9)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]
    loss = model.linear(model.embed(torch.tensor([1]))).sum()
    loss.backward()
    before = model.linear.weight.detach().clone()
    optimizer.step()
    assert not torch.equal(before, model.linear.weight)


def test_sgd():
    model = Tiny()
    config = SGDConfig(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    optimizer = SGDOptimizerFactory(SimpleNamespace(model=model), config)()
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["nesterov"] is True
    with pytest.raises(ValidationError, match="nesterov needs momentum > 0"):
        SGDConfig(nesterov=True)


def test_config_validation():
    with pytest.raises(ValidationError, match="lr"):
        AdamWConfig(lr=0)
    with pytest.raises(ValidationError, match="weight_decay"):
        AdamWConfig(weight_decay=-1)


def test_model_is_required():
    with pytest.raises(ValueError, match=r"the optimizer factory needs trainer\.model"):
        AdamWOptimizerFactory(SimpleNamespace(), AdamWConfig())()


def test_create_optimizer_event_can_wrap_the_result():
    class Recording(AdamWOptimizerFactory):
        name = "recording-adamw"

        def pre_create_optimizer_callback(self, model):
            for p in model.embed.parameters():
                p.requires_grad_(False)
            return model

    model = Tiny()
    optimizer = Recording(SimpleNamespace(model=model), AdamWConfig())()
    params = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert id(model.embed.weight) not in params


def test_base_factory_requires_create_optimizer():
    with pytest.raises(NotImplementedError, match="must implement create_optimizer"):
        OptimizerFactory(SimpleNamespace(model=Tiny()), AdamWConfig())()
