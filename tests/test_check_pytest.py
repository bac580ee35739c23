"""The pytest plugin: `pytest --fever-trace TRACE` makes each recorded call a test item, checked
exactly as `fever check` checks it, also spread over workers with pytest-xdist (`-n 2`).

pytest runs in a subprocess with the venv's python, in a copy of the sample project (see
test_check.py), so the plugin is loaded through its `pytest11` entry point as users get it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import PYTHON, run_python, write
from test_check import break_celsius, project, recorded, venv  # noqa: F401


def pytest_run(*args, cwd) -> subprocess.CompletedProcess:
    """`python -m pytest ARGS` in `cwd`, in its own session (killed if it hangs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.Popen([str(PYTHON), "-m", "pytest", "-p", "no:cacheprovider", *map(str, args)],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"pytest did not end\n{out}\n{err}", pytrace=False)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def outcome_line(result: subprocess.CompletedProcess) -> str:
    """pytest's last line, without its timing: `1 failed, 17 passed, 3 skipped`."""
    last = result.stdout.strip().splitlines()[-1]
    return re.sub(r"\s+in [\d.]+s.*$", "", last.strip("= "))


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_one_item_per_recorded_call_and_the_changed_one_fails(venv, project, workers):
    trace = recorded(venv, project)
    listed = pytest_run("--fever-trace", trace, "--collect-only", "-q", cwd=project)
    ids = [line for line in listed.stdout.splitlines() if "::" in line]
    assert len(ids) == 21, listed.stdout
    assert "run.trace::__main__.parse[5]" in ids and "run.trace::stats.summarize[3]" in ids, listed.stdout
    assert "run.trace::__main__.Report.add[1]" in ids, listed.stdout

    result = pytest_run("--fever-trace", trace, *workers, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcome_line(result) == "18 passed, 3 skipped", result.stdout

    break_celsius(project)
    result = pytest_run("--fever-trace", trace, "-rfs", *workers, cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert outcome_line(result) == "1 failed, 17 passed, 3 skipped", result.stdout
    assert "FAILED run.trace::__main__.normalize[1]" in result.stdout, result.stdout
    assert "-        value=20.0,\n+        value=20.5," in result.stdout, result.stdout
    assert "SKIPPED [2] pipeline.py:64: nondeterministic" in result.stdout, result.stdout


def test_select_depth_and_ini_option(venv, project):
    trace = recorded(venv, project)
    result = pytest_run("--fever-trace", trace, "--fever-select", "stats.*", "--fever-depth", "1", cwd=project)
    assert outcome_line(result) == "6 passed", result.stdout
    write(project / "pytest.ini", f"[pytest]\nfever_trace = {trace.name}\n")
    result = pytest_run("-k", "summarize", cwd=project)
    assert outcome_line(result) == "3 passed, 18 deselected", result.stdout


def test_a_trace_recorded_in_another_checkout(venv, project, tmp_path):
    trace = recorded(venv, project)
    moved = Path(shutil.move(project, tmp_path / "ci"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = pytest_run("--fever-trace", moved / trace.name, "--fever-root", moved, cwd=elsewhere)
    assert outcome_line(result) == "18 passed, 3 skipped", result.stdout


def test_an_unreadable_trace_is_a_usage_error(venv, project):
    bad = project / "bad.trace"
    bad.write_bytes(b"not a trace")
    result = pytest_run("--fever-trace", bad, cwd=project)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "fever: cannot read trace" in result.stderr, result.stderr


def test_an_unreadable_trace_raises_fever_error(tmp_path):
    # What the plugin catches, and what any Python code using CheckSession can.
    (tmp_path / "empty.trace").write_bytes(b"")
    code = ("from fever._native import CheckSession, FeverError\n"
            "try:\n    CheckSession('empty.trace')\n"
            "except FeverError as err:\n    print(type(err).__name__, issubclass(FeverError, Exception))\n")
    result = run_python("-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "FeverError True\n", result.stdout + result.stderr


def test_the_plugin_does_nothing_without_a_trace(tmp_path):
    write(tmp_path / "test_plain.py", "def test_one():\n    assert 1 + 1 == 2\n")
    result = pytest_run("-q", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcome_line(result) == "1 passed", result.stdout
    assert "fever" not in result.stdout
