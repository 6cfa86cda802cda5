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


def measure(cases: dict[str, tuple[str, dict]], number: int, repeat: int) -> dict[str, float]:
    """ns per call of each case: rounds interleave all cases, and each keeps its best round.

    Interleaving means a burst of load from elsewhere hits every case alike instead of one row.
    """
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeat):
        for label, stmt in cases.items():
            code, namespace = stmt
            best[label] = min(
                best[label], timeit.timeit(code, globals=namespace, number=number) / number * 1e9
            )
    return best


def build_cases() -> tuple[dict[str, tuple[str, dict]], list[tuple[str, str]]]:
    """The cases to time, and for each printed row the case it is compared with."""
    plain = Plain()
    cases: dict[str, tuple[str, dict]] = {"plain method": ("o.step(1)", {"o": plain})}
    rows = [("plain method", "plain method")]
    for label, cls in (("0 callbacks", mixin_class(0)), ("0 on event, 2 on another", mixin_class(0, True))):
        obj = cls()
        cases[f"mixin, {label}"] = ("o.step(1)", {"o": obj})
        rows.append((f"mixin, {label}", "plain method"))
    for k in (1, 5, 20):
        floor_obj = floor_class(k)()
        cases[f"floor, k={k}"] = ("o.step(1)", {"o": floor_obj})
        rows.append((f"floor, k={k}", f"floor, k={k}"))
        declared = mixin_class(k)()
        cases[f"mixin, {k} declared"] = ("o.step(1)", {"o": declared})
        rows.append((f"mixin, {k} declared", f"floor, k={k}"))
        runtime = mixin_class(0)()
        runtime.callbacks.extend(("pre-step", _fresh_identity()) for _ in range(k))
        cases[f"mixin, {k} at runtime"] = ("o.step(1)", {"o": runtime})
        rows.append((f"mixin, {k} at runtime", f"floor, k={k}"))
    cases["new instance, plain class"] = ("C(2)", {"C": Plain})
    rows.append(("new instance, plain class", "new instance, plain class"))
    for label, mixin_cls in (("no callbacks", mixin_class(0)), ("1 callback", mixin_class(1))):
        cases[f"new instance, mixin, {label}"] = ("C(2)", {"C": mixin_cls})
        rows.append((f"new instance, mixin, {label}", "new instance, plain class"))
    child, mixin_child = PlainChild(), MixinChild()
    cases["super() call, plain"] = ("o.step(1)", {"o": child})
    cases["super() call, mixin (1 cb)"] = ("o.step(1)", {"o": mixin_child})
    rows += [
        ("super() call, plain", "super() call, plain"),
        ("super() call, mixin (1 cb)", "super() call, plain"),
    ]
    return cases, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (for smoke tests)")
    args = parser.parse_args()
    number, repeat = (20_000, 2) if args.quick else (100_000, 25)
    cases, rows = build_cases()
    times = measure(cases, number, repeat)
    where = f"python {platform.python_version()} on {platform.machine()}"
    print(f"{where}, best of {repeat} interleaved rounds of {number} calls")
    print(f"{'case':34} {'ns/call':>9}  ratio")
    for label, baseline in rows:
        print(f"{label:34} {times[label]:9.1f}  {times[label] / times[baseline]:.2f}x {baseline}")


if __name__ == "__main__":
    main()
