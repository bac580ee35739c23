"""The standalone `fever` binary (fever-cli, no Python inside): it starts the interpreter chosen
with --python / FEVER_PYTHON and refuses clearly when that interpreter cannot run fever."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BINARY = os.environ.get("FEVER_STANDALONE", str(Path(__file__).parent.parent / "target/rust/release/fever"))

pytestmark = pytest.mark.skipif(not Path(BINARY).exists(), reason="standalone binary not built (make test builds it)")


def run(*args, env=None, cwd=None):
    return subprocess.run(
        [BINARY, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, cwd=cwd
    )


def test_version_and_help_need_no_python():
    result = run("--version", env={"FEVER_PYTHON": "/nonexistent/python"})
    assert result.returncode == 0
    assert result.stdout.startswith("fever ")
    result = run("run", "--help")
    assert result.returncode == 0
    assert "--python" in result.stdout


def test_runs_the_script_with_the_chosen_interpreter(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint('hello', sys.argv[1:], sys.version_info[:2] >= (3, 12))\nsys.exit(4)\n")
    result = run("run", "--no-watch", "--python", sys.executable, str(script), "a", "--b")
    assert result.stdout == "hello ['a', '--b'] True\n"
    assert result.returncode == 4
    result = run("run", "--no-watch", str(script), env={"FEVER_PYTHON": sys.executable})
    assert result.returncode == 4


def test_missing_interpreter_is_a_clear_error(tmp_path):
    result = run("run", "--python", str(tmp_path / "nope"), "x.py")
    assert result.returncode == 2
    assert result.stderr.startswith("fever: error: cannot start Python interpreter")
    assert "hint: " in result.stderr
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr


def test_interpreter_without_fever_is_a_clear_error(tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    result = run("run", "--python", str(bare / "bin/python"), "x.py")
    assert result.returncode == 2
    assert "fever is not installed for" in result.stderr


def old_python():
    """A Python older than 3.12 on this machine, if any."""
    for name in ("python3.11", "python3.10", "python3"):
        for folder in os.environ.get("PATH", "").split(os.pathsep):
            candidate = Path(folder) / name
            if not candidate.exists():
                continue
            probe = subprocess.run(
                [str(candidate), "-c", "import sys; print(sys.version_info < (3, 12))"],
                capture_output=True, text=True, timeout=30,
            )
            if probe.stdout.strip() == "True":
                return str(candidate)
    return None


def test_old_interpreter_is_refused():
    python = old_python()
    if python is None:
        pytest.skip("no Python older than 3.12 here")
    result = run("run", "--python", python, "x.py")
    assert result.returncode == 2
    assert "fever needs Python 3.12 or newer" in result.stderr
