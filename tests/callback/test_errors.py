"""Every CallbackError message: at class creation, at runtime append, and at call time."""

import pytest

from arctic_like.callback import CallbackError, CallbackMixin


class Base(CallbackMixin):
    def create_dataloader(self, dataset, shuffle=True):
        return dataset

    def step(self, a, b):
        return a + b


def define(event, fn):
    return type("Broken", (Base,), {"callbacks": [(event, fn)]})


def needs_dataset(self, datset):
    return datset


@pytest.mark.parametrize(
    ("event", "fn", "message"),
    [
        (
            "pre-create-datalaoder",
            lambda self: None,
            r"Broken: callback .*<lambda> on event 'pre-create-datalaoder' names an unknown event.*"
            r"did you mean 'pre-create-dataloader'",
        ),
        ("before-step", lambda self: None, r"without a valid prefix.*start the event with 'pre-'"),
        ("pre_step", lambda self: None, r"without a valid prefix.*write 'pre-step'"),
        (
            "pre-create-dataloader",
            needs_dataset,
            r"Broken: callback .*needs_dataset on event 'pre-create-dataloader' takes 'datset', which is not "
            r"a parameter of Broken.create_dataloader\(self, dataset, shuffle=True\)"
            r".*may take any of: dataset, shuffle",
        ),
        ("pre-step", lambda self, *args: None, r"takes \*args / \*\*args.*name the parameters"),
        ("pre-step", lambda self, **kw: None, r"takes \*kw / \*\*kw"),
        ("pre-step", lambda self, a=1: a, r"gives parameter 'a' a default value"),
        (
            "post-step",
            lambda self, r, extra: r,
            r"takes 3 parameters.*\(self, value\) to receive the return value",
        ),
        ("error-step", lambda self, e, extra: e, r"takes 3 parameters.*to receive the exception"),
        ("post-step", lambda: None, r"does not take the instance as its first parameter"),
    ],
    ids=[
        "unknown-event",
        "bad-prefix",
        "underscore-prefix",
        "unknown-parameter",
        "var-args",
        "var-kwargs",
        "default",
        "post-arity",
        "error-arity",
        "no-self",
    ],
)
def test_bad_callbacks_are_rejected_at_class_creation(event, fn, message):
    with pytest.raises(CallbackError, match=message):
        define(event, fn)


@pytest.mark.parametrize(
    "entry",
    [("pre-step",), ("pre-step", "not callable"), (3, lambda self: None), "pre-step"],
)
def test_entries_that_are_not_event_callable_pairs(entry):
    with pytest.raises(CallbackError, match=r"is not an \(event, callable\) pair"):
        type("Broken", (Base,), {"callbacks": [entry]})


def test_callbacks_attribute_must_be_a_list():
    with pytest.raises(
        CallbackError, match=r"Broken: `callbacks` must be a list of \(event, callable\) pairs"
    ):
        type("Broken", (Base,), {"callbacks": "pre-step"})


def test_bad_callback_method_is_rejected_at_class_creation():
    with pytest.raises(
        CallbackError, match=r"post_stpe_callback on event 'post-stpe' names an unknown event"
    ):

        class Broken(Base):
            def post_stpe_callback(self):
                pass


def test_runtime_append_is_validated_at_append():
    obj = Base()
    with pytest.raises(CallbackError, match=r"Base: callback .* takes 'c', which is not a parameter"):
        obj.callbacks.append(("pre-step", lambda self, c: c))


def test_async_callback_on_sync_method_is_rejected():
    async def hook(self):
        pass

    with pytest.raises(
        CallbackError, match=r"is a coroutine function but Base.step\(self, a, b\) is not async"
    ):
        Base().callbacks.append(("pre-step", hook))


def test_two_methods_for_one_event_are_rejected():
    from arctic_like.callback import callback_wrapper

    with pytest.raises(
        CallbackError, match=r"methods 'step' and 'other' are both the source of event 'step'"
    ):

        class Twice(CallbackMixin):
            def step(self):
                pass

            @callback_wrapper("step")
            def other(self):
                pass


def make(fn, event="pre-step"):
    obj = Base()
    obj.callbacks.append((event, fn))
    return obj


def test_wrong_number_of_values_at_call_time():
    obj = make(lambda self, a, b: (a,))
    with pytest.raises(
        CallbackError, match=r"takes 2 parameters \(a, b\) and must return a tuple of 2 values"
    ):
        obj.step(1, 2)


def test_list_of_right_length_is_accepted_for_several_values():
    assert make(lambda self, a, b: [b, a]).step(1, 2) == 3


def test_value_from_a_no_parameter_callback():
    with pytest.raises(CallbackError, match=r"takes no method parameter but returned a int"):
        make(lambda self: 5).step(1, 2)


def test_value_from_an_observer():
    with pytest.raises(CallbackError, match=r"on event 'post-step' observes the call but returned a int"):
        make(lambda self: 5, "post-step").step(1, 2)


def test_forgotten_return_in_pre_callback():
    def forgets(self, a):
        a += 1

    with pytest.raises(
        CallbackError, match=r"forgets on event 'pre-step' returned None for 'a'.*forget `return`"
    ):
        make(forgets).step(1, 2)


def test_forgotten_return_in_post_callback():
    with pytest.raises(CallbackError, match=r"returned None for 'the return value'"):
        make(lambda self, r: None, "post-step").step(1, 2)


def test_none_may_pass_through_when_it_was_none():
    class N(CallbackMixin):
        def step(self, a=None):
            return None

    obj = N()
    obj.callbacks.extend([("pre-step", lambda self, a: a), ("post-step", lambda self, r: r)])
    assert obj.step() is None
