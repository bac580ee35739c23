"""Long-running workload for the attach benchmark: rounds of `fib` or of the dict walker, forever
(until killed), printing each round's time so the benchmark can compare phases of one process
(before, while and after `fever attach`) with plain python's rounds. A round is timed in the
main thread's CPU time (`time.thread_time()`), so a busy machine does not count as slowdown, and
in wall-clock time (`round CPU_MS WALL_MS`): a sampling profiler that pauses the process costs
wall time, not CPU time.

    attach_loop.py fib|walk
"""

import sys
import time

from tracing_fib import fib
from tracing_walk import build, walk


def main():
    kind = sys.argv[1]
    tree = build(5, 6, 1)
    while True:
        t0, w0 = time.thread_time(), time.perf_counter()
        if kind == "fib":
            fib(22)
        else:
            for _ in range(3):
                walk(tree)
        print(f"round {(time.thread_time() - t0) * 1e3:.4f} {(time.perf_counter() - w0) * 1e3:.4f}",
              flush=True)


if __name__ == "__main__":
    main()
