"""`fever record --snapshot-nodes` and `--snapshot-bytes`: the bounds on each snapshot's cost.

The node budget counts the values walked, all levels together. A wide, linked argument (a cache's dict of linked nodes) is cut where the budget is
spent, the way the item limit cuts: `fever show` counts what was left out (`…+N`), a later
argument that holds other values shows by type only (`[…]`, as below the depth limit), and
`fever check` compares what the snapshots kept, with the budget the trace was recorded with.

The bytes limit records a buffer longer than it (bytes, bytearray) by its length and hash, instead
of copying it at every call that passes it.
"""

from __future__ import annotations

from pathlib import Path

from conftest import write
from record_support import cli, clean_stderr, describe, record, show_tree  # noqa: F401

LINKED = """
class Link:
    __slots__ = ("key", "prev", "next")

    def __init__(self, key):
        self.key = key


def chain(n):
    links = {}
    root = prev = Link("root")
    for i in range(n):
        link = Link(i)
        link.prev, prev.next = prev, link
        links[i] = prev = link
    return links


def lookup(links, key):
    return links[key].key


def grid(n):
    return [[i] * n for i in range(n)]


def size(rows, extra):
    return len(rows) + len(extra)


links = chain(2000)
print(sum(lookup(links, i) for i in range(300)))
print(size(grid(4), [1, 2]))
"""


def check(cli, trace: Path, cwd: Path, expect: int) -> str:
    """`fever check TRACE`: its summary line, after asserting the exit code."""
    result = cli.run("check", trace, cwd=cwd)
    assert result.returncode == expect, describe(result)
    clean_stderr(result.stderr)
    lines = [line for line in result.stderr.splitlines() if " passed, " in line]
    assert len(lines) == 1, describe(result)
    return lines[0]


def test_a_wide_linked_argument_is_cut_at_the_node_budget(cli, tmp_path):
    write(tmp_path / "linked.py", LINKED)
    rec = record(cli, "--snapshot-nodes", "8", "linked.py", cwd=tmp_path, timeout=120)
    assert rec.result.stdout == "44850\n6\n", describe(rec.result)
    tree = show_tree(cli, rec.trace)
    # 8 values: the outer list, the first row and its 4 items, the second row and one item.
    rows = "[[0, 0, 0, 0], [1, …+3], …+2]"
    assert f"grid(n=4) → {rows}" in tree.one("__main__.grid").text, tree.text
    assert f"size(rows={rows}, extra=[…]) → 6" in tree.one("__main__.size").text, tree.text
    assert tree.find("__main__.lookup")[0].text.startswith("__main__.lookup(links={0: Link("), tree.text

    # Arguments cut by the budget are not replayed; the results of calls with whole arguments
    # are compared as far as the budget kept them, cut the same way now: a change past the cut
    # passes, one before it fails.
    assert check(cli, rec.trace, tmp_path, expect=0) == "fever: 2 passed, 0 failed, 301 skipped"
    later = "[[i] * n for i in range(2)] + [[-1] * n for i in range(2, n)]"
    write(tmp_path / "linked.py", LINKED.replace("[[i] * n for i in range(n)]", later))
    assert check(cli, rec.trace, tmp_path, expect=0) == "fever: 2 passed, 0 failed, 301 skipped"
    early = "[[-1] * n] + [[i] * n for i in range(1, n)]"
    write(tmp_path / "linked.py", LINKED.replace("[[i] * n for i in range(n)]", early))
    assert check(cli, rec.trace, tmp_path, expect=1) == "fever: 1 passed, 1 failed, 301 skipped"


def test_without_a_budget_snapshots_stop_only_at_the_other_limits(cli, tmp_path):
    write(tmp_path / "linked.py", LINKED)
    rec = record(cli, "--snapshot-nodes", "0", "linked.py", cwd=tmp_path, timeout=120)
    line = show_tree(cli, rec.trace).one("__main__.grid").text
    assert "grid(n=4) → [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]]" in line, line


BUFFERS = """
def ones(data, start):
    return data.count(1, start)


def twice(n):
    return 2 * n


big = bytearray(100_000)
big[::7] = b"\\x01" * len(big[::7])
print(ones(big, 50_000), twice(2), ones(bytes([0, 1, 1, 0, 1]), 1))
"""


def test_a_buffer_past_the_bytes_limit_is_recorded_by_length_and_hash(cli, tmp_path):
    write(tmp_path / "buffers.py", BUFFERS)
    rec = record(cli, "buffers.py", cwd=tmp_path, timeout=120)
    assert rec.result.stdout == "7143 4 3\n", describe(rec.result)
    calls = [c.text for c in show_tree(cli, rec.trace).find("__main__.ones")]
    assert len(calls) == 2, calls
    assert calls[0].startswith("__main__.ones(data=<bytearray len=100000 xxh3="), calls
    assert "ones(data=b'\\x00\\x01\\x01\\x00\\x01', start=1) → 3" in calls[1], calls
    # The hashed buffer cannot be passed again: that one call is not re-run.
    assert check(cli, rec.trace, tmp_path, expect=0) == "fever: 2 passed, 0 failed, 1 skipped"

    whole = record(cli, "--snapshot-bytes", "0", "buffers.py", cwd=tmp_path, timeout=120)
    first = show_tree(cli, whole.trace).find("__main__.ones")[0].text
    assert first.startswith("__main__.ones(data=bytearray(b'\\x01\\x00"), first
    assert check(cli, whole.trace, tmp_path, expect=0) == "fever: 3 passed, 0 failed, 0 skipped"
