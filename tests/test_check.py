"""`fever check`: re-invokes the calls of a recorded trace against the current code and diffs
their results.

Each test copies the sample project tests/projects/pipeline (a script and a module: dataclasses,
an enum, dicts, floats, a method, a function that raises, one that is nondeterministic, one whose
argument is a lock, one that reads stdin, one that calls sys.exit), records it with the real
`fever record`, edits it like a developer would, and runs the real `fever check`.

Recorded outermost calls (21): parse x5, normalize, Report.__init__, group, summarize x3,
Report.add x3, check_positive x2, sample_id x2 (nondeterministic: skipped), describe (a lock:
skipped), ask, leave. One level deeper: to_celsius x5 and mean x3.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO, edit, write
from record_support import clean_stderr, cli, describe, make_cli, record  # noqa: F401

PROJECT = REPO / "tests" / "projects" / "pipeline"
SUMMARY = "fever: {} passed, {} failed, {} skipped"
ALL_PASS = SUMMARY.format(18, 0, 3)


@pytest.fixture
def project(tmp_path) -> Path:
    """A fresh copy of the sample project."""
    return Path(shutil.copytree(PROJECT, tmp_path / "pipeline"))


@pytest.fixture
def venv():
    return make_cli("venv")


def recorded(cli, project: Path) -> Path:
    """Records the sample project; returns the trace."""
    rec = record(cli, "pipeline.py", cwd=project, trace=project / "run.trace")
    assert "a: 21.00 (20.0 .. 22.0)" in rec.result.stdout, describe(rec.result)
    return rec.trace


def check(cli, *args, cwd: Path, expect: int, **kwargs) -> subprocess.CompletedProcess:
    """`fever check ARGS`; asserts the exit code and that fever did not crash."""
    result = cli.run("check", *args, cwd=cwd, **kwargs)
    assert result.returncode == expect, describe(result)
    clean_stderr(result.stderr)
    return result


def summary(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if " passed, " in line]
    assert len(lines) == 1, describe(result)
    return lines[0]


def break_celsius(project: Path) -> None:
    """An edit that changes the result of normalize (and of to_celsius below it)."""
    edit(project / "pipeline.py", "return (reading.value - 32) * 5 / 9",
         "return (reading.value - 32) * 5 / 9 + 0.5")


def test_an_unchanged_project_passes(cli, project):
    trace = recorded(cli, project)
    result = check(cli, trace, cwd=project, expect=0)
    assert summary(result) == ALL_PASS
    # What the functions print while they are re-invoked is not fever's output.
    assert "adding" not in result.stdout and result.stdout == "", describe(result)


def test_a_changed_result_fails_with_a_diff_and_update_accepts_it(cli, project):
    trace = recorded(cli, project)
    break_celsius(project)
    result = check(cli, trace, cwd=project, expect=1)
    assert summary(result) == SUMMARY.format(17, 1, 3)
    out = result.stdout
    assert out.startswith("__main__.normalize(readings=[Reading(sensor='a', value=68.0, unit=Unit.F)"), out
    assert f"{project / 'pipeline.py'}:36" in out.splitlines()[0], out
    assert "--- recorded\n+++ now\n" in out, out
    assert "-        value=20.0,\n+        value=20.5,\n" in out, out

    updated = check(cli, trace, "--update", cwd=project, expect=0)
    assert "fever: updated 1 recorded result in" in updated.stderr, describe(updated)
    assert sorted(p.name for p in project.iterdir() if "trace" in p.name) == ["run.trace"]
    again = check(cli, trace, cwd=project, expect=0)
    assert summary(again) == ALL_PASS
    shown = cli.run("show", trace, cwd=project)
    assert shown.returncode == 0 and "value=20.5" in shown.stdout, describe(shown)


def test_depth_and_select(venv, project):
    trace = recorded(venv, project)
    assert summary(check(venv, trace, "--depth", "1", cwd=project, expect=0)) == SUMMARY.format(26, 0, 3)
    assert summary(check(venv, trace, "--select", "stats.*", cwd=project, expect=0)) == SUMMARY.format(3, 0, 0)
    # The outermost matching calls are the top level, wherever they are in the tree.
    assert summary(check(venv, trace, "--select", "stats.mean", cwd=project, expect=0)) == SUMMARY.format(3, 0, 0)
    assert summary(check(venv, trace, "--select", "*.to_celsius", "--select", "__main__.Report.*",
                         cwd=project, expect=0)) == SUMMARY.format(9, 0, 0)
    break_celsius(project)
    # Only the calls that were selected are re-invoked.
    check(venv, trace, "--select", "stats.*", cwd=project, expect=0)
    result = check(venv, trace, "--select", "__main__.to_celsius", cwd=project, expect=1)
    # Only the two readings in Fahrenheit convert differently.
    assert summary(result) == SUMMARY.format(3, 2, 0)
    assert result.stdout.count("__main__.to_celsius(reading=") == 2, result.stdout
    nothing = check(venv, trace, "--select", "nothing.*", cwd=project, expect=2)
    assert nothing.stderr.startswith("fever: error: no recorded call matches --select nothing.*"), describe(nothing)


def test_floats_within_the_relative_tolerance(venv, project):
    trace = recorded(venv, project)
    edit(project / "stats.py", "return sum(values) / len(values)",
         "return sum(values) / len(values) * (1 + 1e-7)")
    result = check(venv, trace, cwd=project, expect=1)
    assert summary(result) == SUMMARY.format(15, 3, 3)
    assert result.stdout.count("stats.summarize(values=") == 3, result.stdout
    assert "-    mean=21.0,\n+    mean=21.00000" in result.stdout, result.stdout
    assert summary(check(venv, trace, "--rel-tol", "1e-6", cwd=project, expect=0)) == ALL_PASS
    assert summary(check(venv, trace, "--rel-tol", "1e-8", cwd=project, expect=1)) == SUMMARY.format(15, 3, 3)


def test_exceptions_compare_by_type_and_message(venv, project):
    trace = recorded(venv, project)
    edit(project / "pipeline.py", 'raise ValueError(f"negative reading: {value}")',
         'raise ValueError(f"below zero: {value}")')
    result = check(venv, trace, cwd=project, expect=1)
    assert summary(result) == SUMMARY.format(17, 1, 3)
    assert result.stdout.startswith("__main__.check_positive(value=-1.0)"), result.stdout
    assert " raised ValueError(\n-    'negative reading: -1.0',\n+    'below zero: -1.0',\n" in result.stdout, \
        result.stdout


def test_a_function_that_now_raises_fails(venv, project):
    trace = recorded(venv, project)
    edit(project / "stats.py", "return sum(values) / len(values)", "return sum(values) / 0")
    result = check(venv, trace, cwd=project, expect=1)
    assert summary(result) == SUMMARY.format(15, 3, 3)
    assert "+raised ZeroDivisionError(" in result.stdout, result.stdout


def test_skipped_calls_say_why(venv, project):
    trace = recorded(venv, project)
    result = check(venv, trace, "-v", cwd=project, expect=0)
    skipped = [line for line in result.stderr.splitlines() if line.startswith("fever: skipped ")]
    assert skipped == [
        "fever: skipped __main__.sample_id[1]: nondeterministic: the same arguments gave different results",
        "fever: skipped __main__.sample_id[2]: nondeterministic: the same arguments gave different results",
        "fever: skipped __main__.describe[1]: cannot rebuild its arguments: argument lock: "
        "a _thread.lock recorded by its repr only",
    ], describe(result)
    quiet = check(venv, trace, "-q", cwd=project, expect=0)
    assert quiet.stderr == "" and quiet.stdout == "", describe(quiet)


def test_a_deleted_function_is_skipped(venv, project):
    trace = recorded(venv, project)
    edit(project / "pipeline.py", "def group(readings):", "def group_by_sensor(readings):")
    edit(project / "pipeline.py", "in group(celsius)", "in group_by_sensor(celsius)")
    result = check(venv, trace, "-v", cwd=project, expect=0)
    assert summary(result) == SUMMARY.format(17, 0, 4)
    assert "fever: skipped __main__.group[1]: __main__.group does not exist any more" in result.stderr


def test_junit_report(venv, project):
    trace = recorded(venv, project)
    break_celsius(project)
    report = project / "out" / "report.xml"
    report.parent.mkdir()
    check(venv, trace, "--junit", report, cwd=project, expect=1)
    suite = ET.parse(report).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("errors")) == ("21", "1", "3", "0")
    cases = suite.findall("testcase")
    assert len(cases) == 21
    failed = [c for c in cases if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [("__main__", "normalize[1]")]
    assert "+        value=20.5," in failed[0].find("failure").text
    skipped = {c.get("name"): c.find("skipped").get("message") for c in cases if c.find("skipped") is not None}
    assert sorted(skipped) == ["describe[1]", "sample_id[1]", "sample_id[2]"]
    assert skipped["sample_id[1]"].startswith("nondeterministic")
    assert os.listdir(report.parent) == ["report.xml"]


def test_a_trace_without_results_checks_nothing(venv, project):
    trace = project / "args.trace"
    record(venv, "--snapshots", "args", "pipeline.py", cwd=project, trace=trace)
    result = check(venv, trace, "-v", cwd=project, expect=0)
    assert summary(result) == SUMMARY.format(0, 0, 21)
    assert "fever: skipped __main__.parse[1]: its result was not recorded (fever record --snapshots args)" \
        in result.stderr, describe(result)
    assert result.stderr.splitlines()[-1] == "fever: warning: no recorded call could be checked", describe(result)
    hinted = check(venv, trace, cwd=project, expect=0)
    assert hinted.stderr.splitlines()[-2:] == ["fever: warning: no recorded call could be checked",
                                               "hint: see why with `fever check -v`"], describe(hinted)


def test_a_package_run_with_dash_m(venv, tmp_path):
    write(tmp_path / "app" / "__init__.py", "")
    write(tmp_path / "app" / "core.py", """
        from collections import namedtuple

        Pair = namedtuple("Pair", "left right")


        def swap(pair):
            return Pair(pair.right, pair.left)
        """)
    write(tmp_path / "app" / "cli.py", """
        from .core import Pair, swap


        class Greeter:
            def __init__(self, name):
                self.name = name

            def greet(self, times=1, *, punctuation="!"):
                return ("hello " + self.name + punctuation) * times


        def main():
            return swap(Pair(1, [2, 3]))


        if __name__ == "__main__":
            main()
            Greeter("ada").greet(2, punctuation="?")
            raise SystemExit("the main block must not run under fever check")
        """)
    trace = record(venv, "-m", "app.cli", cwd=tmp_path, expect_exit=1).trace
    result = check(venv, trace, "--depth", "1", cwd=tmp_path, expect=0)
    # main, Greeter.__init__, Greeter.greet, and swap below main.
    assert summary(result) == SUMMARY.format(4, 0, 0)
    edit(tmp_path / "app" / "cli.py", 'return ("hello " + self.name + punctuation) * times',
         'return ("hi " + self.name + punctuation) * times')
    result = check(venv, trace, cwd=tmp_path, expect=1)
    assert result.stdout.startswith("__main__.Greeter.greet(self=Greeter(name='ada'), times=2, punctuation='?')"), \
        describe(result)
    assert "-'hello ada?hello ada?'\n+'hi ada?hi ada?'\n" in result.stdout, describe(result)


def test_reprs_with_addresses_generators_and_class_bodies(venv, tmp_path):
    write(tmp_path / "kinds.py", """
        import threading


        def new_lock():
            return threading.Lock()


        def countdown(n):
            while n:
                yield n
                n -= 1


        class Config:
            DEFAULT = new_lock()


        if __name__ == "__main__":
            new_lock()
            list(countdown(3))
        """)
    trace = record(venv, "kinds.py", cwd=tmp_path).trace
    result = check(venv, trace, "-v", cwd=tmp_path, expect=0)
    # new_lock twice (the class body's call is below it, not a call to check), countdown once,
    # by the values it yielded.
    assert summary(result) == SUMMARY.format(3, 0, 0), describe(result)
    assert "Config" not in result.stderr, describe(result)


def test_a_report_that_cannot_be_written_changes_nothing(venv, project):
    trace = recorded(venv, project)
    before = trace.read_bytes()
    break_celsius(project)
    result = check(venv, trace, "--update", "--junit", project / "missing" / "report.xml", cwd=project, expect=2)
    assert "fever: error: cannot write " in result.stderr and "report.xml" in result.stderr, describe(result)
    assert trace.read_bytes() == before
    assert not (project / "missing").exists()


def test_a_trace_recorded_in_another_checkout(venv, project, tmp_path):
    trace = recorded(venv, project)
    moved = Path(shutil.move(project, tmp_path / "ci" / "checkout"))
    trace = moved / trace.name
    # The recorded root is gone: the project is looked for in the current directory ...
    assert summary(check(venv, trace, cwd=moved, expect=0)) == ALL_PASS
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lost = check(venv, trace, "-v", cwd=elsewhere, expect=0)
    assert "fever: warning: no recorded call could be checked" in lost.stderr, describe(lost)
    assert "cannot import __main__" in lost.stderr, describe(lost)
    # ... or in --root.
    assert summary(check(venv, trace, "--root", moved, cwd=elsewhere, expect=0)) == ALL_PASS
    break_celsius(moved)
    result = check(venv, trace, "--root", moved, cwd=elsewhere, expect=1)
    assert f"{moved / 'pipeline.py'}:36" in result.stdout.splitlines()[0], describe(result)


def test_runs_from_another_directory(venv, project, tmp_path):
    trace = recorded(venv, project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert summary(check(venv, trace, cwd=elsewhere, expect=0)) == ALL_PASS


@pytest.mark.parametrize("damage", ["empty", "truncated", "cut_in_header", "corrupted", "random", "missing",
                                    "older_format"])
def test_unreadable_traces_exit_2(venv, project, damage):
    trace = recorded(venv, project)
    data = trace.read_bytes()
    bad = project / "bad.trace"
    if damage == "empty":
        bad.write_bytes(b"")
    elif damage == "truncated":
        bad.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "cut_in_header":
        bad.write_bytes(data[:50])
    elif damage == "corrupted":
        middle = len(data) // 2
        bad.write_bytes(data[:middle] + bytes([data[middle] ^ 0x40]) + data[middle + 1:])
    elif damage == "random":
        bad.write_bytes(os.urandom(len(data)))
    elif damage == "older_format":
        golden = Path(__file__).resolve().parent.parent / "fever-core" / "tests" / "golden" / "v1.trace"
        bad.write_bytes(golden.read_bytes())
    result = check(venv, bad, cwd=project, expect=2)
    if damage == "older_format":
        assert "recorded by an older fever" in result.stderr, describe(result)
    assert result.stderr.startswith("fever: error: "), describe(result)
    assert "bad.trace" in result.stderr and result.stdout == "", describe(result)


def test_usage_errors_exit_2(venv, project):
    trace = recorded(venv, project)
    for args in (["--rel-tol", "-1"], ["--rel-tol", "nan"], ["--select", "["], ["--depth", "x"], []):
        result = venv.run("check", *args, *([trace] if args else []), cwd=project)
        assert result.returncode == 2, describe(result)
        assert "error" in result.stderr and "Traceback" not in result.stderr, describe(result)


def test_allow_pickle_is_gone(venv, project):
    """The flag never did anything (traces hold no pickles): it is an unknown option now."""
    trace = recorded(venv, project)
    result = check(venv, trace, "--allow-pickle", cwd=project, expect=2)
    assert "unexpected argument '--allow-pickle'" in result.stderr, describe(result)
    assert result.stdout == "", describe(result)


@pytest.mark.parametrize("during", ["call", "import"])
def test_ctrl_c_stops_the_run_cleanly(venv, tmp_path, during):
    write(tmp_path / "slow.py", """
        import os
        import time


        def wait(seconds):
            if os.environ.get("SLOW") == "call":
                open("started", "w").close()
                seconds = 60
            time.sleep(seconds)
            return seconds


        if os.environ.get("SLOW") == "import":
            open("started", "w").close()
            time.sleep(60)

        if __name__ == "__main__":
            wait(0)
        """)
    trace = record(venv, "slow.py", cwd=tmp_path).trace
    proc = subprocess.Popen([*venv.argv("check", trace)], cwd=tmp_path, env={**os.environ, "SLOW": during},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err
    if during == "call":
        assert "fever: 0 passed, 0 failed, 0 skipped (interrupted)" in err, err
    else:
        assert err == "", err
    clean_stderr(err)
