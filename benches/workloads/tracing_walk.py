"""Recursive-walker workload for the tracing benchmark: project functions walking nested dicts
(every node is one call with a dict, list or int argument), a few times over.

Prints the number of calls of project functions during the timed part and that part's time.
"""

import sys
import time


def build(depth, width, seed):
    """A nested dict `depth` levels deep, `width` keys per level, lists of ints at the bottom."""
    if depth == 0:
        return [seed % 97, seed % 89, (seed * 7) % 83]
    return {f"k{depth}_{i}": build(depth - 1, width, seed * width + i) for i in range(width)}


def weigh_key(key):
    return len(key)


def walk(node):
    total = 0
    if isinstance(node, dict):
        for key, value in node.items():
            total += weigh_key(key) + walk(value)
    elif isinstance(node, list):
        for item in node:
            total += item
    else:
        total += node
    return total


def count_calls(node):
    """How many calls one walk makes (computed without tracing-sensitive tricks: plain counting)."""
    if isinstance(node, dict):
        return 1 + sum(1 + count_calls(v) for v in node.values())
    return 1


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    t0 = time.perf_counter()
    tree = build(6, 6, 1)
    total = 0
    for _ in range(rounds):
        total += walk(tree)
    elapsed = time.perf_counter() - t0
    print(f"total {total}")
    print(f"calls: {rounds * count_calls(tree)}")  # walk + weigh_key calls in the walks
    print(f"in-script seconds: {elapsed:.6f}")
