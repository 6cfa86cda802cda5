"""Unit tests of event naming: which methods are event sources and how names are spelled."""

import abc

import pytest

from arctic_like.callback import CallbackMixin
from arctic_like.callback.events import callback_method_event, method_event, parse_event


@pytest.mark.parametrize(
    ("method", "event"),
    [("create_model", "create-model"), ("__init__", "init"), ("__call__", "call"), ("step", "step")],
)
def test_method_event_names(method, event):
    assert method_event(method) == event


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("pre-create_dataloader", ("pre", "create-dataloader")),
        ("post-create-dataloader", ("post", "create-dataloader")),
        ("error-step", ("error", "step")),
        ("before-step", None),
        ("pre-", None),
        ("pre", None),
    ],
)
def test_parse_event(text, parsed):
    assert parse_event(text) == parsed


def test_callback_method_names():
    assert callback_method_event("pre_create_model_callback") == "pre-create-model"
    assert callback_method_event("post_init_callback") == "post-init"
    assert callback_method_event("error_step_callback") == "error-step"
    assert callback_method_event("pre_step") is None


class Sources(CallbackMixin):
    def __init__(self):
        self.x = 1

    def __call__(self):
        return 1

    def public(self):
        return 1

    def create_model(self):
        return 1

    def _private(self):
        return 1

    @property
    def prop(self):
        return 1

    @classmethod
    def klass(cls):
        return 1

    @staticmethod
    def static():
        return 1

    def pre_public_callback(self):
        pass


def test_only_public_methods_init_and_call_are_events():
    assert set(Sources._al_plan.methods) == {"init", "call", "public", "create-model"}


def test_inherited_methods_are_events_of_the_subclass():
    class Child(Sources):
        def extra(self):
            return 2

    assert {"public", "create-model", "extra"} <= set(Child._al_plan.methods)
    seen = []
    child = Child()
    child.callbacks.append(("post-public", lambda self: seen.append("post-public")))
    child.public()
    assert seen == ["post-public"]


def test_callback_meta_is_an_abcmeta():
    class Base(abc.ABC, CallbackMixin):
        @abc.abstractmethod
        def step(self): ...

    with pytest.raises(TypeError, match="abstract"):
        Base()

    class Impl(Base):
        def step(self):
            return "done"

    assert Impl().step() == "done"


def test_init_is_an_event_even_without_an_own_init():
    seen = []

    class NoInit(CallbackMixin):
        callbacks = [("post-init", lambda self: seen.append("post-init"))]

    NoInit()
    assert seen == ["post-init"]
    with pytest.raises(TypeError):
        NoInit(1)  # like object(): no unexpected arguments


def test_cooperative_init_with_other_bases():
    class Base:
        def __init__(self, size):
            self.size = size

    class Both(CallbackMixin, Base):
        callbacks = [("pre-init", lambda self: None)]

    assert Both(3).size == 3
