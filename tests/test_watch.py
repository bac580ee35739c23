"""`fever watch`: the develop loop. The script runs, fever waits; each save reloads the changed code
and runs the script again in the same process, answering calls to unchanged slow functions from
the call cache.

Each test drives a real `fever watch` on a small project in a temporary directory (one runs a copy
of the bundled `examples/slow_boot/`), edits its files like an editor does and checks what a user
sees: the program's output run by run (watch_support.py cuts it at each `fever: waiting for
changes`), which slow functions really ran (they print `ran NAME`), and fever's own lines. Slow
functions sleep 0.25 s; nothing here asserts a timing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time

import pytest

from conftest import (CHANGE_LINE, ERROR_LINE, PYTHON, REPO, FeverProcess, edit, line_of, looping, run_fever,
                      run_python, save_by_rename, save_in_place, write)
from record_support import STANDALONE
from watch_support import CACHE_OPTS, next_run, project, rerun, watch

LOADER = """
import time

from parsing import parse_row


def load_data(path, scale=1):
    time.sleep(0.25)
    print("ran load_data", path, scale, flush=True)
    return [parse_row(line) for line in ["a,1", "b,2", "c,3"] * scale]
"""

PARSING = """
def parse_row(line):
    name, value = line.split(",")
    return (name, int(value))


def unused(line):
    return line.upper()
"""

APP = """
from loader import load_data


def summarize(rows):
    return sum(value for _, value in rows)


