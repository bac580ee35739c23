"""`fever record`: runs a script like python while tracing the project's functions, and writes a
trace that `fever show` reads back as a call tree and a profile.

Each test records a real script in a temporary project through the real command (the venv's
`fever` and the standalone binary, see record_support.py), then checks what a user relies on:
the program's own output and exit code are python's, the summary line, and the names, counts,
arguments, values and markers `fever show` prints.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from conftest import FEVER, PYTHON, run_python, write
from record_support import (RECORDED_LINE, clean_stderr, cli, describe, make_cli, parse_tree,  # noqa: F401
                            profile_row, record, show, show_profile, show_tree)

FIB = """
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


print(fib(15))
"""


def test_fib_exact_counts_and_values(cli, tmp_path):
    write(tmp_path / "fib.py", FIB)
    rec = record(cli, "fib.py", cwd=tmp_path)
    assert rec.result.stdout == "610\n"
    # fib(15) makes 1973 calls; the module's own code may count as one more call.
    assert rec.calls in (1973, 1974), rec.result.stderr
    assert rec.functions in (1, 2), rec.result.stderr
    assert profile_row(show_profile(cli, rec.trace), "__main__.fib").calls == 1973
    tree = show_tree(cli, rec.trace)
    top = tree.one("__main__.fib", lambda c: "n=15" in c.text)
    assert "fib(n=15)" in top.text and "→ 610" in top.text, tree.text
    assert top.parent is None or not top.parent.is_("fib"), tree.text
    assert all(c.is_("__main__.fib") for c in top.children) and top.children, tree.text
    assert "n=14" in top.children[0].text and "377" in top.children[0].text, tree.text


def test_output_and_default_trace_path_like_python(cli, tmp_path):
    write(tmp_path / "fib.py", FIB + "import sys\nprint(sys.argv[1:], __name__)\n")
    expected = run_python("fib.py", "a", "--b", "-o", "x", cwd=tmp_path)
    result = cli.run("record", "fib.py", "a", "--b", "-o", "x", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout == expected.stdout
    assert (tmp_path / "fever.trace").is_file(), describe(result)
    assert not (tmp_path / "x").exists()
    last = result.stderr.splitlines()[-1]
    assert RECORDED_LINE.match(last) and "fever.trace" in last, describe(result)
    assert show_profile(cli, tmp_path / "fever.trace")


def test_trace_path_in_another_directory(cli, tmp_path):
    write(tmp_path / "proj" / "fib.py", FIB)
    out = tmp_path / "traces" / "run1.trace"
    out.parent.mkdir()
    rec = record(cli, "proj/fib.py", cwd=tmp_path, trace=out)
    assert profile_row(show_profile(cli, rec.trace), "fib").calls == 1973


CALL_TREE = """
import json
import re


def tokenize(text):
    return re.findall(r"[a-z]+", text.lower())


def normalize(words):
    return sorted(words, key=lambda w: (len(w), w))


def encode(words):
    return json.dumps({"words": words, "count": len(words)})


def pipeline(text):
    words = tokenize(text)
    ordered = normalize(words)
    return encode(ordered)


print(pipeline("The quick brown fox jumps over the lazy dog"))
"""


def test_call_tree_with_stdlib_calls(cli, tmp_path):
    write(tmp_path / "app.py", CALL_TREE)
    rec = record(cli, "app.py", cwd=tmp_path)
    assert rec.result.stdout == run_python("app.py", cwd=tmp_path).stdout
    tree = show_tree(cli, rec.trace)
    pipeline = tree.one("__main__.pipeline")
    assert "text='The quick brown fox" in pipeline.text, tree.text
    assert [c.short for c in pipeline.children] == ["tokenize", "normalize", "encode"], tree.text
    tokenize, normalize, encode = pipeline.children
    assert "'quick'" in tokenize.text and "→ [" in tokenize.text, tree.text
    assert tokenize.children == [] and encode.children == [], tree.text  # re and json are not traced
    assert "→ '{" in encode.text or '→ \'{"words"' in encode.text, tree.text
    # The sort key is a lambda of the project: sorted() calls it once per word.
    assert normalize.children, tree.text
    assert all(c.is_("normalize.<locals>.<lambda>") for c in normalize.children), tree.text
    assert sum(c.count for c in normalize.children) == 9, tree.text
    assert "w='the'" in tree.text or "w='dog'" in tree.text, tree.text
    for outside in ("json.", "re.", "encoder", "_compile", "sre_", "JSONEncoder"):
        assert not [c for c in tree.calls if c.name.startswith(outside) or outside in c.name], \
            f"library code {outside!r} in the trace\n{tree.text}"
    rows = show_profile(cli, rec.trace)
    assert profile_row(rows, "normalize.<locals>.<lambda>").calls == 9
    assert profile_row(rows, "__main__.tokenize").calls == 1
    assert all(name.startswith("__main__.") for name in rows), list(rows)


def test_module_in_a_package_with_dash_m(cli, tmp_path):
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "util.py", """
        def double(x):
            return x * 2
    """)
    write(tmp_path / "pkg" / "main.py", """
        import sys
        from pkg.util import double


        def main(args):
            total = 0
            for i in range(4):
                total += double(i)
            return total


        if __name__ == "__main__":
            print(main(sys.argv[1:]), sys.argv[1:])
    """)
    rec = record(cli, "-m", "pkg.main", "one", "-v", cwd=tmp_path)
    assert rec.result.stdout == "12 ['one', '-v']\n"
    tree = show_tree(cli, rec.trace)
    main = tree.one("__main__.main")
    assert "→ 12" in main.text and "one" in main.text, tree.text
    assert [c.name for c in main.children] == ["pkg.util.double"] * len(main.children), tree.text
    assert sum(c.count for c in main.children) == 4, tree.text
    assert any("x=3" in c.text and "→ 6" in c.text for c in main.children) or \
        any("x=0" in c.text and "→ 0" in c.text for c in main.children), tree.text
    assert profile_row(show_profile(cli, rec.trace), "pkg.util.double").calls == 4


def test_python_m_fever_record(tmp_path):
    write(tmp_path / "fib.py", FIB)
    rec = record(make_cli("python-m"), "fib.py", cwd=tmp_path)
    assert rec.result.stdout == "610\n"
    assert profile_row(show_profile(make_cli("venv"), rec.trace), "fib").calls == 1973


THREADS = """
import threading


