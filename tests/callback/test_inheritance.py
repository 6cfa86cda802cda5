"""Order, chaining down the class hierarchy, super() calls, dropping and run_first/run_last."""

import pytest

from arctic_like.callback import CallbackError, CallbackMixin, run_first, run_last

TRACE: list[str] = []


def rec(name):
    def callback(self):
        TRACE.append(name)

    callback.__qualname__ = name
    return callback


class A(CallbackMixin):
    callbacks = [("post-epoch", rec("A.list"))]

    def epoch(self):
        TRACE.append("epoch")

    def post_epoch_callback(self):
        TRACE.append("A.method")


class B(A):
    callbacks = [("post-epoch", rec("B.list"))]

    def post_epoch_callback(self):
        TRACE.append("B.method")


class C(B):
    callbacks = [("post-epoch", rec("C.list"))]

    def post_epoch_callback(self):
        TRACE.append("C.method")


@pytest.fixture(autouse=True)
def clear_trace():
    TRACE.clear()


def test_golden_order_down_the_hierarchy_then_runtime():
    c = C()
    c.callbacks.append(("post-epoch", rec("runtime")))
    c.epoch()
    assert TRACE == ["epoch", "A.list", "A.method", "B.list", "B.method", "C.list", "C.method", "runtime"]


def test_arctic_training_doc_example_runs_parent_method_then_child_list_then_child_method():
    class TrainerA(CallbackMixin):
        def epoch(self):
            pass

        def post_epoch_callback(self):
            TRACE.append("Trainer A post epoch callback")

    class TrainerB(TrainerA):
        callbacks = [("post-epoch", lambda self: TRACE.append("Trainer B post epoch callback 1"))]

        def post_epoch_callback(self):
            TRACE.append("Trainer B post epoch callback 2")

    TrainerB().epoch()
    assert TRACE == [
        "Trainer A post epoch callback",
        "Trainer B post epoch callback 1",
        "Trainer B post epoch callback 2",
    ]


@pytest.mark.parametrize("first", ["parent", "child"])
def test_chain_does_not_depend_on_which_class_was_instantiated_first(first):
    class P(CallbackMixin):
        def epoch(self):
            pass

        def post_epoch_callback(self):
            TRACE.append("P")

    class Q(P):
        def post_epoch_callback(self):
            TRACE.append("Q")

    objs = [P(), Q()] if first == "parent" else [Q(), P()]
    for obj in objs:
        obj.epoch()
    expected = [["P"], ["P", "Q"]] if first == "parent" else [["P", "Q"], ["P"]]
    assert [name for names in expected for name in names] == TRACE


def test_override_keeps_callbacks_and_super_call_fires_once():
    class Base(CallbackMixin):
        callbacks = [("pre-step", lambda self, x: TRACE.append("pre") or x)]

        def step(self, x):
            TRACE.append("Base.step")
            return x

    class Child(Base):
        def step(self, x):
            TRACE.append("Child.step")
            return super().step(x) + 1

    assert Child().step(1) == 2
    assert TRACE == ["pre", "Child.step", "Base.step"]


def test_super_init_does_not_refire_init_chain():
    class Base(CallbackMixin):
        def __init__(self):
            TRACE.append("Base.__init__")

        def post_init_callback(self):
            TRACE.append("post-init")

    class Child(Base):
        def __init__(self):
            TRACE.append("Child.__init__")
            super().__init__()

    Child()
    assert TRACE == ["Child.__init__", "Base.__init__", "post-init"]


def test_super_call_with_runtime_callbacks_fires_once():
    class Base(CallbackMixin):
        def step(self, x):
            return x

    class Child(Base):
        def step(self, x):
            return super().step(x) * 2

    child = Child()
    child.callbacks.append(("post-step", lambda self, r: TRACE.append("post") or r))
    assert child.step(3) == 6
    assert TRACE == ["post"]


def test_recursive_self_call_is_a_new_call_and_fires_again():
    class Counter(CallbackMixin):
        callbacks = [("pre-countdown", lambda self, n: TRACE.append(f"pre {n}") or n)]

        def countdown(self, n):
            return 0 if n == 0 else self.countdown(n - 1)

    Counter().countdown(2)
    assert TRACE == ["pre 2", "pre 1", "pre 0"]


def test_drop_callbacks_removes_an_inherited_callback():
    class NoParentMethod(B):
        drop_callbacks = [("post-epoch", A.post_epoch_callback), ("post-epoch", "B.list")]

    NoParentMethod().epoch()
    assert TRACE == ["epoch", "A.list", "B.method"]


def test_drop_callbacks_naming_nothing_is_an_error():
    with pytest.raises(
        CallbackError, match=r"drop_callbacks names .*'post-step'.* no inherited callback matches"
    ):

        class Bad(A):
            drop_callbacks = [("post-step", rec("nothing"))]


def test_run_first_and_run_last_win_over_declaration_order():
    @run_last
    def last(self):
        TRACE.append("last")

    @run_first
    def first(self):
        TRACE.append("first")

    class Ordered(C):
        callbacks = [("post-epoch", last), ("post-epoch", first)]

    obj = Ordered()
    obj.callbacks.append(("post-epoch", rec("runtime")))
    obj.epoch()
    assert TRACE[1] == "first" and TRACE[-1] == "last"
    assert TRACE[-2] == "runtime"
    assert obj.callbacks[0].fn is first and obj.callbacks[-1].fn is last


def test_parent_list_repeated_in_child_list_runs_once():
    class Child(A):
        callbacks = [*A.callbacks, ("post-epoch", rec("child"))]

    Child().epoch()
    assert TRACE == ["epoch", "A.list", "A.method", "child"]


def test_plain_mixin_classes_contribute_callback_methods():
    class LoggingMixin:
        def post_epoch_callback(self):
            TRACE.append("mixin")

    class WithMixin(LoggingMixin, A):
        pass

    WithMixin().epoch()
    assert TRACE == ["epoch", "A.list", "A.method", "mixin"]
