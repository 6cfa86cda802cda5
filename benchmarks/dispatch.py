"""Dispatch cost of CallbackMixin methods against plain Python, measured side by side in one run.

Run: python benchmarks/dispatch.py [--quick]
Prints ns per call for a plain method, CallbackMixin methods with 0/1/5/20 callbacks (declared
on the class and appended at runtime), the floor (a plain method that calls k plain functions
from a list), instance creation and a super() call, with the ratios the targets are set on.
"""

from __future__ import annotations

import argparse
import platform
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arctic_like import CallbackMixin


def identity(self, x):
    return x


class Plain:
    def __init__(self, value=1):
        self.value = value

    def step(self, x):
        return x + 1


class PlainChild(Plain):
    def step(self, x):
        return super().step(x)


def floor_class(k: int) -> type:
    functions = [identity] * k

    class Floor:
        def step(self, x):
            for fn in functions:
                x = fn(self, x)
            return x + 1

    return Floor


def mixin_class(k: int, other_events: bool = False) -> type:
    """A CallbackMixin class shaped like `Plain`, with k pre-step callbacks declared on it."""
    declared = [("pre-step", _fresh_identity()) for _ in range(k)]
    if other_events:
        declared = [("pre-other", _fresh_identity()), ("post-other", lambda self, r: r)]

    class Mixin(CallbackMixin):
        callbacks = declared

        def __init__(self, value=1):
            self.value = value

        def step(self, x):
            return x + 1

        def other(self, x):
            return x

    return Mixin


def _fresh_identity():
    def pre_step(self, x):
        return x

    return pre_step


class MixinParent(CallbackMixin):
    callbacks = [("pre-step", identity)]

    def step(self, x):
        return x + 1


class MixinChild(MixinParent):
    def step(self, x):
        return super().step(x)


def ns_per_call(stmt, number: int, repeat: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (for smoke tests)")
    args = parser.parse_args()
    number, repeat = (20_000, 3) if args.quick else (400_000, 7)

    plain = Plain()
    rows: list[tuple[str, float, str]] = []
    base = ns_per_call(lambda: plain.step(1), number, repeat)
    rows.append(("plain method", base, "1.00x plain"))
    for label, cls in (("0 callbacks", mixin_class(0)), ("0 on event, 2 on another", mixin_class(0, True))):
        obj = cls()
        t = ns_per_call(lambda obj=obj: obj.step(1), number, repeat)
        rows.append((f"mixin, {label}", t, f"{t / base:.2f}x plain"))
    for k in (1, 5, 20):
        floor_obj = floor_class(k)()
        floor = ns_per_call(lambda o=floor_obj: o.step(1), number, repeat)
        rows.append((f"floor, k={k}", floor, "1.00x floor"))
        declared = mixin_class(k)()
        t = ns_per_call(lambda o=declared: o.step(1), number, repeat)
        rows.append((f"mixin, {k} declared", t, f"{t / floor:.2f}x floor"))
        runtime = mixin_class(0)()
        runtime.callbacks.extend(("pre-step", _fresh_identity()) for _ in range(k))
        t = ns_per_call(lambda o=runtime: o.step(1), number, repeat)
        rows.append((f"mixin, {k} at runtime", t, f"{t / floor:.2f}x floor"))

    plain_new = ns_per_call(lambda: Plain(2), number, repeat)
    rows.append(("new instance, plain class", plain_new, "1.00x plain new"))
    for label, mixin_cls in (("no callbacks", mixin_class(0)), ("1 callback", mixin_class(1))):
        t = ns_per_call(lambda cls=mixin_cls: cls(2), number, repeat)
        rows.append((f"new instance, mixin, {label}", t, f"{t / plain_new:.2f}x plain new"))

    child = PlainChild()
    plain_super = ns_per_call(lambda: child.step(1), number, repeat)
    rows.append(("super() call, plain", plain_super, "1.00x plain super"))
    mixin_child = MixinChild()
    t = ns_per_call(lambda: mixin_child.step(1), number, repeat)
    rows.append(("super() call, mixin (1 cb)", t, f"{t / plain_super:.2f}x plain super"))

    print(
        f"python {platform.python_version()} on {platform.machine()}, {number} calls x {repeat} repeats (min)"
    )
    print(f"{'case':32} {'ns/call':>9}  ratio")
    for label, t, ratio in rows:
        print(f"{label:32} {t:9.1f}  {ratio}")


if __name__ == "__main__":
    main()