def square(i):
    return i * i


def work(n):
    total = 0
    for i in range(n):
        total += square(i)
    return total


worker = threading.Thread(target=work, args=(5,), name="worker")
worker.start()
worker.join()
print(work(3))
"""


def test_two_threads_two_sections(cli, tmp_path):
    write(tmp_path / "app.py", THREADS)
    rec = record(cli, "app.py", cwd=tmp_path)
    assert rec.result.stdout == "5\n"
    tree = show_tree(cli, rec.trace)
    assert len(tree.threads) == 2, tree.text
    assert [main for _, main in tree.threads].count(True) == 1, tree.text
    main_index = [main for _, main in tree.threads].index(True)
    other = 1 - main_index
    main_work = tree.one("__main__.work", lambda c: c.thread == main_index)
    other_work = tree.one("__main__.work", lambda c: c.thread == other)
    assert "n=3" in main_work.text and "→ 5" in main_work.text, tree.text
    assert "n=5" in other_work.text and "→ 30" in other_work.text, tree.text
    assert sum(c.count for c in main_work.children if c.is_("square")) == 3, tree.text
    assert sum(c.count for c in other_work.children if c.is_("square")) == 5, tree.text
    assert not [c for c in tree.calls if "threading" in c.name or "_bootstrap" in c.name], tree.text
    assert profile_row(show_profile(cli, rec.trace), "__main__.square").calls == 8


GENERATORS = """
import asyncio


def countdown(n):
    while n > 0:
        yield n
        n -= 1


async def fetch(x):
    await asyncio.sleep(0)
    return x * 2


async def main():
    results = await asyncio.gather(fetch(1), fetch(2))
    return sum(results)


print(list(countdown(3)))
print(asyncio.run(main()))
"""


def test_generator_and_coroutines(cli, tmp_path):
    write(tmp_path / "app.py", GENERATORS)
    rec = record(cli, "app.py", cwd=tmp_path)
    assert rec.result.stdout == "[3, 2, 1]\n6\n"
    tree = show_tree(cli, rec.trace)
    countdown = tree.find("__main__.countdown")
    assert countdown, tree.text
    assert any("suspended" in c.text for c in countdown), tree.text
    assert any("resumed" in c.text for c in countdown), tree.text
    assert any("n=3" in c.text for c in countdown), tree.text
    # Both fetch() coroutines start one after the other (consecutive calls of one function may be
    # collapsed into one line with [×2]), then both are resumed and return.
    fetch = tree.find("__main__.fetch")
    started = [c for c in fetch if "resumed" not in c.text]
    resumed = [c for c in fetch if "resumed" in c.text]
    assert sum(c.count for c in started) == 2 and "x=1" in started[0].text, tree.text
    assert all("suspended" in c.text for c in started), tree.text
    assert sum(c.count for c in resumed) == 2 and "→ 2" in resumed[0].text, tree.text
    main = tree.find("__main__.main")
    assert "suspended" in main[0].text and "resumed" not in main[0].text, tree.text
    assert any("→ 6" in c.text and "resumed" in c.text for c in main), tree.text
    # Spans are in time order: main starts, the coroutines run, main resumes with the result.
    order = [c.short for c in tree.calls if c.short in ("main", "fetch")]
    assert order[0] == "main" and order[-1] == "main" and set(order[1:-1]) == {"fetch"}, tree.text
    assert not [c for c in tree.calls if c.name.startswith("asyncio.")], tree.text
    # A generator's first line is its call; every other span of it is a resumption.
    rows = show_profile(cli, rec.trace)
    assert profile_row(rows, "__main__.countdown").calls == 1
    assert profile_row(rows, "__main__.fetch").calls == 2
    assert profile_row(rows, "__main__.main").calls == 1


CAUGHT = """
def inner(x):
    raise ValueError(f"bad {x}")


def middle(x):
    return inner(x) + 1


def outer(x):
    try:
        return middle(x)
    except ValueError as e:
        return f"caught {e}"


