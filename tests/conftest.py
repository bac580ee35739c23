"""Harness for the end-to-end tests: start `fever` on real scripts, read what it prints, edit files.

The `fever` fixture starts processes and kills their process groups at teardown:
`fever.run("app.py", cwd=...)` runs `fever run app.py`, `fever.start(...)` any other command line.
Each process is a `FeverProcess`: its stdout and stderr are read line by line in background
threads, and `wait_stdout(regex)` / `wait_stderr(regex)` block (with a timeout) until a line
matches, then return the `re.Match`. Every wait consumes the lines up to and including the match,
like an `expect` script, so a following wait only looks at later output of that stream.

The fever under test is `$FEVER_VENV/bin/fever` when FEVER_VENV is set (the Makefile sets it),
else `.venv/bin/fever` of this repository.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("FEVER_VENV") or REPO / ".venv")
FEVER = VENV / "bin" / "fever"
PYTHON = VENV / "bin" / "python"

DEFAULT_TIMEOUT = 15.0

# A shell without job control starts background commands with SIGINT ignored, and an ignored
# signal stays ignored across exec: every program the tests start would ignore Ctrl-C. A handled
# signal is reset to the default on exec, so the tests' programs start as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Lines fever prints when it changes the running program.
CHANGE_LINE = re.compile(r"^fever: (reloaded|added|deleted|redefined|re-executed|skipped) ")
ERROR_LINE = re.compile(r"^fever: error: ")


def pytest_configure(config: pytest.Config) -> None:
    if not FEVER.exists():
        raise pytest.UsageError(
            f"{FEVER} does not exist: run `make venv` first (or set FEVER_VENV to a venv with fever)"
        )


# --------------------------------------------------------------------------------------------
# Writing sample projects and saving files like editors do
# --------------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    """Creates `path` (and its parent directories) with the dedented `text`; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def save_in_place(path: Path, text: str | bytes) -> None:
    """Saves like most editors without a backup: truncate the file and write the new content."""
    mode = "wb" if isinstance(text, bytes) else "w"
    with open(path, mode) as f:
        f.write(text)


