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


def test_a_checked_interpreter_is_remembered_and_an_unwritable_cache_is_no_error(tmp_path):
    # The probe's answer is kept in $XDG_CACHE_HOME/fever/interpreters; the next start skips it.
    script = tmp_path / "hello.py"
    script.write_text("print('hello')\n")
    cache = tmp_path / "cache"
    for _ in range(2):
        result = run("run", "--no-watch", "--python", sys.executable, str(script), env={"XDG_CACHE_HOME": str(cache)})
        assert (result.returncode, result.stdout, result.stderr) == (0, "hello\n", "")
    assert (cache / "fever/interpreters").read_text().startswith(f"{Path(sys.executable).absolute()}\t")
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    result = run("run", "--no-watch", "--python", sys.executable, str(script), env={"XDG_CACHE_HOME": str(blocked)})
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello\n", "")


def test_a_remembered_interpreter_that_lost_fever_is_a_clear_error(tmp_path):
    # Checked while PYTHONPATH lent it fever, remembered, then started without it: the start that
    # skips the probe says what the probe would have said.
    import fever

    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    script = tmp_path / "hello.py"
    script.write_text("print('hello')\n")
    cache = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    lent = {**cache, "PYTHONPATH": str(Path(fever.__file__).parent.parent)}
    argv = ("run", "--no-watch", "--python", str(bare / "bin/python"), str(script))
    result = run(*argv, env=lent)
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello\n", "")
    assert (tmp_path / "cache/fever/interpreters").exists()
    result = run(*argv, env=cache)
    assert result.returncode == 2
    assert result.stderr.startswith(f"fever: error: fever is not installed for {bare / 'bin/python'}\nhint: ")
    assert "Traceback" not in result.stderr


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
    assert "is too old: fever supports Python 3.12 to 3.15" in result.stderr
    assert "\nhint: choose a Python 3.12 to 3.15" in result.stderr


def test_python_package_refuses_an_old_interpreter_before_importing_the_extension(tmp_path):
    # `python3.11 -m fever` with fever's package on the path: the check runs before the extension
    # (built for another version) is imported, so the user sees why, not an ImportError.
    python = old_python()
    if python is None:
        pytest.skip("no Python older than 3.12 here")
    (tmp_path / "app.py").write_text("print('ran')\n")
    package = Path(__file__).resolve().parent.parent / "python"
    result = subprocess.run(
        [python, "-m", "fever", "run", "app.py"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(package)},
    )
    assert result.returncode == 2
    assert result.stderr.startswith("fever: error: Python 3.")
    assert "is too old: fever supports Python 3.12 to 3.15" in result.stderr
    assert "hint: " in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def fake_interpreter(tmp_path, version, abiflags):
    """An executable that answers fever's probe as an interpreter of `version` with `abiflags`
    would (this machine has no 3.16 nor free-threaded build), and fails if fever starts it."""
    fake = tmp_path / f"python{version}{abiflags}"
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-c" ]; then echo "{version} {abiflags or "-"}"; echo ok; exit 0; fi\n'
        "echo 'started the program' ; exit 99\n"
    )
    fake.chmod(0o755)
    return fake


@pytest.mark.parametrize(
    ("version", "abiflags", "message"),
    [
        ("3.16.0", "", "Python 3.16.0 is newer than fever knows: fever supports Python 3.12 to 3.15"),
        ("3.14.2", "t", "Python 3.14.2 is a free-threaded build (3.14t), which fever does not support yet"),
        ("3.13.1", "t", "Python 3.13.1 is a free-threaded build (3.13t), which fever does not support yet"),
    ],
)
def test_unsupported_interpreter_is_refused_before_it_runs_anything(tmp_path, version, abiflags, message):
    fake = fake_interpreter(tmp_path, version, abiflags)
    for command in (["run"], ["watch"], ["record", "-o", str(tmp_path / "t.fever")]):
        result = run(*command, "--python", str(fake), "app.py", cwd=tmp_path)
        assert result.returncode == 2, result
        assert result.stderr.startswith(f"fever: error: {fake}: {message}\n"), result.stderr
        assert "\nhint: " in result.stderr
        assert "started the program" not in result.stdout
    assert not (tmp_path / "t.fever").exists()


@pytest.mark.parametrize(
    ("version", "abiflags", "expected"),
    [
        ((3, 16, 0), "", "Python 3.16.0 is newer than fever knows"),
        ((3, 14, 2), "t", "Python 3.14.2 is a free-threaded build (3.14t)"),
        ((3, 11, 9), "", "Python 3.11.9 is too old"),
        ((3, 15, 2), "", None),
        ((3, 12, 1), "d", None),
    ],
)
def test_python_package_check_matches_the_standalone(version, abiflags, expected):
    # The package's own check (fever._support), run in the interpreter under test.
    python = Path(os.environ.get("FEVER_VENV") or Path(__file__).resolve().parent.parent / ".venv") / "bin/python"
    code = f"from fever._support import problem; print(problem({version!r}, {abiflags!r}))"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    if expected is None:
        assert result.stdout == "None\n"
    else:
        assert expected in result.stdout