print(outer(5))
"""


def test_exception_unwinding_through_two_frames(cli, tmp_path):
    write(tmp_path / "app.py", CAUGHT)
    rec = record(cli, "app.py", cwd=tmp_path)
    assert rec.result.stdout == "caught bad 5\n"
    tree = show_tree(cli, rec.trace)
    outer = tree.one("__main__.outer")
    assert "x=5" in outer.text and "→ 'caught bad 5'" in outer.text and "raised" not in outer.text, tree.text
    (middle,) = outer.children
    assert middle.is_("__main__.middle") and "raised ValueError" in middle.text and "→" not in middle.text, tree.text
    (inner,) = middle.children
    assert inner.is_("__main__.inner") and "raised ValueError" in inner.text, tree.text
    assert "bad 5" in inner.text, tree.text


UNCAUGHT = """
def fail(n):
    raise KeyError(n)


def run(n):
    return fail(n)


print("started", flush=True)
run(7)
"""


def test_uncaught_exception_exit_1_and_complete_trace(cli, tmp_path):
    write(tmp_path / "boom.py", UNCAUGHT)
    rec = record(cli, "boom.py", cwd=tmp_path, expect_exit=1)
    assert rec.result.stdout == "started\n"
    program = rec.program_stderr
    assert program[0] == "Traceback (most recent call last):", rec.result.stderr
    assert program[-1] == "KeyError: 7", rec.result.stderr
    assert program == run_python("boom.py", cwd=tmp_path).stderr.splitlines()
    check = show(cli, rec.trace)
    assert "incomplete" not in check.stderr, check.stderr
    tree = parse_tree(check.stdout)
    run_call = tree.one("__main__.run")
    assert "n=7" in run_call.text and "raised KeyError" in run_call.text, tree.text
    (fail,) = run_call.children
    assert fail.is_("__main__.fail") and "raised KeyError" in fail.text, tree.text


def test_sys_exit_3_and_complete_trace(cli, tmp_path):
    write(tmp_path / "app.py", """
        import sys


        def work():
            return 42


        def main():
            work()
            print("leaving", flush=True)
            sys.exit(3)


        main()
    """)
    rec = record(cli, "app.py", cwd=tmp_path, expect_exit=3)
    assert rec.result.stdout == "leaving\n"
    assert "Traceback" not in rec.result.stderr
    check = show(cli, rec.trace)
    assert "incomplete" not in check.stderr, check.stderr
    tree = parse_tree(check.stdout)
    main = tree.one("__main__.main")
    assert "SystemExit" in main.text, tree.text
    assert [c.text for c in main.children if c.is_("work")] and "→ 42" in main.children[0].text, tree.text


LONG_LOOP = """
import time


def step(i):
    return i * 2


def loop():
    i = 0
    print("ready", flush=True)
    while True:
        step(i)
        i += 1
        if i % 500 == 0:
            time.sleep(0.001)


loop()
"""


@pytest.mark.parametrize("target", ["group", "process"])
def test_sigint_exit_130_and_complete_trace(cli, fever, tmp_path, target):
    """Ctrl-C in a terminal signals the whole process group; `kill -INT PID` only fever."""
    write(tmp_path / "app.py", LONG_LOOP)
    trace = tmp_path / "out.trace"
    p = cli.start(fever, "record", "-o", trace, "--max-calls-per-function", "0", "app.py", cwd=tmp_path)
    p.wait_stdout("^ready$")
    time.sleep(0.5)
    if target == "group":
        p.signal(signal.SIGINT)
    else:
        p.proc.send_signal(signal.SIGINT)
    code = p.wait_exit(timeout=30)
    # Like python: KeyboardInterrupt ends the process by SIGINT, which a shell shows as 130.
    assert code in (130, -signal.SIGINT), p.report()
    assert any("KeyboardInterrupt" in line for line in p.stderr), p.report()
    m = RECORDED_LINE.match(p.stderr[-1]) if p.stderr else None
    assert m, p.report()
    check = show(cli, trace, "--profile")
    assert "incomplete" not in check.stderr, check.stderr
    steps = profile_row(show_profile(cli, trace), "__main__.step")
    assert steps.calls > 500 and not steps.capped, steps.text
    tree = show_tree(cli, trace, "--max-lines", "20")
    assert "KeyboardInterrupt" in tree.one("__main__.loop").text, tree.text


ADD = """
def add(a, b):
    return a + b


print(add(2, 3))
"""


@pytest.mark.parametrize("mode", ["none", "args", "all", "default"])
def test_snapshot_modes(cli, tmp_path, mode):
    write(tmp_path / "app.py", ADD)
    args = [] if mode == "default" else ["--snapshots", mode]
    rec = record(cli, *args, "app.py", cwd=tmp_path)
    assert rec.result.stdout == "5\n"
    line = show_tree(cli, rec.trace).one("__main__.add").text
    shows_args = "a=2" in line and "b=3" in line
    shows_value = "→ 5" in line
    assert shows_args == (mode != "none"), line
    assert shows_value == (mode in ("all", "default")), line


TICKS = """
import sys


def tick(i):
    return i


for i in range(int(sys.argv[1])):
    tick(i)