def save_by_rename(path: Path, text: str | bytes) -> None:
    """Saves like editors' "safe write": write a temporary file in the same directory, then
    rename it over the original."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
        f.write(text)
    os.replace(tmp, path)


SAVES = {"in_place": save_in_place, "rename": save_by_rename}


def edit(path: Path, old: str, new: str, save: Callable[[Path, str], None] = save_in_place) -> str:
    """Replaces the one occurrence of `old` in the file by `new` and saves it with `save`;
    returns the new text. Multi-line `old` and `new` may be written at any indentation: both are
    dedented, then indented as deep as `old` is in the file."""
    old, new = textwrap.dedent(old).strip("\n"), textwrap.dedent(new).strip("\n")
    text = path.read_text()
    for depth in range(0, 17, 4):
        indented_old = textwrap.indent(old, " " * depth)
        count = text.count(indented_old)
        if count:
            assert count == 1, f"test bug: {indented_old!r} occurs {count} times in {path}"
            text = text.replace(indented_old, textwrap.indent(new, " " * depth))
            save(path, text)
            return text
    raise AssertionError(f"test bug: {old!r} is not in {path}")


def line_of(text: str, needle: str) -> int:
    """1-based number of the only line of `text` that contains `needle`."""
    found = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(found) == 1, f"test bug: {needle!r} is on lines {found}"
    return found[0]


LOOP = '''

def main():
    deadline = time.monotonic() + 60
    i = 0
    while time.monotonic() < deadline:
        print(i, EXPR, flush=True)
        i += 1
        time.sleep(0.02)


if __name__ == "__main__":
    main()
'''


def looping(defs: str, expr: str) -> str:
    """A script: `import time`, the dedented `defs`, then a `main()` loop that prints
    `COUNTER VALUE` (VALUE is `expr`, which may use `i`) every 20 ms for at most 60 s."""
    return "import time\n" + textwrap.dedent(defs).strip("\n") + "\n" + LOOP.replace("EXPR", expr)


# --------------------------------------------------------------------------------------------
# Running fever
# --------------------------------------------------------------------------------------------


class FeverProcess:
    """One running `fever` command, with its output collected line by line."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None):
        self.argv = argv
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.cursor = {"stdout": 0, "stderr": 0}
        self.cond = threading.Condition()
        self.readers = {
            name: threading.Thread(target=self._read, args=(name, getattr(self.proc, name)), daemon=True)
            for name in ("stdout", "stderr")
        }
        for reader in self.readers.values():
            reader.start()

    def _read(self, name: str, stream) -> None:
        try:
            for line in iter(stream.readline, ""):
                with self.cond:
                    self.lines[name].append(line.rstrip("\n"))
                    self.cond.notify_all()
        except (OSError, ValueError):  # closed under us at teardown
            pass
        with self.cond:
            self.cond.notify_all()

    @property
    def stdout(self) -> list[str]:
        with self.cond:
            return list(self.lines["stdout"])

    @property
    def stderr(self) -> list[str]:
        with self.cond:
            return list(self.lines["stderr"])

    def fever_lines(self, pattern: str | re.Pattern = r"^fever: ") -> list[str]:
        """fever's own lines on stderr that match `pattern`."""
        return [line for line in self.stderr if re.search(pattern, line)]

    def report(self, tail: int = 60) -> str:
        """The collected output, for failure messages."""
        with self.cond:
            out, err = self.lines["stdout"][-tail:], self.lines["stderr"][-tail:]
        code = self.proc.poll()
        state = "still running" if code is None else f"exited with code {code}"
        return (
            f"command: {' '.join(map(str, self.argv))} ({state})\n"
            f"--- stdout (last {len(out)} lines) ---\n" + "\n".join(out) + "\n"
            f"--- stderr (last {len(err)} lines) ---\n" + "\n".join(err)
        )

    def _wait(self, name: str, pattern: str, timeout: float, where, from_start: bool) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = 0 if from_start else self.cursor[name]
        with self.cond:
            while True:
                lines = self.lines[name]
                while index < len(lines):
                    line = lines[index]
                    index += 1
                    if not from_start:
                        self.cursor[name] = index
                    match = regex.search(line)
                    if match and (where is None or where(match)):
                        return match
                if not self.readers[name].is_alive():
                    reason = "the stream closed (process ended?)"
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    reason = f"timed out after {timeout:g} s"
                    break
                self.cond.wait(min(left, 0.5))
        pytest.fail(f"{reason} waiting on {name} for {pattern!r}\n{self.report()}", pytrace=False)

    def wait_stdout(self, pattern: str, timeout: float = DEFAULT_TIMEOUT, where=None,
                    from_start: bool = False) -> re.Match:
        """Waits for a later stdout line matching `pattern` (and `where(match)` if given).
        With `from_start`, any line matches, also one already seen, and nothing is consumed."""
        return self._wait("stdout", pattern, timeout, where, from_start)

    def wait_stderr(self, pattern: str, timeout: float = DEFAULT_TIMEOUT, where=None,
                    from_start: bool = False) -> re.Match:
        """Like `wait_stdout`, on stderr."""
        return self._wait("stderr", pattern, timeout, where, from_start)

    def wait_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Waits for the process to end and for all its output; returns the exit code."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"process did not exit within {timeout:g} s\n{self.report()}", pytrace=False)
        for reader in self.readers.values():
            reader.join(5)
        return self.proc.returncode

    def send_stdin(self, text: str, close: bool = False) -> None:
        self.proc.stdin.write(text)
        self.proc.stdin.flush()
        if close:
            self.proc.stdin.close()

    def wait_asleep(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Waits until the main thread is blocked in `time.sleep` (its kernel wait channel names
        nanosleep). A signal sent sooner, between CPython's last check for pending signals and the
        sleep's system call, is only handled when the sleep ends: CPython's own race, which 3.14
        and 3.15 widen to the whole return of a call with keyword arguments such as
        `print(..., flush=True)`. A running thread's channel reads "0", as does every channel
        where the kernel hides them: after a second of nothing else, the wait gives up quietly."""
        deadline = time.monotonic() + timeout
        hidden_until = time.monotonic() + 1.0
        while True:
            try:
                channel = Path(f"/proc/{self.proc.pid}/wchan").read_text()
            except OSError:
                return
            if "nanosleep" in channel:
                return
            if channel in ("", "0"):
                if time.monotonic() > hidden_until:
                    return
            else:
                hidden_until = float("inf")
            if time.monotonic() > deadline:
                pytest.fail(f"the program did not reach its sleep within {timeout:g} s (in "
                            f"{channel!r})\n{self.report()}", pytrace=False)
            time.sleep(0.01)

    def signal(self, sig: int) -> None:
        """Sends `sig` to the process group, as a terminal does for Ctrl-C."""
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for reader in self.readers.values():
            reader.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass

    # ---- assertions about the looping scripts -------------------------------------------------

    def assert_running(self) -> None:
        assert self.proc.poll() is None, f"the program stopped\n{self.report()}"

    def counters(self, pattern: str = r"^(\d+) ") -> list[int]:
        return [int(m[1]) for line in self.stdout if (m := re.search(pattern, line))]

    def assert_not_restarted(self, pattern: str = r"^(\d+) ") -> None:
        """The counter printed by the loop went 0, 1, 2, ... without a gap or a restart: the
        program ran on in the same process through every reload."""
        counters = self.counters(pattern)
        assert counters, f"no counter lines\n{self.report()}"
        assert counters == list(range(len(counters))), (
            f"the counter did not increase steadily from 0 (restarted or lost output?)\n{self.report()}"
        )
        self.assert_running()

    def assert_no_fever_errors(self) -> None:
        errors = self.fever_lines(ERROR_LINE)
        assert not errors, f"unexpected errors: {errors}\n{self.report()}"

    def wait_iterations(self, count: int, pattern: str = r"^(\d+) ") -> re.Match:
        """Waits until the loop printed `count` more iterations than the last one seen so far;
        returns that line's match (its group 1 is the counter)."""
        seen = self.counters(pattern)
        target = (seen[-1] if seen else -1) + count
        return self.wait_stdout(pattern, where=lambda m: int(m[1]) >= target)


class FeverRunner:
    """The `fever` fixture: starts fever processes and kills them at teardown."""

    def __init__(self) -> None:
        self.processes: list[FeverProcess] = []

    def start(self, *args: str | Path, cwd: Path, env: dict[str, str] | None = None,
              python_m: bool = False) -> FeverProcess:
        """Starts `fever ARGS` (or `python -m fever ARGS` with the venv's python)."""
        prefix = [str(PYTHON), "-m", "fever"] if python_m else [str(FEVER)]
        process = FeverProcess(prefix + [str(a) for a in args], cwd=cwd, env=env)
        self.processes.append(process)
        return process

    def run(self, *args: str | Path, cwd: Path, **kwargs) -> FeverProcess:
        """Starts `fever run ARGS`."""
        return self.start("run", *args, cwd=cwd, **kwargs)

    def close(self) -> None:
        for process in self.processes:
            process.kill()


@pytest.fixture
def fever():
    runner = FeverRunner()
    yield runner
    runner.close()


@pytest.fixture(params=sorted(SAVES))
def save(request) -> Callable[[Path, str], None]:
    """Both ways editors save a file: in place and rename-into-place."""
    return SAVES[request.param]


def run_python(*args: str | Path, cwd: Path, stdin: str = "", timeout: float = 30) -> subprocess.CompletedProcess:
    """Runs the venv's plain `python ARGS` (the reference fever must behave like)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([str(PYTHON), *map(str, args)], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def run_fever(*args: str | Path, cwd: Path, stdin: str = "", timeout: float = 30,
              python_m: bool = False, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs `fever ARGS` to completion (for commands that end by themselves)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    prefix = [str(PYTHON), "-m", "fever"] if python_m else [str(FEVER)]
    return subprocess.run(prefix + [str(a) for a in args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout, start_new_session=True)
