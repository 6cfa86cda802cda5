"""`async def` methods: pre callbacks before the coroutine starts, post callbacks get the awaited result."""

import asyncio

import pytest

from arctic_like.callback import CallbackMixin


class Fetcher(CallbackMixin):
    def __init__(self):
        self.log = []

    async def fetch(self, url, retries=1):
        self.log.append(("fetch", url, retries))
        await asyncio.sleep(0)
        return len(url)


def test_async_method_with_plain_and_coroutine_callbacks():
    async def slow_pre(self, url):
        await asyncio.sleep(0)
        return url + "/x"

    obj = Fetcher()
    obj.callbacks.extend(
        [
            ("pre-fetch", lambda self, retries: retries + 1),
            ("pre-fetch", slow_pre),
            ("post-fetch", lambda self, n: n * 10),
        ]
    )
    assert asyncio.run(obj.fetch("ab")) == 40
    assert obj.log == [("fetch", "ab/x", 2)]


def test_pre_callbacks_run_before_the_coroutine_starts_running():
    obj = Fetcher()
    obj.callbacks.append(("pre-fetch", lambda self: self.log.append("pre")))
    coroutine = obj.fetch("a")
    assert obj.log == []  # nothing runs until awaited, like any coroutine
    asyncio.run(coroutine)
    assert obj.log == ["pre", ("fetch", "a", 1)]


def test_async_error_callback():
    class Failing(CallbackMixin):
        async def go(self):
            raise RuntimeError("no")

    seen = []

    async def on_error(self, exc):
        seen.append(str(exc))

    obj = Failing()
    obj.callbacks.append(("error-go", on_error))
    with pytest.raises(RuntimeError, match="no"):
        asyncio.run(obj.go())
    assert seen == ["no"]
