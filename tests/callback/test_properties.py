"""Properties: chains of pre callbacks compose like function composition, whatever their origin."""

from hypothesis import given
from hypothesis import strategies as st

from arctic_like.callback import CallbackMixin

OPS = {
    "add": lambda k: lambda x: x + k,
    "mul": lambda k: lambda x: x * k,
    "sub": lambda k: lambda x: x - k,
}

op_strategy = st.tuples(st.sampled_from(sorted(OPS)), st.integers(-5, 5))


def as_callback(fn):
    return lambda self, x: fn(x)


@given(st.lists(op_strategy, max_size=8), st.lists(op_strategy, max_size=8), st.integers(-100, 100))
def test_pre_chain_is_function_composition(declared, runtime, x):
    functions = [OPS[name](k) for name, k in declared + runtime]
    T = type(
        "T",
        (CallbackMixin,),
        {
            "callbacks": [("pre-step", as_callback(f)) for f in functions[: len(declared)]],
            "step": lambda self, x: x,
        },
    )
    obj = T()
    obj.callbacks.extend(("pre-step", as_callback(f)) for f in functions[len(declared) :])
    expected = x
    for fn in functions:
        expected = fn(expected)
    assert obj.step(x) == expected


@given(st.lists(op_strategy, max_size=8), st.integers(-100, 100))
def test_post_chain_composes_on_the_return_value(ops, x):
    functions = [OPS[name](k) for name, k in ops]
    T = type("T", (CallbackMixin,), {"step": lambda self, x: x * 3})
    obj = T()
    obj.callbacks.extend(("post-step", as_callback(f)) for f in functions)
    expected = x * 3
    for fn in functions:
        expected = fn(expected)
    assert obj.step(x) == expected
