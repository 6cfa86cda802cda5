"""Exceptions in callbacks keep their type and gain a note; error- callbacks run when a method raises."""

import pytest

from arctic_like.callback import CallbackMixin


class Loader(CallbackMixin):
    def __init__(self):
        self.log = []

    def load(self, path):
        if path == "missing":
            raise FileNotFoundError(path)
        return path


def test_callback_exception_keeps_type_and_names_event_callback_and_class():
    def explode(self, path):
        raise KeyError("boom")

    obj = Loader()
    obj.callbacks.append(("pre-load", explode))
    with pytest.raises(KeyError) as info:
        obj.load("x")
    notes = "\n".join(info.value.__notes__)
    assert "explode on event 'pre-load'" in notes and "of Loader" in notes


def test_post_exception_is_annotated():
    obj = Loader()
    obj.callbacks.append(("post-load", lambda self, r: 1 / 0))
    with pytest.raises(ZeroDivisionError) as info:
        obj.load("x")
    assert "event 'post-load'" in info.value.__notes__[0]


def test_method_exception_runs_error_callbacks_not_post_and_propagates():
    obj = Loader()
    obj.callbacks.extend(
        [
            ("post-load", lambda self, r: self.log.append("post") or r),
            ("error-load", lambda self, exc: self.log.append(("error", type(exc).__name__))),
            ("error-load", lambda self: self.log.append("observer")),
        ]
    )
    with pytest.raises(FileNotFoundError):
        obj.load("missing")
    assert obj.log == [("error", "FileNotFoundError"), "observer"]
    assert obj.load("ok") == "ok" and obj.log[-1] == "post"


def test_error_callback_declared_on_class_sees_the_exception():
    class Careful(Loader):
        def error_load_callback(self, exc):
            self.log.append(str(exc))

    obj = Careful()
    with pytest.raises(FileNotFoundError):
        obj.load("missing")
    assert obj.log == ["missing"]


def test_failing_error_callback_raises_its_own_error_chained_to_the_original():
    obj = Loader()
    obj.callbacks.append(("error-load", lambda self, exc: [][1]))
    with pytest.raises(IndexError) as info:
        obj.load("missing")
    assert isinstance(info.value.__context__, FileNotFoundError)
    assert "event 'error-load'" in info.value.__notes__[0]