"""


# Past the cap N, a sample of N/8 calls (at least 1) per doubling of the count is recorded:
# cap 5 over 100 calls records 5 + 1 in each of (5, 10], (10, 20], (20, 40], (40, 80]; the
# default cap 10000 over 10,050 calls records every 8th of calls 10,001..10,050 (6) too.
@pytest.mark.parametrize("cap, calls, capped, shown", [
    ("5", 100, True, 9),
    (None, 100, False, 100),
    (None, 10_050, True, 10_006),  # the default cap is 10000
    ("0", 10_050, False, 10_050),
])
def test_max_calls_per_function(cli, tmp_path, cap, calls, capped, shown):
    write(tmp_path / "app.py", TICKS)
    args = [] if cap is None else ["--max-calls-per-function", cap]
    rec = record(cli, *args, "app.py", str(calls), cwd=tmp_path)
    row = profile_row(show_profile(cli, rec.trace), "__main__.tick")
    assert row.calls == calls, row.text
    assert row.capped == capped, row.text
    tree = show_tree(cli, rec.trace, "--max-lines", "100000")
    assert tree.total("__main__.tick") == shown, tree.total("__main__.tick")


STEPS = """
import sys


def steps(n):
    for i in range(n):
        yield i


def walk(depth):
    if depth:
        yield from walk(depth - 1)
        yield from walk(depth - 1)
    yield depth


def consume(i):
    return sum(steps(3)) + i


n = int(sys.argv[1])
early = steps(n + 10)          # started under the cap, stepped past it
print(next(early), next(early))
print(sum(consume(i) for i in range(n)))
print(sum(early), sum(walk(8)), list(walk(1)))
"""


def test_generators_past_the_cap_are_counted_and_stay_correct(cli, tmp_path):
    # Past its cap, a generator's later calls are counted, not recorded (nor sampled): fever
    # turns off their steps' events. The generator started before the cap and stepped after
    # it, and the recursive one, still give python's results, and the callers' tree is whole.
    write(tmp_path / "app.py", STEPS)
    expected = run_python("app.py", "40", cwd=tmp_path)
    rec = record(cli, "--max-calls-per-function", "5", "app.py", "40", cwd=tmp_path)
    assert rec.result.stdout == expected.stdout == "0 1\n900\n1224 502 [0, 0, 1]\n"
    rows = show_profile(cli, rec.trace)
    assert profile_row(rows, "__main__.steps").calls == 41
    assert profile_row(rows, "__main__.walk").calls == 511 + 3
    assert profile_row(rows, "__main__.consume").calls == 40
    tree = show_tree(cli, rec.trace, "--max-lines", "100000")
    # The first 5 calls of each are recorded; a generator's later ones are not sampled.
    def started(name):
        return sum(c.count for c in tree.find(name) if "resumed" not in c.text)
    assert started("__main__.steps") == 5, tree.text
    assert started("__main__.walk") == 5, tree.text
    consumes = tree.find("__main__.consume")
    assert sum(c.count for c in consumes) == 5 + 3, tree.text  # sampled: 10, 20, 40
    assert all(c.parent is None or not c.parent.is_("__main__.steps") for c in consumes), tree.text
    # Timing only records everything, steps included.
    full = record(cli, "--max-calls-per-function", "0", "--snapshots", "none", "app.py", "40",
                  cwd=tmp_path, trace=tmp_path / "full.trace")
    assert full.result.stdout == expected.stdout
    tree = show_tree(cli, full.trace, "--max-lines", "100000")
    assert started("__main__.walk") == 514, tree.text
    assert tree.total("__main__.walk") > 514, tree.text  # and their steps


def test_mutated_arguments_are_marked(cli, tmp_path):
    write(tmp_path / "app.py", """
        def collect(items, x):
            items.append(x)
            return len(items)


        def measure(items):
            return len(items)


        bag = []
        collect(bag, 1)
        print(measure(bag))
    """)
    rec = record(cli, "app.py", cwd=tmp_path)
    tree = show_tree(cli, rec.trace)
    collect = tree.one("__main__.collect")
    assert "(mutated args)" in collect.text and "→ 1" in collect.text, tree.text
    assert "items=[]" in collect.text, tree.text  # the argument as it was on entry
    measure = tree.one("__main__.measure")
    assert "mutated" not in measure.text and "items=[1]" in measure.text, tree.text


CPROFILE = """
import cProfile
import io
import pstats


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def work():
    return fib(10)


cProfile.run("work()", sort="ncalls")
profiler = cProfile.Profile()
profiler.enable()
value = work()
profiler.disable()
out = io.StringIO()
pstats.Stats(profiler, stream=out).sort_stats("ncalls").print_stats("fib")
print(out.getvalue())
print("value", value)
"""


def test_script_using_cprofile(cli, tmp_path):
    write(tmp_path / "app.py", CPROFILE)
    rec = record(cli, "app.py", cwd=tmp_path)
    expected = run_python("app.py", cwd=tmp_path).stdout
    # Both cProfile reports count fib(10)'s 177 calls (177/1 with recursion).
    for stdout in (expected, rec.result.stdout):
        fib_lines = [line for line in stdout.splitlines() if "(fib)" in line]
        assert len(fib_lines) == 2, stdout
        assert all(line.split()[0] == "177/1" for line in fib_lines), stdout
    assert "value 55" in rec.result.stdout
    rows = show_profile(cli, rec.trace)
    assert profile_row(rows, "__main__.fib").calls == 2 * 177
    assert profile_row(rows, "__main__.work").calls == 2


COVERAGE = """
import io
import sys

import coverage

cov = coverage.Coverage(data_file=None, include=["*/lib.py"])
cov.start()
from lib import compute
result = compute(int(sys.argv[1]))
cov.stop()
out = io.StringIO()
percent = cov.report(file=out, show_missing=True)
print("result", result)
print("covered", round(percent))
print(out.getvalue())
"""

LIB = """
def compute(x):
    if x > 0:
        return helper(x)
    return -1


