"""Call-heavy workload for the tracing benchmark: recursive fib, nothing else.

Prints the number of Python calls it made (fib(n) makes 2*F(n+1) - 1 calls) and the workload's
own time, so the benchmark can compute the overhead per call without start-up and exit costs.
"""

import sys
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def calls_of(n):
    a, b = 0, 1  # F(0), F(1)
    for _ in range(n + 1):
        a, b = b, a + b
    return 2 * a - 1  # a == F(n + 1)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 34
    t0 = time.perf_counter()
    value = fib(n)
    elapsed = time.perf_counter() - t0
    print(f"fib({n}) = {value}")
    print(f"calls: {calls_of(n)}")  # calls of fib, the project function timed
    print(f"in-script seconds: {elapsed:.6f}")