rows = load_data("data.csv")
print("result:", summarize(rows))
print("end")
"""

SUM = "return sum(value for _, value in rows)"


def start_basic(fever, tmp_path, *opts, cache_opts=CACHE_OPTS, app=APP):
    """The basic project (app.py → loader.load_data → parsing.parse_row) under `fever watch`,
    after its first run."""
    project(tmp_path, {"loader.py": LOADER, "parsing.py": PARSING, "app.py": app})
    p = watch(fever, tmp_path, *cache_opts, *opts, "app.py")
    first = next_run(p)
    assert first.ran("load_data") == 1, first.report
    return p, first


def assert_hit(run, name: str, count: int = 1, seconds: float = 0.25):
    hits = run.hits()
    assert name in hits, f"no `fever: cache hit {name}()` line\n{run.report}"
    assert hits[name][0] == count, run.report
    # The call it saved slept `seconds` each time: what fever reports saving is at least that.
    assert hits[name][1] >= round(0.8 * seconds * count, 2), run.report


# --------------------------------------------------------------------------------------------
# The loop


@pytest.mark.parametrize("python_m", [False, True], ids=["fever", "python-m-fever"])
def test_first_run_like_python_then_waits(fever, tmp_path, python_m):
    write(tmp_path / "app.py", """
        import sys
        print("argv:", sys.argv)
        print("name:", __name__)
        print("end")
    """)
    expected = run_python("app.py", "a", "--b", "-v", cwd=tmp_path)
    p = fever.start("watch", "app.py", "a", "--b", "-v", cwd=tmp_path, python_m=python_m)
    run = next_run(p)
    assert run.out == expected.stdout.splitlines(), run.report
    assert run.err[-1] == "fever: waiting for changes", run.report
    assert not run.fever(r"^fever: (cache hit|error|warning|re-running)"), run.report
    assert not any("Traceback" in line for line in run.err), run.report
    p.assert_running()


def test_rerun_after_a_save_in_the_same_process(fever, tmp_path):
    """Each save runs the script again from the start: the script's own globals are fresh, the
    imported modules (and their state) are the same, argv is the same."""
    write(tmp_path / "state.py", "runs = 0\n")
    app = write(tmp_path / "app.py", """
        import os
        import sys

        import state

        LABEL = "one"
        state.runs += 1
        print("runs:", state.runs)
        print("fresh:", "leftover" not in globals())
        print("argv:", sys.argv[1:])
        print("label:", LABEL)
        print("pid:", os.getpid())
        leftover = 1
        print("end")
    """)
    p = watch(fever, tmp_path, "app.py", "x", "--y")
    first = next_run(p)
    assert (first.value("runs"), first.value("fresh"), first.value("label")) == ("1", "True", "one")
    for n, label in enumerate(["two", "three"], start=2):
        edit(app, 'LABEL = "', f'LABEL = "{label}', save_by_rename if n % 2 else save_in_place)
        run = rerun(p)
        assert run.value("runs") == str(n), run.report
        assert run.value("fresh") == "True", run.report
        assert run.value("argv") == "['x', '--y']", run.report
        assert run.value("label").startswith(label), run.report
        assert run.value("pid") == first.value("pid"), run.report
    p.assert_running()


def test_identical_save_does_not_rerun(fever, tmp_path):
    p, _ = start_basic(fever, tmp_path)
    for name, save in (("loader.py", save_in_place), ("app.py", save_by_rename), ("parsing.py", save_in_place)):
        save(tmp_path / name, (tmp_path / name).read_text())
    # A wrong re-run would show up at once; give it time to, then make a real change.
    time.sleep(1.0)
    edit(tmp_path / "app.py", SUM, "return -sum(value for _, value in rows)")
    run = rerun(p)
    assert run.value("result") == "-6", run.report
    assert len(p.fever_lines(r"^fever: re-running ")) == 1, p.report()


def test_exception_in_a_rerun_is_shown_and_the_loop_keeps_waiting(fever, tmp_path):
    app_text = APP.replace('rows = load_data("data.csv")\nprint("result:", summarize(rows))\nprint("end")\n',
                           'try:\n    rows = load_data("data.csv")\n    print("result:", summarize(rows))\n'
                           'finally:\n    print("end")\n')
    p, _ = start_basic(fever, tmp_path, app=app_text)
    bad = edit(tmp_path / "app.py", SUM, "return sum(value for _, value in rows) // 0")
    run = rerun(p)
    assert "Traceback (most recent call last):" in run.err, run.report
    assert any(line.startswith("ZeroDivisionError") for line in run.err), run.report
    where = [line for line in run.err if re.search(r'File ".*app\.py", line \d+, in summarize', line)]
    assert where and f"line {line_of(bad, '// 0')}," in where[-1], run.report
    assert not [line for line in run.out if line.startswith("result:")], run.report
    assert run.ran("load_data") == 0, run.report  # still answered from the cache
    p.assert_running()
    edit(tmp_path / "app.py", "return sum(value for _, value in rows) // 0",
         "return sum(value for _, value in rows) * 2")
    run = rerun(p)
    assert run.value("result") == "12", run.report
    assert not any("Traceback" in line for line in run.err), run.report
    assert run.ran("load_data") == 0, run.report


def test_exception_in_the_first_run(fever, tmp_path):
    app_text = APP.replace('print("result:", summarize(rows))\n',
                           'raise ValueError("not ready")\nprint("result:", summarize(rows))\n')
    project(tmp_path, {"loader.py": LOADER, "parsing.py": PARSING, "app.py": app_text})
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    first = next_run(p, end=r"^ran load_data ")
    assert "Traceback (most recent call last):" in first.err, first.report
    assert "ValueError: not ready" in first.err, first.report
    assert first.err.index("ValueError: not ready") < first.err.index("fever: waiting for changes"), first.report
    p.assert_running()
    edit(tmp_path / "app.py", 'raise ValueError("not ready")\n', "")
    run = rerun(p)
    assert run.value("result") == "6", run.report
    assert run.ran("load_data") == 0, run.report  # the call of the failed run was cached
    assert_hit(run, "load_data")


def test_sys_exit_with_a_code(fever, tmp_path):
    app = write(tmp_path / "app.py", """
        import sys

        print("end")
        sys.exit(3)
    """)
    p = watch(fever, tmp_path, "app.py")
    run = next_run(p)
    assert run.fever()[-2:] == ["fever: the program exited with code 3", "fever: waiting for changes"], run.report
    assert not any("Traceback" in line or "SystemExit" in line for line in run.err), run.report
    edit(app, "sys.exit(3)", "sys.exit(0)")
    run = rerun(p)
    assert not run.fever(r"exited with code"), run.report
    edit(app, "sys.exit(0)", "sys.exit(5)")
    run = rerun(p)
    assert "fever: the program exited with code 5" in run.err, run.report
    p.assert_running()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_waiting_exits_cleanly(fever, tmp_path, sig):
    p, _ = start_basic(fever, tmp_path)
    edit(tmp_path / "app.py", SUM, "return -sum(value for _, value in rows)")
    rerun(p)
    p.signal(sig)
    assert p.wait_exit() == 0, p.report()
    assert not any("Traceback" in line or "KeyboardInterrupt" in line for line in p.stderr), p.report()


@pytest.mark.parametrize("when", ["first run", "re-run"])
def test_ctrl_c_while_the_script_runs(fever, tmp_path, when):
    looping_app = 'import time\nprint("started", flush=True)\ntime.sleep(60)\nprint("end")\n'
    app = write(tmp_path / "app.py", looping_app if when == "first run" else 'print("end")\n')
    p = watch(fever, tmp_path, "app.py")
    if when == "re-run":
        next_run(p)
        save_in_place(app, looping_app)
    p.wait_stdout(r"^started$")
    p.wait_asleep()
    p.signal(signal.SIGINT)
    code = p.wait_exit()
    assert code in (130, -signal.SIGINT), p.report()
    assert any("KeyboardInterrupt" in line for line in p.stderr), p.report()
    assert p.stdout[-1] == "started", p.report()


def test_syntax_error_in_an_imported_module_keeps_waiting(fever, tmp_path, save):
    p, _ = start_basic(fever, tmp_path)
    parsing = tmp_path / "parsing.py"
    bad = edit(parsing, "def parse_row(line):", "def parse_row(line)", save)
    error = p.wait_stderr(r"^fever: error: (.*parsing\.py):(\d+): (.+)$")
    assert int(error[2]) == line_of(bad, "def parse_row(line)"), p.report()
    assert "expected ':'" in error[3], p.report()
    p.assert_running()
    # The next good save re-runs (once: the bad save did not).
    save(parsing, bad.replace("def parse_row(line)", "def parse_row(line):")
         .replace("return (name, int(value))", "return (name, int(value) * 2)"))
    run = rerun(p)
    assert run.value("result") == "12", run.report
    assert run.ran("load_data") == 1, run.report  # parse_row changed
    assert len(p.fever_lines(ERROR_LINE)) == 1, p.report()
    assert not any("Traceback" in line for line in p.stderr), p.report()


def test_syntax_error_in_the_script_shows_pythons_error(fever, tmp_path):
    p, _ = start_basic(fever, tmp_path)
    app = tmp_path / "app.py"
    bad = edit(app, "def summarize(rows):", "def summarize(rows)")
    run = next_run(p, end=None)
    assert any("SyntaxError" in line for line in run.err), run.report
    assert any("expected ':'" in line for line in run.err), run.report
    p.assert_running()
    save_in_place(app, bad.replace("def summarize(rows)", "def summarize(rows):")
                  .replace(SUM, "return -sum(value for _, value in rows)"))
    run = rerun(p)
    assert run.value("result") == "-6", run.report
    assert run.ran("load_data") == 0, run.report


# --------------------------------------------------------------------------------------------
# The call cache


def test_edit_the_fast_function_answers_the_loader_from_the_cache(fever, tmp_path, save):
    p, first = start_basic(fever, tmp_path)
    assert first.value("result") == "6"
    assert not first.hits(), first.report
    edit(tmp_path / "app.py", SUM, "return max(value for _, value in rows) * 100", save)
    run = rerun(p)
    assert run.value("result") == "300", run.report
    assert run.ran("load_data") == 0, run.report
    assert_hit(run, "load_data")
    assert list(run.hits()) == ["load_data"], run.report
    # And again: every re-run hits.
    edit(tmp_path / "app.py", "return max(value for _, value in rows) * 100", "return len(rows)", save)
    run = rerun(p)
    assert run.value("result") == "3", run.report
    assert run.ran("load_data") == 0, run.report
    assert_hit(run, "load_data")


def test_edit_the_cached_function_calls_it_again(fever, tmp_path):
    p, _ = start_basic(fever, tmp_path)
    edit(tmp_path / "loader.py", '["a,1", "b,2", "c,3"]', '["a,1", "b,2", "c,30"]')
    run = rerun(p)
    assert any(CHANGE_LINE.match(line) and "load_data" in line for line in run.err), run.report
    assert run.ran("load_data") == 1, run.report
    assert run.value("result") == "33", run.report
    assert "load_data" not in run.hits(), run.report
    # The new code's result is what the cache answers now.
    edit(tmp_path / "app.py", SUM, "return max(value for _, value in rows)")
    run = rerun(p)
    assert run.value("result") == "30", run.report
    assert run.ran("load_data") == 0, run.report
    assert_hit(run, "load_data")


def test_edit_a_helper_in_another_module_calls_the_loader_again(fever, tmp_path):
    p, _ = start_basic(fever, tmp_path)
    # A function of that module the loader never reached: still a hit.
    edit(tmp_path / "parsing.py", "return line.upper()", "return line.lower()")
    run = rerun(p)
    assert run.ran("load_data") == 0, run.report
    assert_hit(run, "load_data")
    # The helper it called: the loader really runs, with the new helper.
    edit(tmp_path / "parsing.py", "return (name, int(value))", "return (name, int(value) * 10)")
    run = rerun(p)
    assert any(CHANGE_LINE.match(line) and "parse_row" in line for line in run.err), run.report
    assert run.ran("load_data") == 1, run.report
    assert run.value("result") == "60", run.report
    edit(tmp_path / "app.py", SUM, "return -sum(value for _, value in rows)")
    run = rerun(p)
    assert run.value("result") == "-60", run.report
    assert run.ran("load_data") == 0, run.report


def test_arguments_keywords_and_defaults_are_part_of_the_key(fever, tmp_path):
    p, first = start_basic(fever, tmp_path)  # load_data("data.csv")
    app = tmp_path / "app.py"
    steps = [  # (call, really runs?, result)
        ('load_data("data.csv", scale=1)', False, "6"),  # the default, given
        ('load_data(path="data.csv")', False, "6"),  # by keyword
        ('load_data("data.csv", scale=2)', True, "12"),  # another value
        ('load_data("data.csv", 2)', False, "12"),  # the same, positional
        ('load_data(scale=2, path="data.csv")', False, "12"),  # keywords in another order
        ('load_data("other.csv", scale=2)', True, "12"),  # another path
        ('load_data("data.csv")', False, "6"),  # the first call is still cached
    ]
    current = 'load_data("data.csv")'
    for call, runs, result in steps:
        edit(app, f"rows = {current}", f"rows = {call}")
        current = call
        run = rerun(p)
        assert run.value("result") == result, f"after changing the call to {call}\n{run.report}"
        assert run.ran("load_data") == int(runs), f"after changing the call to {call}\n{run.report}"
        if not runs:
            assert_hit(run, "load_data")


def test_repeated_calls_in_one_run_hit_and_are_counted(fever, tmp_path):
    app_text = APP.replace(
        'rows = load_data("data.csv")\nprint("result:", summarize(rows))\n',
        'rows = [load_data("data.csv") for _ in range(3)]\nprint("result:", [summarize(r) for r in rows])\n')
    p, first = start_basic(fever, tmp_path, app=app_text)
    assert first.value("result") == "[6, 6, 6]", first.report
    assert_hit(first, "load_data", count=2)  # the calls of the first run are cached too
    assert "fever: cache hit load_data() ×2 saved" in " ".join(first.err), first.report
    edit(tmp_path / "app.py", SUM, "return -sum(value for _, value in rows)")
    run = rerun(p)
    assert run.value("result") == "[-6, -6, -6]", run.report
    assert run.ran("load_data") == 0, run.report
    assert_hit(run, "load_data", count=3)


def test_a_mutated_result_does_not_change_later_hits(fever, tmp_path):
    project(tmp_path, {
        "store.py": """
            import time


            def load_table(name):
                time.sleep(0.25)
                print("ran load_table", name, flush=True)
                return {"name": name, "rows": [[1, 2], [3, 4]]}
        """,
        "app.py": """
            from store import load_table


            def show(table):
                return f"{table['name']} {table['rows']}"


            table = load_table("t")
            print("result:", show(table))
            table["rows"][0].append(99)
            table["rows"].append([5])
            table["name"] = "changed"
            again = load_table("t")
            print("again:", show(again))
            again["rows"].clear()
            print("end")
        """,
    })
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    first = next_run(p)
    assert first.ran("load_table") == 1, first.report
    assert first.value("result") == first.value("again") == "t [[1, 2], [3, 4]]", first.report
    for n in range(2):
        edit(tmp_path / "app.py", "return f\"{table['name']}", f"return f\"{n}:{{table['name']}}")
        run = rerun(p)
        assert run.ran("load_table") == 0, run.report
        assert run.value("result") == run.value("again") == f"{n}:t [[1, 2], [3, 4]]", run.report
        assert_hit(run, "load_table", count=2)
        if n == 0:
            edit(tmp_path / "app.py", "return f\"0:{table['name']}", "return f\"{table['name']}")
            rerun(p)


def test_a_slow_function_of_the_script_itself_is_cached(fever, tmp_path):
    app = write(tmp_path / "app.py", """
        import time


        def crunch(n):
            time.sleep(0.25)
            print("ran crunch", n, flush=True)
            return n * 2


        def label(x):
            return f"value {x}"


        print("result:", label(crunch(21)))
        print("end")
    """)
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    first = next_run(p)
    assert first.ran("crunch") == 1 and first.value("result") == "value 42", first.report
    edit(app, 'return f"value {x}"', 'return f"crunched {x}"')
    run = rerun(p)
    assert run.value("result") == "crunched 42", run.report
    assert run.ran("crunch") == 0, run.report
    assert_hit(run, "crunch")
    edit(app, "return n * 2", "return n * 3")
    run = rerun(p)
    assert run.value("result") == "crunched 63", run.report
    assert run.ran("crunch") == 1, run.report


def test_no_cache_calls_everything(fever, tmp_path):
    p, _ = start_basic(fever, tmp_path, cache_opts=("--no-cache",))
    for n in range(2):
        edit(tmp_path / "app.py", SUM, f"return {n} + sum(value for _, value in rows)")
        run = rerun(p)
        assert run.ran("load_data") == 1, run.report
        assert not run.hits(), run.report
        assert run.value("result") == str(6 + n), run.report
        edit(tmp_path / "app.py", f"return {n} + sum(value for _, value in rows)", SUM)
        rerun(p)


def test_calls_faster_than_cache_min_ms_are_not_cached(fever, tmp_path):
    p, _ = start_basic(fever, tmp_path, cache_opts=("--cache-min-ms", "1000"))
    edit(tmp_path / "app.py", SUM, "return -sum(value for _, value in rows)")
    run = rerun(p)
    assert run.ran("load_data") == 1, run.report
    assert not run.hits(), run.report


BIG = """
import time