def helper(x):
    return x * 10
"""


@pytest.mark.parametrize("core", ["default", "sysmon"])
def test_script_using_coverage(cli, tmp_path, core):
    pytest.importorskip("coverage")
    write(tmp_path / "app.py", COVERAGE)
    write(tmp_path / "lib.py", LIB)
    env = {} if core == "default" else {"COVERAGE_CORE": core}
    expected = run_python_env("app.py", "4", cwd=tmp_path, env=env)
    assert "covered 83" in expected.stdout, expected.stdout + expected.stderr
    rec = record(cli, "app.py", "4", cwd=tmp_path, env=env)
    assert rec.result.stdout == expected.stdout
    assert [line for line in rec.program_stderr if line.strip()] == \
        [line for line in expected.stderr.splitlines() if line.strip()]
    rows = show_profile(cli, rec.trace)
    assert profile_row(rows, "lib.compute").calls == 1
    assert profile_row(rows, "lib.helper").calls == 1
    tree = show_tree(cli, rec.trace)
    assert "→ 40" in tree.one("lib.compute").text, tree.text
    assert not [c for c in tree.calls if c.name.startswith("coverage.")], tree.text


def run_python_env(*args, cwd, env):
    return subprocess.run([str(PYTHON), *args], cwd=cwd, env=dict(os.environ, **env), capture_output=True,
                          text=True, timeout=60)


def test_unwritable_output_is_a_clear_error(cli, tmp_path):
    write(tmp_path / "app.py", "print('ran', flush=True)\n")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    for out in (blocker / "x.trace", tmp_path / "missing-dir" / "x.trace"):
        result = cli.run("record", "-o", out, "app.py", cwd=tmp_path)
        assert result.returncode == 2 or (result.returncode == 0 and result.stdout == "ran\n"), describe(result)
        errors = [line for line in result.stderr.splitlines() if line.startswith("fever: error:")]
        assert errors and str(out.name) in errors[0], describe(result)
        clean_stderr(result.stderr)
        assert not out.exists()


def test_unwritable_directory_is_a_clear_error(cli, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    write(tmp_path / "app.py", "print('ran')\n")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = cli.run("record", "-o", locked / "x.trace", "app.py", cwd=tmp_path)
    assert result.returncode in (0, 2), describe(result)
    assert any(line.startswith("fever: error:") for line in result.stderr.splitlines()), describe(result)
    clean_stderr(result.stderr)


def test_missing_script_is_a_clear_error(cli, tmp_path):
    result = cli.run("record", "nope.py", cwd=tmp_path)
    assert result.returncode == 2, describe(result)
    assert any(line.startswith("fever: error:") and "nope.py" in line for line in result.stderr.splitlines())
    clean_stderr(result.stderr)


def test_record_help_lists_the_options(cli, tmp_path):
    result = cli.run("record", "--help", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    for option in ("-o", "--snapshots", "--max-calls-per-function", "--root", "-m", "none", "args", "all"):
        assert option in result.stdout, f"{option} not in\n{result.stdout}"
    top = cli.run("--help", cwd=tmp_path)
    assert "record" in top.stdout and "show" in top.stdout, top.stdout


def test_root_option_limits_what_is_traced(cli, tmp_path):
    """With --root on a subdirectory, code outside it (the script's own) is not traced."""
    write(tmp_path / "lib" / "helpers.py", """
        def helper(x):
            return x + 1
    """)
    write(tmp_path / "app.py", """
        import sys
        sys.path.insert(0, "lib")
        from helpers import helper


        def main():
            return helper(1)


        print(main())
    """)
    rec = record(cli, "--root", "lib", "app.py", cwd=tmp_path)
    assert rec.result.stdout == "2\n"
    rows = show_profile(cli, rec.trace)
    assert profile_row(rows, "helpers.helper").calls == 1
    assert not [n for n in rows if n.startswith("__main__.")], list(rows)


def test_quiet_prints_nothing_of_fevers(cli, tmp_path):
    write(tmp_path / "fib.py", FIB)
    result = cli.run("record", "-q", "-o", tmp_path / "q.trace", "fib.py", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout == "610\n"
    assert not [line for line in result.stderr.splitlines() if line.startswith("fever: ")], describe(result)
    assert profile_row(show_profile(cli, tmp_path / "q.trace"), "fib").calls == 1973


THROWN_INTO = """
def cleanup():
    return "cleaned"


def handled():
    return "handled"


def gen():
    try:
        yield 1
        yield 2
    except ValueError:
        handled()
        yield 3
    finally:
        cleanup()


g = gen()
next(g)
print(g.throw(ValueError))
g.close()
"""


def test_generator_resumed_by_throw_and_close(cli, tmp_path):
    """`gen.throw()` and `gen.close()` resume the generator (CPython reports PY_THROW, not
    PY_RESUME): what runs then is part of the generator's spans, not of its caller's."""
    write(tmp_path / "app.py", THROWN_INTO)
    rec = record(cli, "app.py", cwd=tmp_path)
    assert rec.result.stdout == "3\n"
    tree = show_tree(cli, rec.trace)
    spans = tree.find("__main__.gen")
    assert len(spans) == 3, f"expected the first run and two resumptions of gen\n{tree.text}"
    first, thrown, closed = spans
    assert "→ 1" in first.text and "suspended" in first.text, tree.text
    assert "→ 3" in thrown.text and "suspended" in thrown.text, tree.text
    assert [c.short for c in thrown.children] == ["handled"], tree.text
    assert "GeneratorExit" in closed.text, tree.text
    assert [c.short for c in closed.children] == ["cleanup"], tree.text


CANCELLED = """
import asyncio


def on_cancel():
    return "noted"


async def sleeper():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        on_cancel()
        raise


async def main():
    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return "cancelled"


print(asyncio.run(main()))
"""


def test_cancelled_coroutine(cli, tmp_path):
    """Cancelling a task throws CancelledError into its coroutine: the calls its handler makes
    belong to that coroutine's resumed span, which ends by raising CancelledError."""
    write(tmp_path / "app.py", CANCELLED)
    rec = record(cli, "app.py", cwd=tmp_path)
    assert rec.result.stdout == "cancelled\n"
    tree = show_tree(cli, rec.trace)
    on_cancel = tree.one("__main__.on_cancel")
    assert on_cancel.parent is not None and on_cancel.parent.is_("__main__.sleeper"), tree.text
    assert "CancelledError" in on_cancel.parent.text, tree.text
    assert any("→ 'cancelled'" in c.text for c in tree.find("__main__.main")), tree.text


def test_forked_child_exits_cleanly(cli, tmp_path):
    """A child made by os.fork() that exits normally (atexit handlers run) must neither crash nor
    write into the parent's threads: it is recorded as a process of its own."""
    write(tmp_path / "app.py", """
        import os
        import sys


        def work(tag):
            return tag * 2


        work(1)
        pid = os.fork()
        if pid == 0:
            work(100)
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        print("child exit", os.waitstatus_to_exitcode(status), flush=True)
        work(2)
    """)
    result = cli.run("record", "-o", "out.trace", "app.py", cwd=tmp_path)
    panics = [line for line in result.stderr.splitlines() if "panicked" in line or "abort" in line]
    assert (result.stdout, panics) == ("child exit 0\n", []), f"stdout {result.stdout!r}, stderr: {panics}"
    rec = record(cli, "app.py", cwd=tmp_path)  # the rest, once the child is fine
    text = show(cli, rec.trace).stdout
    assert not [line for line in text.splitlines() if "SystemExit" in line], text
    # The program's thread called first, so its section comes first.
    parent, child = re.split(r"^== process \d+ thread 1 ==$", text, flags=re.M)
    assert "work(tag=100)" in child and "work(tag=100)" not in parent, text
    assert parse_tree(parent).total("__main__.work") == 2, text
    assert parse_tree(child).total("__main__.work") == 1, text
    assert profile_row(show_profile(cli, rec.trace), "__main__.work").calls == 3


def test_program_changing_directory(cli, tmp_path):
    """A relative -o names a path in the directory fever started in, whatever the program does."""
    write(tmp_path / "app.py", """
        import os


        def where():
            os.chdir("elsewhere")
            return "moved"


        print(where())
    """)
    (tmp_path / "elsewhere").mkdir()
    result = cli.run("record", "-o", "moved.trace", "app.py", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    trace = tmp_path / "moved.trace"
    assert trace.is_file() and not (tmp_path / "elsewhere" / "moved.trace").exists()
    m = RECORDED_LINE.match(result.stderr.splitlines()[-1])
    assert m, describe(result)
    assert m["size"] not in ("0 B", "0 bytes"), f"the summary gives the size of another file\n{describe(result)}"
    assert "→ 'moved'" in show_tree(cli, trace).one("__main__.where").text


def test_os_exit_keeps_the_exit_code(cli, tmp_path):
    """os._exit skips every clean-up: the exit code is the program's; the trace may be cut short
    or empty, but reading it is a warning or a clear error, never a crash."""
    write(tmp_path / "app.py", """
        import os


        def work(n):
            return n


        for i in range(5):
            work(i)
        print("bye", flush=True)
        os._exit(4)
    """)
    result = cli.run("record", "-o", "x.trace", "app.py", cwd=tmp_path)
    assert result.returncode == 4 and result.stdout == "bye\n", describe(result)
    clean_stderr(result.stderr)
    check = cli.run("show", "x.trace", cwd=tmp_path)
    clean_stderr(check.stderr)
    assert check.returncode in (0, 2), describe(check)
    if check.returncode == 2:
        assert check.stderr.startswith("fever: error:"), describe(check)


def test_killed_recording_is_read_up_to_where_it_ends(cli, fever, tmp_path):
    write(tmp_path / "app.py", LONG_LOOP)
    trace = tmp_path / "out.trace"
    p = cli.start(fever, "record", "-o", trace, "--max-calls-per-function", "0", "app.py", cwd=tmp_path)
    p.wait_stdout("^ready$")
    time.sleep(1.0)
    p.signal(signal.SIGKILL)
    p.wait_exit(timeout=30)
    result = cli.run("show", trace, "--profile", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert re.search(r"^fever: warning: .*incomplete", result.stderr, re.M), describe(result)
    assert profile_row(show_profile(cli, trace), "__main__.step").calls > 100


def test_daemon_thread_still_running_at_exit(cli, tmp_path):
    write(tmp_path / "app.py", """
        import threading
        import time


        def tick():
            return 1


        def spin(ready):
            tick()
            ready.set()
            while True:
                time.sleep(0.01)


        ready = threading.Event()
        threading.Thread(target=spin, args=(ready,), daemon=True).start()
        ready.wait(10)
        print("main done")
    """)
    rec = record(cli, "app.py", cwd=tmp_path)
    tree = show_tree(cli, rec.trace)
    assert len(tree.threads) == 2, tree.text
    spin = tree.one("__main__.spin")
    assert tree.threads[spin.thread][1] is False, tree.text  # not the main thread
    assert "→" not in spin.text and "raised" not in spin.text, tree.text  # it never returned
    assert [c.short for c in spin.children] == ["tick"], tree.text


def test_test_code_arguments_are_not_watched_for_changes(cli, tmp_path):
    # A test's arguments (`self`, fixtures) are the test runner's objects: only the code under
    # test gets the mark; `fever check` never re-runs test code.
    write(tmp_path / "lib.py", """
        def collect(items, x):
            items.append(x)
            return len(items)
    """)
    write(tmp_path / "test_lib.py", """
        from lib import collect


        def fill(bag):
            bag.append(0)
            return collect(bag, 1)


        print(fill([]))
    """)
    rec = record(cli, "test_lib.py", cwd=tmp_path)
    assert rec.result.stdout.strip() == "2", describe(rec.result)
    tree = show_tree(cli, rec.trace)
    fill = tree.one("__main__.fill")
    assert "bag=[]" in fill.text and "→ 2" in fill.text and "mutated" not in fill.text, tree.text
    collect = tree.one("lib.collect")
    assert "items=[0]" in collect.text and "(mutated args)" in collect.text, tree.text


def test_methods_and_mutated_self(cli, tmp_path):
    write(tmp_path / "app.py", """
        class Counter:
            def __init__(self):
                self.n = 0

            def bump(self, by):
                self.n += by
                return self.n

            def peek(self):
                return self.n

            @staticmethod
            def zero():
                return 0

            @classmethod
            def make(cls):
                return cls()


        c = Counter.make()
        c.bump(2)
        c.peek()
        Counter.zero()
    """)
    rec = record(cli, "app.py", cwd=tmp_path)
    tree = show_tree(cli, rec.trace)
    bump = tree.one("__main__.Counter.bump")
    assert "by=2" in bump.text and "→ 2" in bump.text and "(mutated args)" in bump.text, tree.text
    peek = tree.one("__main__.Counter.peek")
    assert "→ 2" in peek.text and "mutated" not in peek.text, tree.text
    assert "→ 0" in tree.one("__main__.Counter.zero").text, tree.text
    make = tree.one("__main__.Counter.make")
    assert [c.name for c in make.children] == ["__main__.Counter.__init__"], tree.text


def test_strings_with_newlines_stay_on_one_line(cli, tmp_path):
    write(tmp_path / "app.py", """
        def shout(s):
            return s.upper()


        shout("one\\ntwo\\r\\nthree\\tfour \\x1b[31m é 😀")
        shout("x" * 10_000)
    """)
    rec = record(cli, "app.py", cwd=tmp_path)
    text = show(cli, rec.trace).stdout
    assert "\x1b" not in text, "a control character of the program's data reached the terminal"
    tree = parse_tree(text)
    lines = [c for c in tree.calls if c.is_("shout")]
    assert sum(c.count for c in lines) == 2, text
    assert "one\\ntwo" in lines[0].text, text
    assert all(len(c.text) < 400 for c in lines), text  # values are shortened


@pytest.mark.parametrize("args", [
    ["--snapshots", "bogus"], ["--max-calls-per-function", "-1"], ["--max-calls-per-function", "lots"],
])
def test_bad_option_values_are_usage_errors(cli, tmp_path, args):
    write(tmp_path / "app.py", "print('must not run')\n")
    result = cli.run("record", *args, "app.py", cwd=tmp_path)
    assert result.returncode == 2, describe(result)
    assert "must not run" not in result.stdout
    assert args[1] in result.stderr, describe(result)
    clean_stderr(result.stderr)


UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def seconds(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)\s*(ns|µs|us|ms|s)", text.strip())
    assert m, text
    return float(m[1]) * UNITS[m[2]]


def test_profile_times_are_consistent(cli, tmp_path):
    """Total includes callees and is not counted twice for recursive calls; self ≤ total."""
    write(tmp_path / "fib.py", FIB)
    rec = record(cli, "fib.py", cwd=tmp_path)
    rows = show_profile(cli, rec.trace)
    times = {}
    for name, row in rows.items():
        found = re.findall(r"[\d.]+\s*(?:ns|µs|us|ms|s)\b", row.text)
        assert len(found) >= 3, row.text
        total, self_, per_call = map(seconds, found[:3])
        assert self_ <= total * 1.001, row.text
        assert per_call == pytest.approx(total / row.calls, rel=0.02), row.text
        times[name] = total
    fib = profile_row(rows, "__main__.fib").name
    module = [n for n in rows if n.endswith("<module>")]
    if module:
        assert times[fib] <= times[module[0]], rows


BIG_SNAPSHOTS = """
import random

def echo(rows):
    return len(rows)

gen = random.Random(0)
for i in range(1500):
    echo([gen.randbytes(500).hex() for _ in range(32)])
print("done")
"""


def test_snapshots_larger_than_the_live_ring_are_all_recorded(cli, tmp_path):
    # ~50 MB of snapshots, all different (traces store a repeated one once) and hard to
    # compress, three times the 16 MiB live ring: the tracer must wait for the trace writer
    # (never overwrite, never stall until a timeout) and lose nothing; compressed, they still
    # take more than the ring.
    write(tmp_path / "big.py", BIG_SNAPSHOTS)
    rec = record(cli, "big.py", cwd=tmp_path, timeout=120)
    assert rec.result.stdout == "done\n"
    assert "lost" not in rec.result.stderr, describe(rec.result)
    assert rec.trace.stat().st_size > 16 << 20, rec.trace.stat().st_size
    row = profile_row(show_profile(cli, rec.trace, "--limit", "0"), "__main__.echo")
    assert (row.calls, row.text.count("*")) == (1500, 0), row.text


def test_snapshot_limits_are_configurable(cli, tmp_path):
    write(tmp_path / "lim.py", "def f(xs, s):\n    return len(xs)\n\nf(list(range(100)), 'y' * 50)\n")
    rec = record(cli, "--snapshot-items", "3", "--snapshot-string-bytes", "10", "lim.py", cwd=tmp_path)
    line = show_tree(cli, rec.trace).one("__main__.f").text
    assert "[0, 1, 2," in line and "[0, 1, 2, 3" not in line, line
    assert "'yyyyyyyyyy" in line and "y" * 11 not in line, line


NO_USER_CODE = """
import asyncio, collections

class Loud:
    def __repr__(self):
        print("LOUD REPR")
        return "Loud"

def keep(items):
    return items

async def wait():
    await asyncio.sleep(0.001)
    # (Not returned: asyncio 3.12 itself calls repr() on a task's result.)
    keep(collections.deque([Loud()]))

asyncio.run(wait())
print("done")
"""


def test_snapshots_run_no_user_code(cli, tmp_path):
    # deque's repr and asyncio Future's repr are C code that calls Python (the items' reprs,
    # asyncio's formatting): snapshots never call them. The deque is recorded by its (C)
    # reduction, its items as objects (Loud's repr, which prints, never runs); the Future by type.
    write(tmp_path / "quiet.py", NO_USER_CODE)
    rec = record(cli, "quiet.py", cwd=tmp_path)
    assert rec.result.stdout == "done\n", describe(rec.result)
    tree = show_tree(cli, rec.trace)
    assert "keep(items=deque([Loud()])) → deque([Loud()])" in tree.one("__main__.keep").text, tree.text
    assert "Future" in tree.find("__main__.wait")[0].text, tree.text


HUGE_ARGUMENT = """
def total(blobs):
    return sum(len(b) for b in blobs)

for i in range(3):
    print(total([bytes([i]) * (1 << 20)] * 8))
"""


def test_a_snapshot_over_4_mib_is_replaced_by_a_marker(cli, tmp_path):
    # 8 buffers of 1 MiB are each small enough to copy, together too big for one snapshot.
    write(tmp_path / "huge.py", HUGE_ARGUMENT)
    rec = record(cli, "huge.py", cwd=tmp_path)
    assert rec.result.stdout == "8388608\n" * 3
    assert "lost" not in rec.result.stderr, describe(rec.result)
    assert rec.trace.stat().st_size < 4 << 20, rec.trace.stat().st_size
    line = show_tree(cli, rec.trace).one("__main__.total").text
    assert "[×3]" in line and "→ 8388608" in line, line


LONG_RUN = """
import time

def tick(i):
    return i + 1

deadline = time.monotonic() + 3.5
i = 0
while time.monotonic() < deadline:
    i = tick(i)
print("done")
"""


def test_progress_line_on_a_terminal(tmp_path):
    # On a terminal, a recording longer than 2 s shows `fever: recording...` on stderr, redrawn
    # in place and cleared before the summary line.
    import pty
    write(tmp_path / "long.py", LONG_RUN)
    main, sub = pty.openpty()
    try:
        proc = subprocess.Popen([str(FEVER), "record", "-o", "long.trace", "long.py"], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=sub, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        os.close(sub)
        chunks = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                data = os.read(main, 4096)
            except OSError:  # the terminal closed: the process ended
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(main)
    err = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, err
    assert "\rfever: recording... " in err and " events, " in err, repr(err)
    assert "\r\x1b[K" in err, repr(err)
    assert err.rstrip().splitlines()[-1].lstrip("\r\x1b[K").startswith("fever: recorded "), repr(err)


CANCELLED_BEFORE_START = """
import asyncio


async def never_started(n):
    return n


async def main():
    task = asyncio.create_task(never_started(7))
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return "cancelled"


print(asyncio.run(main()))
"""


def test_coroutine_cancelled_before_its_first_step(cli, tmp_path):
    # asyncio throws CancelledError into a coroutine that never ran: that is its call (counted,
    # with its arguments), ending by the exception, not a resumption of nothing.
    write(tmp_path / "app.py", CANCELLED_BEFORE_START)
    rec = record(cli, "app.py", cwd=tmp_path)
    assert rec.result.stdout == "cancelled\n"
    tree = show_tree(cli, rec.trace)
    call = tree.one("__main__.never_started")
    assert "(n=7)" in call.text and "(resumed)" not in call.text, tree.text
    assert "CancelledError" in call.text, tree.text
    assert profile_row(show_profile(cli, rec.trace), "__main__.never_started").calls == 1
