"""Long chains (compiled in chunks) behave exactly like short ones, and a change recompiles only what changed;
a pre callback that turns its one parameter into a tuple is named when the method then fails."""

from __future__ import annotations

import asyncio
import time

import pytest

from arctic_like.callback import CallbackError, CallbackMixin, codegen


class Host(CallbackMixin):
    def step(self, x, scale=1):
        return x * scale

    async def fetch(self, x):
        await asyncio.sleep(0)
        return x


def adder(i: int, seen: list):
    def pre_step(self, x):
        seen.append(("pre", i))
        return x + 1

    return pre_step


def post(i: int, seen: list):
    def post_step(self, result):
        seen.append(("post", i))
        return result * 2 if i == 0 else result

    return post_step


def observer(i: int, seen: list):
    def error_step(self, exc):
        seen.append(("error", i))

    return error_step


N = 3 * codegen.CHUNK_SIZE + 5


def test_a_long_chain_runs_every_callback_in_order():
    seen: list = []
    host = Host()
    host.callbacks.extend([("pre-step", adder(i, seen)) for i in range(N)])
    host.callbacks.extend([("post-step", post(i, seen)) for i in range(N)])
    assert host.step(0, scale=3) == N * 3 * 2
    assert seen == [("pre", i) for i in range(N)] + [("post", i) for i in range(N)]


def test_a_long_chain_of_error_callbacks_sees_the_exception_once_each():
    seen: list = []
    host = Host()
    host.callbacks.extend([("error-step", observer(i, seen)) for i in range(N)])
    with pytest.raises(TypeError):
        host.step("x", scale=None)
    assert seen == [("error", i) for i in range(N)]


def test_a_long_chain_on_an_async_method():
    seen: list = []
    host = Host()

    def pre_fetch(i):
        async def cb(self, x):
            seen.append(i)
            return x + 1

        return cb

    host.callbacks.extend([("pre-fetch", pre_fetch(i)) for i in range(N)])
    assert asyncio.run(host.fetch(0)) == N and seen == list(range(N))


def test_appending_to_a_long_chain_recompiles_only_the_last_chunk():
    host = Host()
    host.callbacks.extend([("pre-step", adder(i, [])) for i in range(N)])
    before = getattr(host.__dict__[codegen.chain_key("step")], codegen.CHUNKS_ATTR)
    host.callbacks.append(("pre-step", adder(N, [])))
    after = getattr(host.__dict__[codegen.chain_key("step")], codegen.CHUNKS_ATTR)
    kept = {id(fn) for _, fn in before.values()} & {id(fn) for _, fn in after.values()}
    assert len(after) == N // codegen.CHUNK_SIZE + 1
    assert len(kept) == len(after) - 1  # every full chunk is reused, the last one is new
    assert host.step(0) == N + 1


def test_changing_a_long_chain_is_cheap(capsys):
    """Appending to a chain of 1,000 (issue 13 measured 310 ms). Printed, not asserted: timings vary."""

    def one_append(size: int) -> float:
        host = Host()
        host.callbacks.extend([("pre-step", adder(i, [])) for i in range(size)])
        start = time.perf_counter()
        host.callbacks.append(("pre-step", adder(size, [])))
        return time.perf_counter() - start

    chunked = min(one_append(1000) for _ in range(3))
    size = codegen.CHUNK_SIZE
    try:
        codegen.CHUNK_SIZE = 10**9  # every change compiles the whole chain, as before
        whole = one_append(1000)
    finally:
        codegen.CHUNK_SIZE = size
    with capsys.disabled():
        print(
            f"\nappend to a chain of 1000: {chunked * 1e3:.1f} ms in chunks, "
            f"{whole * 1e3:.1f} ms compiled whole"
        )


# ---- a pre callback returning a tuple for its one parameter ------------------------------------------------


class Loader(CallbackMixin):
    def step(self, batch):
        return batch["input_ids"]

    def pair(self, pair):
        return pair[0]


def trailing_comma(self, batch):
    return (batch,)


def test_a_tuple_returned_for_a_dict_is_named_when_the_method_fails():
    loader = Loader()
    loader.callbacks.append(("pre-step", trailing_comma))
    message = (
        r"Loader: callback .*trailing_comma on event 'pre-step' takes one parameter \('batch', a dict\) and "
        r"must return its new value, but a tuple of 1 .* came back, and the method then failed "
        r"\(TypeError: tuple indices must be integers or slices, not str\)\. Fix: `return batch`"
    )
    with pytest.raises(CallbackError, match=message) as caught:
        loader.step({"input_ids": [1]})
    assert isinstance(caught.value.__cause__, TypeError)


def test_a_tuple_for_a_tuple_parameter_is_fine_and_other_errors_pass_through():
    loader = Loader()
    loader.callbacks.append(("pre-pair", lambda self, pair: (pair[1], pair[0])))
    assert loader.pair((1, 2)) == 2
    loader.callbacks.append(("pre-step", lambda self, batch: batch))
    with pytest.raises(KeyError):  # not a tuple: the method's own error is untouched
        loader.step({})
