import pytest

from arctic_like.callback import CallbackMixin
from arctic_like.registry import Registrable, RegistryError, get, names, register, unregister


class Base(CallbackMixin, Registrable):
    """A registry base for these tests."""


class OtherBase(Registrable):
    pass


class Alpha(Base):
    name = "alpha"


class Beta(Base):
    name = "beta"


class Abstract(Base):
    """No own name: not registered."""


class OtherAlpha(OtherBase):
    name = "alpha"


def test_subclasses_with_a_name_register_themselves():
    assert get(Base, "alpha") is Alpha
    assert get(Base, "beta") is Beta
    assert names(Base) == ["alpha", "beta"]


def test_names_are_scoped_by_base():
    assert get(OtherBase, "alpha") is OtherAlpha
    assert names(OtherBase) == ["alpha"]


def test_class_without_own_name_is_not_registered():
    class Child(Alpha):
        pass

    assert get(Base, "alpha") is Alpha


def test_later_registration_overrides_for_that_base():
    class Alpha2(Alpha):
        name = "alpha"

    try:
        assert get(Base, "alpha") is Alpha2
        assert get(Alpha, "alpha") is Alpha2
    finally:
        unregister(Alpha2)
    assert get(Base, "alpha") is Alpha


def test_reregistering_same_qualname_replaces():
    def make():
        class Gamma(Base):
            name = "gamma"

        return Gamma

    first, second = make(), make()
    try:
        assert get(Base, "gamma") is second
        unregister(second)
        with pytest.raises(RegistryError):
            get(Base, "gamma")
    finally:
        unregister(first)


def test_register_as_decorator():
    class Manual:
        """Not a Registrable: registered explicitly."""

    @register
    class Plain(Manual):
        name = "plain"

    try:
        assert get(Manual, "plain") is Plain
        assert names(Manual) == ["plain"]
    finally:
        unregister(Plain)


def test_unknown_name_error_names_base_name_available_and_suggestion():
    with pytest.raises(
        RegistryError, match=r"no Base named 'alpah'; available: alpha, beta\. Did you mean 'alpha'\?"
    ):
        get(Base, "alpah")


def test_unknown_name_error_without_close_match_gives_fix():
    with pytest.raises(
        RegistryError, match=r"no Base named 'zzz'; available: alpha, beta\. Fix: .*`code:`"
    ) as e:
        get(Base, "zzz")
    assert "Did you mean" not in str(e.value)


def test_empty_base_says_none_registered():
    class Empty(Registrable):
        pass

    with pytest.raises(RegistryError, match=r"available: \(none registered\)"):
        get(Empty, "x")


def test_register_without_name_is_an_error():
    class NoName:
        pass

    with pytest.raises(RegistryError, match=r"has no `name` class attribute"):
        register(NoName)
    with pytest.raises(RegistryError, match=r"expects a class"):
        register("nope")


def test_registry_error_is_value_error():
    assert issubclass(RegistryError, ValueError)
