"""It stays an ordinary Python object: pickle, deepcopy, threads, garbage collection."""

import copy
import gc
import pickle
import threading
import weakref

from arctic_like.callback import CallbackMixin


def add_ten(self, x):
    return x + 10


class Model(CallbackMixin):
    callbacks = [("post-forward", lambda self, y: y * 2)]  # a lambda: must not break pickling

    def __init__(self, bias):
        self.bias = bias

    def forward(self, x):
        return x + self.bias


def test_pickle_round_trip_keeps_runtime_callbacks():
    model = Model(1)
    model.callbacks.append(("pre-forward", add_ten))
    clone = pickle.loads(pickle.dumps(model))
    assert clone.forward(0) == (0 + 10 + 1) * 2
    assert [e.fn for e in clone.callbacks][1] is add_ten
    assert Model(1).forward(0) == 2


def test_pickle_without_runtime_changes():
    clone = pickle.loads(pickle.dumps(Model(3)))
    assert clone.forward(1) == 8


def test_deepcopy_is_independent():
    model = Model(1)
    model.callbacks.append(("pre-forward", lambda self, x: x + 100))
    clone = copy.deepcopy(model)
    clone.callbacks.clear()
    assert model.forward(0) == (100 + 1) * 2
    assert clone.forward(0) == 1
    assert copy.copy(model).forward(0) == (100 + 1) * 2


def test_instance_with_runtime_callbacks_is_freed_without_the_garbage_collector():
    gc.disable()
    try:
        model = Model(1)
        model.callbacks.append(("pre-forward", add_ten))
        model.forward(1)
        ref = weakref.ref(model)
        del model
        assert ref() is None
    finally:
        gc.enable()


def test_temporary_instance_with_runtime_callbacks_can_be_called_in_one_expression():
    def build():
        model = Model(1)
        model.callbacks.append(("pre-forward", add_ten))
        return model

    assert build().forward(0) == (10 + 1) * 2
    forward = build().forward
    gc.collect()
    assert forward(0) == 22


def test_runtime_callbacks_on_one_instance_leave_the_others_alone():
    a, b = Model(0), Model(0)
    a.callbacks.append(("pre-forward", add_ten))
    assert (a.forward(1), b.forward(1), Model(0).forward(1)) == (22, 2, 2)


def test_concurrent_calls_while_another_thread_appends():
    model = Model(0)
    errors: list[BaseException] = []
    stop = threading.Event()

    def caller():
        try:
            while not stop.is_set():
                model.forward(1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def counting(self):
        pass

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for thread in threads:
        thread.start()
    appenders = [
        threading.Thread(
            target=lambda: [model.callbacks.append(("pre-forward", counting)) for _ in range(50)]
        )
        for _ in range(2)
    ]
    for thread in appenders:
        thread.start()
    for thread in appenders:
        thread.join()
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(1 for e in model.callbacks if e.fn is counting) == 100
    calls = []
    model.callbacks.append(("pre-forward", lambda self: calls.append(1)))
    model.forward(1)
    assert calls == [1]
