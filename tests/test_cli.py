"""The command line itself: help, version, usage errors, a missing script."""

import os
import re
import sys

import pytest

from conftest import run_fever, write


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]], ids=["help", "run-help"])
def test_help_exits_0_and_mentions_run(tmp_path, args):
    result = run_fever(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout


def test_run_help_lists_the_options(tmp_path):
    result = run_fever("run", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for option in ("--no-watch", "--root", "-m"):
        assert option in result.stdout


def test_version(tmp_path):
    result = run_fever("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fever 0.1.0"


def test_python_m_fever_version(tmp_path):
    result = run_fever("--version", cwd=tmp_path, python_m=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fever 0.1.0"


@pytest.mark.parametrize(
    "args, culprit",
    [(["--bogus"], "--bogus"), (["run", "--bogus", "app.py"], "--bogus"), (["nosuchcommand"], "nosuchcommand")],
    ids=["top-level-option", "run-option", "unknown-command"],
)
def test_usage_errors_exit_2(tmp_path, args, culprit):
    write(tmp_path / "app.py", "print('must not run')\n")
    result = run_fever(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert culprit in result.stderr
    assert "must not run" not in result.stdout
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr


def test_missing_script_is_a_one_line_error(tmp_path):
    result = run_fever("run", "nope.py", cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("fever: error:")]
    assert len(errors) == 1, result.stderr
    assert "nope.py" in errors[0]
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr


@pytest.mark.parametrize("command", ["run", "record"])
def test_naming_the_interpreter_in_the_scripts_place_is_a_one_line_error(tmp_path, command):
    # As with `py-spy record -- python app.py`: fever starts Python itself.
    write(tmp_path / "app.py", "print('must not run')\n")
    python = os.path.realpath(sys.executable)
    result = run_fever(command, "--no-watch", "--", python, "app.py", cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    with_root = run_fever(command, "--no-watch", "--root", ".", "--", python, "app.py", cwd=tmp_path)
    assert with_root.stderr == result.stderr, with_root.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("fever: error:")]
    assert errors == [
        f"fever: error: {python} is a program, not a Python script: fever starts Python itself "
        "(`fever run script.py ARGS` or `fever run -m module ARGS`)"
    ], result.stderr
    assert "must not run" not in result.stdout
    assert "SyntaxError" not in result.stderr and "Traceback" not in result.stderr


def test_missing_module_fails_cleanly(tmp_path):
    result = run_fever("run", "-m", "no_such_module_here", cwd=tmp_path)
    assert result.returncode != 0
    assert "no_such_module_here" in result.stderr
    assert "panicked" not in result.stderr
    # No traceback through fever's own internals.
    assert not re.search(r'File ".*fever', result.stderr), result.stderr


@pytest.mark.parametrize("command", ["run", "record"])
def test_a_module_after_a_double_dash_runs_as_with_m(tmp_path, command):
    # Typed the way py-spy takes its command: `fever record -- -m pytest`.
    write(tmp_path / "job.py", "import sys\nprint('job ran with', sys.argv[1:])\n")
    result = run_fever(command, "--no-watch", "--", "-m", "job", "-x", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "job ran with ['-x']" in result.stdout
