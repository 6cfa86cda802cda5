"""Unit tests of the dispatcher: how pre callbacks rewrite arguments and post callbacks results."""

import inspect

from arctic_like.callback import CallbackMixin


def log_batch(self, batch):
    self.seen.append(("log_batch", batch))
    return batch


class Trainer(CallbackMixin):
    callbacks = [("pre-step", log_batch)]

    def __init__(self):
        self.seen = []

    def step(self, batch, scale=1.0):
        return batch * scale

    def post_step_callback(self, result):
        return result + 1


def test_the_issue_example():
    t = Trainer()
    t.callbacks.append(("pre-step", lambda self, scale: scale * 2))
    assert t.step(3) == 7.0
    assert t.seen == [("log_batch", 3)]


def test_pre_callback_sees_arguments_as_bound_positional_keyword_and_default():
    got = []

    class T(CallbackMixin):
        def step(self, a, b=10, *, c=20):
            return (a, b, c)

    t = T()
    t.callbacks.append(("pre-step", lambda self, c, a, b: got.append((a, b, c)) or (c, a, b)))
    assert t.step(1) == (1, 10, 20)
    assert t.step(a=2, b=3) == (2, 3, 20)
    assert t.step(4, c=5) == (4, 10, 5)
    assert got == [(1, 10, 20), (2, 3, 20), (4, 10, 5)]


def test_multi_parameter_callback_returns_tuple_in_its_own_order():
    class T(CallbackMixin):
        def step(self, a, b):
            return a - b

    t = T()
    t.callbacks.append(("pre-step", lambda self, b, a: (a, b)))  # swaps a and b
    assert t.step(10, 1) == -9


def test_positional_only_and_keyword_only_parameters():
    class T(CallbackMixin):
        def step(self, a, /, b, *, c):
            return a + b + c

    t = T()
    t.callbacks.extend([("pre-step", lambda self, a: a * 100), ("pre-step", lambda self, c: c * 10)])
    assert t.step(1, 2, c=3) == 100 + 2 + 30


def test_var_args_methods_callbacks_take_named_parameters_only():
    class T(CallbackMixin):
        def step(self, a, *args, key=0, **kwargs):
            return (a, args, key, kwargs)

    t = T()
    t.callbacks.append(("pre-step", lambda self, a, key: (a + 1, key + 1)))
    assert t.step(1, 2, 3, key=4, extra=5) == (2, (2, 3), 5, {"extra": 5})


def test_keyword_only_callback_parameter_is_passed_by_keyword():
    def scale_it(self, *, scale):
        return scale * 3

    t = Trainer()
    t.callbacks.append(("pre-step", scale_it))
    assert t.step(2) == 7.0


def test_each_pre_callback_sees_the_previous_ones_value():
    t = Trainer()
    t.callbacks.extend(
        [("pre-step", lambda self, batch: batch + 1), ("pre-step", lambda self, batch: batch * 10)]
    )
    assert t.step(1) == (1 + 1) * 10 + 1
    assert t.seen == [("log_batch", 1)]  # log_batch (class-level) runs before the runtime ones


def test_no_parameter_pre_callback_observes():
    calls = []
    t = Trainer()
    t.callbacks.append(("pre-step", lambda self: calls.append("pre")))
    assert t.step(1) == 2.0
    assert calls == ["pre"]


def test_post_callback_choice_is_by_arity_not_by_annotation():
    seen = []

    class T(CallbackMixin):
        def step(self) -> None:
            return None

        def value(self) -> int:
            return 1

    t = T()
    t.callbacks.append(("post-step", lambda self, anything: "replaced"))
    t.callbacks.append(("post-value", lambda self: seen.append("observed")))
    assert t.step() == "replaced"
    assert t.value() == 1
    assert seen == ["observed"]


def test_signature_and_metadata_are_the_originals():
    assert Trainer.step.__name__ == "step"
    assert str(inspect.signature(Trainer.step)) == "(self, batch, scale=1.0)"
    t = Trainer()
    t.callbacks.append(("pre-step", lambda self, batch: batch))
    assert str(inspect.signature(t.step)) == "(batch, scale=1.0)"
    assert t.step.__name__ == "step"


def test_docstring_and_help_survive():
    class T(CallbackMixin):
        callbacks = [("pre-step", lambda self: None)]

        def step(self, x):
            """Run one step."""
            return x

    assert T.step.__doc__ == "Run one step."
    import pydoc

    text = pydoc.render_doc(T, renderer=pydoc.plaintext)
    assert "Run one step." in text and "step(self, x)" in text


def test_methods_without_callbacks_are_the_plain_functions():
    class T(CallbackMixin):
        callbacks = [("pre-other", lambda self: None)]

        def step(self, x):
            return x

        def other(self):
            return 0

    assert T.__dict__.get("step") is None or inspect.isfunction(T.step)
    assert not hasattr(T.step, "__al_raw__")  # zero callbacks: nothing stands between caller and method
    assert hasattr(T.other, "__al_raw__")


def test_call_event_and_runtime_post_call_per_instance():
    class Factory(CallbackMixin):
        def __call__(self, x):
            return x + 1

    a, b = Factory(), Factory()
    a.callbacks.append(("post-call", lambda self, result: result * 100))
    assert a(1) == 200
    assert b(1) == 2


def test_init_event_rewrites_constructor_arguments():
    class Model(CallbackMixin):
        callbacks = [("pre-init", lambda self, size: size * 2)]

        def __init__(self, size):
            self.size = size

        def post_init_callback(self):
            self.ready = True

    m = Model(3)
    assert m.size == 6 and m.ready