def big_a():
    time.sleep(0.25)
    print("ran big_a", flush=True)
    return b"a" * 6_000_000


def big_b():
    time.sleep(0.25)
    print("ran big_b", flush=True)
    return b"b" * 6_000_000
"""


@pytest.mark.parametrize("size", ["10M", "64M"])
def test_cache_size_evicts_the_least_recently_used(fever, tmp_path, size):
    project(tmp_path, {"big.py": BIG, "app.py": """
        from big import big_a, big_b

        first = big_a()
        second = big_b()
        print("result:", len(first) + len(second), first[:1] + second[:1])
        print("end")
    """})
    p = watch(fever, tmp_path, *CACHE_OPTS, "--cache-size", size, "-v", "app.py")
    first = next_run(p)
    assert first.ran("big_a") == first.ran("big_b") == 1, first.report
    # Now big_b is called first: a hit (the most recent entry); with 10M, big_a (6 MB) was
    # evicted to make room for big_b's 6 MB, so it really runs.
    edit(tmp_path / "app.py", "first = big_a()\nsecond = big_b()", "second = big_b()\nfirst = big_a()")
    run = rerun(p)
    assert run.value("result") == "12000000 b'ab'", run.report
    assert run.ran("big_b") == 0, run.report
    assert_hit(run, "big_b")
    evicted = p.fever_lines(r"\bevicted\b")
    if size == "10M":
        assert run.ran("big_a") == 1, run.report
        assert evicted, p.report()
    else:
        assert run.ran("big_a") == 0, run.report
        assert_hit(run, "big_a")
        assert not evicted, p.report()


@pytest.mark.parametrize("size", ["512M", "64K", "10M", "1G", "2000000"])
def test_cache_size_values(fever, tmp_path, size):
    p, _ = start_basic(fever, tmp_path, "--cache-size", size)
    edit(tmp_path / "app.py", SUM, "return -sum(value for _, value in rows)")
    run = rerun(p)
    assert run.value("result") == "-6", run.report
    assert run.ran("load_data") == 0, run.report  # a 3-row result fits in each


def test_cache_size_invalid_value_is_a_clear_error(tmp_path):
    write(tmp_path / "app.py", 'print("end")\n')
    result = run_fever("watch", "--cache-size", "lots", "app.py", cwd=tmp_path)
    assert result.returncode == 2, result
    assert "--cache-size" in result.stderr and "lots" in result.stderr, result
    assert result.stdout == "", result
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr, result


UNSNAPSHOTTABLE = {
    "open file": ("source = open(__file__)", "source.close()"),
    "lock": ("source = threading.Lock()", ""),
    "generator": ("source = (i for i in range(3))", ""),
    "socket": ("source = socket.socket()", "source.close()"),
}


@pytest.mark.parametrize("kind", list(UNSNAPSHOTTABLE))
def test_unsnapshottable_argument_is_not_cached_and_v_says_why(fever, tmp_path, kind):
    setup, teardown = UNSNAPSHOTTABLE[kind]
    project(tmp_path, {
        "reader.py": """
            import time


            def consume(source):
                time.sleep(0.25)
                print("ran consume", flush=True)
                return 42
        """,
        "app.py": f"""
            import socket
            import threading

            from reader import consume

            LABEL = "one"
            {setup}
            print("result:", LABEL, consume(source))
            {teardown}
            print("end")
        """,
    })
    p = watch(fever, tmp_path, *CACHE_OPTS, "-v", "app.py")
    first = next_run(p)
    assert first.ran("consume") == 1, first.report
    edit(tmp_path / "app.py", 'LABEL = "one"', 'LABEL = "two"')
    run = rerun(p)
    assert run.value("result") == "two 42", run.report
    assert run.ran("consume") == 1, run.report
    assert not run.hits(), run.report
    why = p.fever_lines(r"^fever: not caching consume\(\): ")
    assert why, p.report()
    assert all(re.search(r"\bsource\b", line) for line in why), p.report()


def test_not_cached_without_v_says_nothing(fever, tmp_path):
    project(tmp_path, {
        "reader.py": "import time\n\ndef consume(source):\n    time.sleep(0.25)\n    return 42\n",
        "app.py": "from reader import consume\n\nwith open(__file__) as f:\n"
                  "    print('result:', consume(f))\nprint('end')\n",
    })
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    next_run(p)
    assert not p.fever_lines(r"not caching"), p.report()


def test_a_function_that_raises_is_not_cached(fever, tmp_path):
    project(tmp_path, {
        "remote.py": """
            import time


            def fetch(n):
                time.sleep(0.25)
                print("ran fetch", n, flush=True)
                raise ConnectionError(f"server {n} is down")
        """,
        "app.py": """
            from remote import fetch

            LABEL = "one"
            try:
                fetch(1)
            except ConnectionError as e:
                print("result:", LABEL, e)
            print("end")
        """,
    })
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    first = next_run(p)
    assert first.ran("fetch") == 1 and first.value("result") == "one server 1 is down", first.report
    edit(tmp_path / "app.py", 'LABEL = "one"', 'LABEL = "two"')
    run = rerun(p)
    assert run.ran("fetch") == 1, run.report
    assert run.value("result") == "two server 1 is down", run.report
    assert not run.hits(), run.report


def test_a_function_that_mutates_its_argument_is_not_cached(fever, tmp_path):
    project(tmp_path, {
        "filler.py": """
            import time


            def fill(target, n):
                time.sleep(0.25)
                print("ran fill", n, flush=True)
                target.extend(range(n))
                return len(target)
        """,
        "app.py": """
            from filler import fill

            LABEL = "one"
            items = []
            count = fill(items, 3)
            print("result:", LABEL, count, items)
            print("end")
        """,
    })
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    first = next_run(p)
    assert first.value("result") == "one 3 [0, 1, 2]", first.report
    edit(tmp_path / "app.py", 'LABEL = "one"', 'LABEL = "two"')
    run = rerun(p)
    assert run.value("result") == "two 3 [0, 1, 2]", run.report
    assert run.ran("fill") == 1, run.report
    assert not run.hits(), run.report


def test_generators_and_coroutines_are_not_cached(fever, tmp_path):
    project(tmp_path, {
        "gens.py": """
            import time


            def numbers(n):
                time.sleep(0.25)
                print("ran numbers", n, flush=True)
                yield from range(n)


            async def fetch(n):
                time.sleep(0.25)
                print("ran fetch", n, flush=True)
                return n * 10
        """,
        "app.py": """
            import asyncio

            from gens import fetch, numbers

            LABEL = "one"
            print("result:", LABEL, list(numbers(3)), asyncio.run(fetch(2)))
            print("end")
        """,
    })
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    first = next_run(p)
    assert first.value("result") == "one [0, 1, 2] 20", first.report
    edit(tmp_path / "app.py", 'LABEL = "one"', 'LABEL = "two"')
    run = rerun(p)
    assert run.value("result") == "two [0, 1, 2] 20", run.report
    assert run.ran("numbers") == 1 and run.ran("fetch") == 1, run.report
    assert not run.hits(), run.report


def test_warns_once_when_a_hit_skips_output_or_file_writes(fever, tmp_path):
    proj = tmp_path / "proj"
    out = tmp_path / "written.txt"
    project(proj, {
        "work.py": f"""
            import time

            OUT = {str(out)!r}


            def noisy(n):
                time.sleep(0.25)
                print("ran noisy", n, flush=True)
                return n


            def writer(n):
                time.sleep(0.25)
                with open(OUT, "w") as f:
                    f.write(str(n))
                return n


            def quiet(n):
                time.sleep(0.25)
                return n
        """,
        "app.py": """
            import os

            from work import OUT, noisy, quiet, writer

            LABEL = "one"
            if os.path.exists(OUT):
                os.remove(OUT)
            print("result:", LABEL, noisy(1), writer(2), quiet(3), os.path.exists(OUT))
            print("end")
        """,
    })
    p = watch(fever, proj, *CACHE_OPTS, "app.py")
    first = next_run(p)
    assert first.value("result") == "one 1 2 3 True", first.report
    assert not first.fever(r"^fever: warning: "), first.report
    edit(proj / "app.py", 'LABEL = "one"', 'LABEL = "two"')
    run = rerun(p)
    # All three were answered from the cache: the hit did not print nor write the file.
    assert run.value("result") == "two 1 2 3 False", run.report
    assert run.ran("noisy") == 0, run.report
    assert set(run.hits()) == {"noisy", "writer", "quiet"}, run.report
    warnings = run.fever(r"^fever: warning: ")
    assert "fever: warning: noisy() printed output when it ran; cache hits skip it" in warnings, run.report
    assert "fever: warning: writer() wrote files when it ran; cache hits skip that" in warnings, run.report
    assert len(warnings) == 2, run.report  # nothing about quiet()
    edit(proj / "app.py", 'LABEL = "two"', 'LABEL = "three"')
    run = rerun(p)
    assert run.value("result") == "three 1 2 3 False", run.report
    assert not run.fever(r"^fever: warning: "), run.report  # once


LRU_DECORATORS = ["functools.lru_cache", "functools.lru_cache(maxsize=None)", "functools.cache"]

RATES = """
import functools


