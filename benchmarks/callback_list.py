"""Cost of changing a runtime callback list, with chunked compilation (now) and without it (before).

Run: python benchmarks/callback_list.py [--quick]
For chains of n callbacks on one event, prints the time of one more `callbacks.append(...)` (median of
several) and of building the whole chain with n appends. "before" recompiles the whole chain on every
change (what arctic_like did until chains were compiled in chunks of `CHUNK_SIZE`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arctic_like import CallbackMixin
from arctic_like.callback import codegen


class Host(CallbackMixin):
    def step(self, x):
        return x


def _callback():
    def pre_step(self, x):
        return x

    return pre_step


def one_append_ms(n: int, rounds: int) -> float:
    """Median time of appending one callback to a chain of n."""
    times = []
    for _ in range(rounds):
        host = Host()
        host.callbacks.extend([("pre-step", _callback()) for _ in range(n)])
        extra = ("pre-step", _callback())
        start = time.perf_counter()
        host.callbacks.append(extra)
        times.append(time.perf_counter() - start)
        assert host.step(1) == 1
    return statistics.median(times) * 1e3


def build_by_appends_s(n: int) -> float:
    """Time of building a chain of n with n single appends."""
    host = Host()
    entries = [("pre-step", _callback()) for _ in range(n)]
    start = time.perf_counter()
    for entry in entries:
        host.callbacks.append(entry)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller chains (for smoke tests)")
    args = parser.parse_args()
    sizes = (10, 100, 300) if args.quick else (10, 100, 1000)
    rounds = 3 if args.quick else 7
    chunk = codegen.CHUNK_SIZE
    print(f"{'chain':>6}  {'one append, now':>16}  {'before':>10}  {'n appends, now':>15}  {'before':>9}")
    for n in sizes:
        codegen.CHUNK_SIZE = chunk
        now_one, now_all = one_append_ms(n, rounds), build_by_appends_s(n)
        codegen.CHUNK_SIZE = 10**9  # never chunk: every change compiles the whole chain
        before_one, before_all = one_append_ms(n, rounds), build_by_appends_s(n)
        print(f"{n:>6}  {now_one:>13.2f} ms  {before_one:>7.2f} ms  {now_all:>13.3f} s  {before_all:>7.3f} s")
    codegen.CHUNK_SIZE = chunk


if __name__ == "__main__":
    main()
