"""Per-call cost with the noise of a shared machine taken out: recursive `fib(20)` (21,891 calls)
timed in many short batches, of which the fastest counts (a batch that ran undisturbed). Prints
the calls of one batch and its time as `calls:` and `in-script seconds:`.
"""

import sys
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


if __name__ == "__main__":
    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    best = float("inf")
    for _ in range(batches):
        t0 = time.perf_counter()
        fib(20)
        best = min(best, time.perf_counter() - t0)
    print("calls: 21891")
    print(f"in-script seconds: {best:.6f}")