@{decorator}
def rate(currency):
    return {{"EUR": 1.0, "USD": 1.1}}[currency]
"""


@pytest.mark.parametrize("decorator", LRU_DECORATORS)
def test_lru_cache_of_the_project_is_cleared_when_its_code_changes(fever, tmp_path, decorator):
    project(tmp_path, {
        "rates.py": RATES.format(decorator=decorator),
        "app.py": """
            from rates import rate

            LABEL = "one"
            print("result:", LABEL, rate("USD"), rate("USD"))
            print("end")
        """,
    })
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    assert next_run(p).value("result") == "one 1.1 1.1"
    edit(tmp_path / "rates.py", '"USD": 1.1', '"USD": 1.25')
    run = rerun(p)
    assert run.value("result") == "one 1.25 1.25", run.report
    edit(tmp_path / "app.py", 'LABEL = "one"', 'LABEL = "two"')
    run = rerun(p)
    assert run.value("result") == "two 1.25 1.25", run.report


def test_lru_cache_is_cleared_under_fever_run_too(fever, tmp_path):
    write(tmp_path / "rates.py", RATES.format(decorator="functools.lru_cache"))
    write(tmp_path / "app.py", looping("from rates import rate\n", 'rate("USD")'))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ 1\.1$")
    edit(tmp_path / "rates.py", '"USD": 1.1', '"USD": 1.25')
    p.wait_stderr(r"^fever: reloaded .*rate\b")
    p.wait_stdout(r"^\d+ 1\.25$")
    p.wait_iterations(3)
    assert p.stdout[-1].endswith(" 1.25"), p.report()
    p.assert_not_restarted()


def test_lru_caches_in_a_class_are_cleared(fever, tmp_path):
    """Caches on methods: as an instance method, a static method and a class method."""
    project(tmp_path, {
        "rates.py": """
            import functools


            class Rates:
                @functools.lru_cache
                def rate(self, currency):
                    return {"EUR": 1.0, "USD": 1.1}[currency]

                @staticmethod
                @functools.cache
                def fee(currency):
                    return {"EUR": 1, "USD": 2}[currency]

                @classmethod
                @functools.lru_cache(maxsize=None)
                def name(cls, currency):
                    return "dollar"
        """,
        "app.py": """
            from rates import Rates

            LABEL = "one"
            rates = Rates()
            print("result:", LABEL, rates.rate("USD"), Rates.fee("USD"), Rates.name("USD"))
            print("end")
        """,
    })
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    assert next_run(p).value("result") == "one 1.1 2 dollar"
    edit(tmp_path / "rates.py", '"USD": 1.1', '"USD": 1.25')
    run = rerun(p)
    assert run.value("result") == "one 1.25 2 dollar", run.report
    edit(tmp_path / "rates.py", '"USD": 2', '"USD": 3')
    run = rerun(p)
    assert run.value("result") == "one 1.25 3 dollar", run.report
    edit(tmp_path / "rates.py", 'return "dollar"', 'return "US dollar"')
    run = rerun(p)
    assert run.value("result") == "one 1.25 3 US dollar", run.report
    p.assert_running()


# --------------------------------------------------------------------------------------------
# Ways to start it


def test_dash_m_module(fever, tmp_path):
    project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/parsing.py": PARSING,
        "pkg/loader.py": LOADER.replace("from parsing import", "from pkg.parsing import"),
        "pkg/main.py": APP.replace("from loader import", "from pkg.loader import")
                          .replace('print("end")', 'print("name:", __name__)\nprint("end")'),
    })
    p = watch(fever, tmp_path, *CACHE_OPTS, "-m", "pkg.main")
    first = next_run(p)
    assert first.value("result") == "6" and first.value("name") == "__main__", first.report
    edit(tmp_path / "pkg" / "main.py", SUM, "return -sum(value for _, value in rows)")
    run = rerun(p, script=r".*pkg\.main")
    assert run.value("result") == "-6", run.report
    assert run.ran("load_data") == 0, run.report
    assert_hit(run, "load_data")
    edit(tmp_path / "pkg" / "parsing.py", "return (name, int(value))", "return (name, int(value) * 2)")
    run = rerun(p, script=r".*pkg\.main")
    assert run.value("result") == "-12", run.report
    assert run.ran("load_data") == 1, run.report


def test_root_option_watches_modules_beside_the_script_dir(fever, tmp_path):
    project(tmp_path, {
        "loader.py": LOADER,
        "parsing.py": PARSING,
        "tools/job.py": """
            import os
            import sys

            sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            from loader import load_data

            print("result:", sum(value for _, value in load_data("data.csv")))
            print("end")
        """,
    })
    p = watch(fever, tmp_path, *CACHE_OPTS, "--root", ".", "tools/job.py")
    first = next_run(p)
    assert first.value("result") == "6", first.report
    edit(tmp_path / "parsing.py", "return (name, int(value))", "return (name, int(value) * 3)")
    run = rerun(p, script="tools/job.py")
    assert run.value("result") == "18", run.report
    assert run.ran("load_data") == 1, run.report


@pytest.mark.skipif(not STANDALONE.exists(), reason="standalone binary not built (make test builds it)")
def test_standalone_binary(fever, tmp_path):
    project(tmp_path, {"loader.py": LOADER, "parsing.py": PARSING, "app.py": APP})
    p = FeverProcess([str(STANDALONE), "watch", "--python", str(PYTHON), *CACHE_OPTS, "app.py"], cwd=tmp_path)
    fever.processes.append(p)
    first = next_run(p)
    assert first.ran("load_data") == 1 and first.value("result") == "6", first.report
    edit(tmp_path / "app.py", SUM, "return -sum(value for _, value in rows)")
    run = rerun(p)
    assert run.value("result") == "-6", run.report
    assert run.ran("load_data") == 0, run.report
    assert_hit(run, "load_data")
    p.signal(signal.SIGINT)
    assert p.wait_exit() == 0, p.report()


def test_the_slow_boot_example(fever, tmp_path):
    example = tmp_path / "slow_boot"
    shutil.copytree(REPO / "examples" / "slow_boot", example, ignore=shutil.ignore_patterns("__pycache__", ".fever"))
    expected = run_python("app.py", cwd=example)
    assert expected.returncode == 0, expected.stderr
    p = watch(fever, example, "app.py")  # the default options
    first = next_run(p, end=r"^summary: ", timeout=30)
    assert first.out == expected.stdout.splitlines(), first.report
    assert first.out[0] == "loading data.csv...", first.report
    summary = first.value("summary")
    top = re.search(r"top regions: (.*)$", summary)[1]
    assert top.count(",") == 2, summary  # three regions
    # Edit the fast step: the new summary at once, the loader answered from the cache.
    edit(example / "app.py", "reverse=True)[:3]", "reverse=True)[:2]")
    run = rerun(p, end=r"^summary: ")
    assert not any(line.startswith("loading") for line in run.out), run.report
    assert run.value("summary") == summary.rsplit(", ", 1)[0], run.report
    assert_hit(run, "load_data", seconds=1.5)
    assert "fever: warning: load_data() printed output when it ran; cache hits skip it" in run.err, run.report
    # Edit the helper the loader calls (another module): it loads again.
    edit(example / "rows.py", 'units=int(fields["units"]),', 'units=2 * int(fields["units"]),')
    run = rerun(p, end=r"^summary: ")
    assert run.out[0] == "loading data.csv...", run.report
    revenue = float(re.search(r"revenue ([\d.]+)", summary)[1])
    assert float(re.search(r"revenue ([\d.]+)", run.value("summary"))[1]) == pytest.approx(2 * revenue), run.report
    assert "load_data" not in run.hits(), run.report


# --------------------------------------------------------------------------------------------
# --persist-cache


POINTS = """
import time
from dataclasses import dataclass


