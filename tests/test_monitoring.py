"""fever's sys.monitoring tool id: claimed at start (3, else 4), dormant, and never taken from
another tool (cProfile holds 2, coverage 1, debuggers 0). A program that frees it, changes its
events or replaces its callbacks keeps what was recorded before, is told so, and fever ends
without a traceback."""

import re
import signal

import pytest

from conftest import edit, run_fever, write

REPORT = """
import sys
mon = sys.monitoring
print([mon.get_tool(i) for i in range(6)])
print(sorted({mon.get_events(i) for i in range(6)}))
"""


def test_tool_id_is_claimed_and_dormant(tmp_path):
    write(tmp_path / "app.py", REPORT)
    result = run_fever("run", "app.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    tools, events = result.stdout.splitlines()
    assert tools == "[None, None, None, 'fever', None, None]"
    assert events == "[0]"  # no events enabled for any tool


def test_takes_the_next_id_when_three_is_held(tmp_path):
    # A sitecustomize-like hook: another tool already holds id 3 before fever starts.
    write(tmp_path / "sitecustomize.py", "import sys\nsys.monitoring.use_tool_id(3, 'other')\n")
    write(tmp_path / "app.py", REPORT)
    result = run_fever("run", "app.py", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "[None, None, None, 'other', 'fever', None]"


def test_runs_without_an_id_when_none_is_free(tmp_path):
    write(tmp_path / "sitecustomize.py", "import sys\nfor i in (3, 4):\n    sys.monitoring.use_tool_id(i, f'other{i}')\n")
    write(tmp_path / "app.py", REPORT)
    result = run_fever("run", "app.py", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "[None, None, None, 'other3', 'other4', None]"
    assert "fever: sys.monitoring tool ids 3 and 4 are taken" in result.stderr


def test_program_using_cprofile_keeps_its_id(tmp_path):
    write(tmp_path / "app.py", "import cProfile\ncProfile.run('sum(range(1000))', '/dev/null')\n" + REPORT)
    result = run_fever("run", "app.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "[None, None, None, 'fever', None, None]"


# The program lays hands on fever's tool (id 3) halfway: f(0..4) before, f(100..104) after.
ALTERED = """
import sys

def f(x):
    return x + 1

for i in range(5):
    f(i)

class Bye:
    def __del__(self):
        {alter}

Bye()
for i in range(100, 105):
    f(i)
print("done", flush=True)
sys.exit(3)
"""

ALTERATIONS = {
    "free_tool_id": ("sys.monitoring.free_tool_id(3)",
                     "freed fever's sys.monitoring tool 3 (sys.monitoring.free_tool_id)"),
    "set_events": ("sys.monitoring.set_events(3, 0)",
                   "changed the events of fever's sys.monitoring tool 3 (sys.monitoring.set_events)"),
    "register_callback": (
        "sys.monitoring.register_callback(3, sys.monitoring.events.PY_START, None)",
        "replaced the callbacks of fever's sys.monitoring tool 3 "
        "(sys.monitoring.register_callback)"),
}

ALTERED_LINE = "fever: warning: the program {what}: calls after that point may be missing"


@pytest.mark.parametrize("alteration", list(ALTERATIONS))
def test_a_program_that_alters_fever_s_tool_keeps_the_trace_recorded_before(tmp_path, alteration):
    alter, what = ALTERATIONS[alteration]
    write(tmp_path / "app.py", ALTERED.replace("{alter}", alter))
    result = run_fever("record", "-o", "run.trace", "app.py", cwd=tmp_path)
    assert result.returncode == 3, result.stderr  # the program's own exit code
    assert result.stdout == "done\n", result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert ALTERED_LINE.format(what=what) in lines, result.stderr
    assert lines[-1].startswith("fever: recorded "), result.stderr
    # Every call before the alteration is in the trace (3.12 and 3.13 keep a freed tool's
    # events firing, so later calls may be there too).
    shown = run_fever("show", "run.trace", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^  __main__\.f\(x=0\) → 1  \[×5\]", shown.stdout, re.M), shown.stdout
    profile = run_fever("show", "run.trace", "--profile", cwd=tmp_path)
    calls = {line.split()[-2]: int(line.split()[0]) for line in profile.stdout.splitlines()[1:]}
    assert calls.get("__main__.<module>") == 1, profile.stdout
    assert 5 <= calls.get("__main__.f", 0) <= 10, profile.stdout


WORK = "def f(x):\n    return x + 1\n"

FREES_THEN_LOOPS = """
import sys
import time

import work

sys.monitoring.free_tool_id(3)
for i in range(3000):  # until the save applies
    value = work.f(1)
    print(i, value, flush=True)
    if value == 101:
        break
    time.sleep(0.01)
"""


def test_fever_run_goes_on_reloading_after_the_program_freed_its_tool(fever, tmp_path):
    write(tmp_path / "work.py", WORK)
    write(tmp_path / "app.py", FREES_THEN_LOOPS)
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ 2$", timeout=30)
    edit(tmp_path / "work.py", "x + 1", "x + 100")
    p.wait_stdout(r"^\d+ 101$", timeout=30)
    assert p.wait_exit(timeout=30) == 0, p.report()
    p.assert_no_fever_errors()
    assert not [line for line in p.stderr if "Traceback" in line or "Error" in line], p.report()


ONCE = """
import sys

import work

print(work.f(1), flush=True)
sys.monitoring.free_tool_id(3)
print(work.f(2), flush=True)
"""


def test_fever_watch_ends_after_its_program_freed_its_tool_without_a_traceback(fever, tmp_path):
    write(tmp_path / "work.py", WORK)
    write(tmp_path / "app.py", ONCE)
    p = fever.start("watch", "app.py", cwd=tmp_path)
    p.wait_stderr(r"^fever: waiting for changes$", timeout=30)
    p.wait_stdout(r"^3$", timeout=30, from_start=True)
    # Ending `fever watch` stops its warm process, whose tool the program freed.
    p.signal(signal.SIGINT)
    assert p.wait_exit(timeout=30) == 0, p.report()
    assert not [line for line in p.stderr if "Traceback" in line or "Error" in line], p.report()
    assert ALTERED_LINE.format(what=ALTERATIONS["free_tool_id"][1]) in p.stderr, p.report()
