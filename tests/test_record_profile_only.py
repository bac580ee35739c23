"""`fever record --profile-only`: `fever attach`'s profiler counting every call of a whole run,
written as a trace that `fever show --profile` reads, with exact call counts; the views that
need the calls themselves (the tree, the exports, `fever check`) refuse it clearly.
"""

from __future__ import annotations

import re

import pytest

from conftest import write
from record_support import cli, clean_stderr, describe, profile_row, show, show_profile  # noqa: F401

N = 1237

SCRIPT = f"""
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def leaf(i):
    return i * 2


def squares(n):
    for i in range(n):
        yield leaf(i)


def main():
    total = sum(squares({N}))
    print(total, fib(12))


main()
"""
FIB12_CALLS = 465


SUMMARY = re.compile(r"fever: .*app\.trace: Python [^,]+, app\.py, (\d+) calls of 5 functions, ([\d.]+) (s|ms|µs|ns)$",
                     re.MULTILINE)
UNIT_NS = {"s": 1e9, "ms": 1e6, "µs": 1e3, "ns": 1}


@pytest.fixture
def profiled(cli, tmp_path):
    write(tmp_path / "app.py", SCRIPT)
    trace = tmp_path / "app.trace"
    result = cli.run("record", "--profile-only", "-o", trace, "app.py", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    clean_stderr(result.stderr)
    assert result.stdout == f"{sum(2 * i for i in range(N))} 144\n", describe(result)
    assert f"recorded {N + FIB12_CALLS + 3} calls of 5 functions to" in result.stderr, describe(result)
    return trace


def test_show_profile_has_the_exact_counts(cli, profiled):
    rows = show_profile(cli, profiled)
    leaf = profile_row(rows, "__main__.leaf")
    assert leaf.calls == N and not leaf.capped, leaf.text
    assert profile_row(rows, "__main__.fib").calls == FIB12_CALLS
    # A generator is called once, however often it resumes.
    assert profile_row(rows, "__main__.squares").calls == 1
    assert profile_row(rows, "__main__.main").calls == 1
    assert "app.py:" in leaf.text, leaf.text
    order = list(rows)
    assert order.index(profile_row(rows, "__main__.main").name) < \
        order.index(profile_row(rows, "__main__.leaf").name), order


def test_the_summary_line_gives_the_runs_duration(cli, profiled):
    result = show(cli, profiled, "--profile")
    m = SUMMARY.search(result.stderr)
    assert m, describe(result)
    assert int(m[1]) == N + FIB12_CALLS + 3, describe(result)
    # The run's duration, from the profile (its module body's time): it used to say "0 ns".
    assert float(m[2]) * UNIT_NS[m[3]] > 0, describe(result)


@pytest.mark.parametrize("args", [[], ["--format", "perfetto"], ["--format", "speedscope"]])
def test_views_of_the_calls_refuse_it_with_a_hint(cli, profiled, args):
    result = cli.run("show", profiled, *args, cwd=profiled.parent)
    assert result.returncode == 2, describe(result)
    clean_stderr(result.stderr)
    assert f"fever: error: {profiled} was recorded with `fever record --profile-only`" in result.stderr, \
        describe(result)
    assert "hint: show it with `fever show" in result.stderr and "--profile`" in result.stderr, describe(result)
    assert result.stdout == ""
    assert not list(profiled.parent.glob("app.pftrace")) and not list(profiled.parent.glob("*.json"))


def test_check_refuses_it(cli, profiled):
    result = cli.run("check", profiled, cwd=profiled.parent, timeout=120)
    assert result.returncode == 2, describe(result)
    clean_stderr(result.stderr)
    assert "fever: error: cannot check" in result.stderr and "--profile-only" in result.stderr, describe(result)


def test_profile_only_with_snapshot_options_is_a_usage_error(cli, tmp_path):
    write(tmp_path / "app.py", "print(1)\n")
    result = cli.run("record", "--profile-only", "--snapshots", "none", "app.py", cwd=tmp_path)
    assert result.returncode == 2, describe(result)
    assert "--profile-only" in result.stderr and "--snapshots" in result.stderr, describe(result)
    assert not (tmp_path / "fever.trace").exists()