@dataclass
class Point:
    x: int
    y: float


def load_points(n):
    time.sleep(0.25)
    print("ran load_points", n, flush=True)
    return {"name": "pts", "points": [Point(i, i / 2) for i in range(n)], "tags": ["a", "b"],
            "nested": {"k": [1, 2.5, "s", None, True]}}
"""

POINTS_APP = """
from points import Point, load_points

LABEL = "one"
data = load_points(3)
print("result:", data)
print("types:", LABEL, all(type(p) is Point for p in data["points"]))
print("end")
"""


def start_points(fever, proj, *opts):
    p = watch(fever, proj, *CACHE_OPTS, *opts, "app.py")
    return p, next_run(p)


def stop(p):
    p.signal(signal.SIGTERM)
    assert p.wait_exit() == 0, p.report()


def cache_files(proj):
    folder = proj / ".fever" / "cache"
    return [f for f in folder.rglob("*") if f.is_file()] if folder.is_dir() else []


def test_persist_cache_survives_a_restart(fever, tmp_path):
    project(tmp_path, {"points.py": POINTS, "app.py": POINTS_APP})
    p, first = start_points(fever, tmp_path, "--persist-cache")
    assert first.ran("load_points") == 1, first.report
    result = first.value("result")
    assert "Point(x=2, y=1.0)" in result, first.report
    stop(p)
    assert cache_files(tmp_path), "nothing under .fever/cache/"
    # A new process: its first run is answered from the persisted entry, faithfully rebuilt.
    p, run = start_points(fever, tmp_path, "--persist-cache")
    assert run.ran("load_points") == 0, run.report
    assert run.value("result") == result, run.report
    assert run.value("types") == "one True", run.report
    assert_hit(run, "load_points")
    stop(p)
    # The loader changed while fever was not running: the persisted entry is stale.
    edit(tmp_path / "points.py", "Point(i, i / 2)", "Point(i, i / 4)")
    p, run = start_points(fever, tmp_path, "--persist-cache")
    assert run.ran("load_points") == 1, run.report
    assert "Point(x=2, y=0.5)" in run.value("result"), run.report
    stop(p)


def test_without_persist_cache_a_restart_calls_again(fever, tmp_path):
    project(tmp_path, {"points.py": POINTS, "app.py": POINTS_APP})
    p, first = start_points(fever, tmp_path)
    assert first.ran("load_points") == 1, first.report
    stop(p)
    p, run = start_points(fever, tmp_path)
    assert run.ran("load_points") == 1, run.report
    stop(p)


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_corrupted_cache_file_is_discarded_with_a_warning(fever, tmp_path, how):
    project(tmp_path, {"points.py": POINTS, "app.py": POINTS_APP})
    p, first = start_points(fever, tmp_path, "--persist-cache")
    result = first.value("result")
    stop(p)
    files = cache_files(tmp_path)
    assert files, "nothing under .fever/cache/"
    for f in files:
        size = f.stat().st_size
        if how == "garbage":
            f.write_bytes(os.urandom(max(size, 64)))
        else:
            f.write_bytes(f.read_bytes()[: min(16, size // 2)])
    p, run = start_points(fever, tmp_path, "--persist-cache")
    assert run.ran("load_points") == 1, run.report  # never trusted
    assert run.value("result") == result, run.report
    assert run.fever(r"^fever: warning: "), run.report
    assert not any("Traceback" in line for line in run.err), run.report
    # The cache works again from there.
    edit(tmp_path / "app.py", 'LABEL = "one"', 'LABEL = "two"')
    run = rerun(p)
    assert run.ran("load_points") == 0, run.report
    assert run.value("types") == "two True", run.report
    stop(p)
