"""Per-instance chains: `obj.callbacks` is the instance's own, and list operations work on it."""

import pytest

from arctic_like.callback import CallbackError, CallbackMixin


def double(self, x):
    return x * 2


def plus_one(self, x):
    return x + 1


class T(CallbackMixin):
    callbacks = [("pre-step", double)]

    def step(self, x):
        return x


def test_instance_list_is_inherited_plus_declared_and_class_attr_untouched():
    declared = T.callbacks
    a, b = T(), T()
    a.callbacks.append(("pre-step", plus_one))
    assert list(a.callbacks) == [("pre-step", double), ("pre-step", plus_one)]
    assert list(b.callbacks) == [("pre-step", double)]
    assert T.callbacks is declared and T.callbacks == [("pre-step", double)]
    assert a.step(1) == 3 and b.step(1) == 2
    assert T().step(1) == 2


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        (lambda cbs: cbs.insert(0, ("pre-step", plus_one)), (1 + 1) * 2),
        (lambda cbs: cbs.extend([("pre-step", plus_one), ("pre-step", plus_one)]), 1 * 2 + 2),
        (lambda cbs: cbs.remove(("pre-step", double)), 1),
        (lambda cbs: cbs.__delitem__(0), 1),
        (lambda cbs: cbs.clear(), 1),
        (lambda cbs: cbs.pop(), 1),
        (lambda cbs: cbs.__setitem__(0, ("pre-step", plus_one)), 2),
        (lambda cbs: cbs.__iadd__([("pre-step", plus_one)]), 3),
        (lambda cbs: cbs.__setitem__(slice(None), [("pre-step", plus_one)]), 2),
    ],
    ids=["insert", "extend", "remove", "del", "clear", "pop", "setitem", "iadd", "slice"],
)
def test_list_operations_change_behaviour_from_the_next_call(operation, expected):
    t = T()
    operation(t.callbacks)
    assert t.step(1) == expected
    assert T().step(1) == 2


def test_remove_accepts_either_event_spelling():
    class F(CallbackMixin):
        def create_dataloader(self):
            return 1

    f = F()
    f.callbacks.append(("pre-create_dataloader", lambda self: None))
    fn = f.callbacks[0].fn
    f.callbacks.remove(("pre-create-dataloader", fn))
    assert list(f.callbacks) == []


def test_assigning_and_deleting_the_list():
    t = T()
    t.callbacks = [("pre-step", plus_one)]
    assert t.step(1) == 2
    del t.callbacks
    assert t.step(1) == 2 and list(t.callbacks) == [("pre-step", double)]


def test_rejected_runtime_callback_leaves_the_list_unchanged():
    t = T()
    with pytest.raises(CallbackError, match="unknown event"):
        t.callbacks.append(("pre-stpe", plus_one))
    assert list(t.callbacks) == [("pre-step", double)]
    assert t.step(1) == 2


def test_entries_know_where_they_were_declared():
    class U(T):
        def post_step_callback(self, r):
            return r

    u = U()
    u.callbacks.append(("post-step", lambda self, r: r))
    assert [e.origin for e in u.callbacks] == ["T.callbacks", "U.post_step_callback", "runtime"]
