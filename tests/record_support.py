"""Helpers for the `fever record` / `fever show` end-to-end tests (test_record.py, test_show_e2e.py).

Both front ends are tested: the venv's `fever` (the Python package's console script, which runs the
program in its own process) and the standalone binary (fever-cli without Python inside, which
starts `$FEVER_VENV/bin/python` through FEVER_PYTHON). The `cli` fixture is parametrized over
them; the standalone one is skipped when the binary has not been built.

`fever show` output is parsed only as far as a user reads it: thread sections, one call per line,
indentation (2 spaces per level) for nesting, the function name before the first `(`, the
collapse count `[×N]`, and the rest of the line as text to search (arguments, `→ value`,
`raised ...`, markers). Column widths and number formats are not checked.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import FEVER, PYTHON, REPO, FeverProcess, FeverRunner

STANDALONE = Path(os.environ.get("FEVER_STANDALONE") or REPO / "target/rust/release/fever")

RECORDED_LINE = re.compile(
    r"^fever: recorded (?P<calls>[\d,_]+) calls? of (?P<functions>[\d,_]+) functions? to (?P<path>.+) \((?P<size>[^)]*)\)$"
)
NO_CRASH = ("Traceback", "panicked", "RUST_BACKTRACE", "Segmentation fault", "core dumped")


@dataclass
class Cli:
    """One way of invoking fever: argv prefix and extra environment."""

    name: str
    prefix: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, *args) -> list[str]:
        return self.prefix + [str(a) for a in args]

    def run(self, *args, cwd: Path, timeout: float = 60, env: dict | None = None,
            stdin: str = "") -> subprocess.CompletedProcess:
        """Runs `fever ARGS` to completion in its own session; output as text."""
        full = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", **self.env, **(env or {}))
        proc = subprocess.Popen(self.argv(*args), cwd=cwd, env=full, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                encoding="utf-8", errors="replace", start_new_session=True)
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"`{' '.join(self.argv(*args))}` did not end within {timeout} s\n"
                        f"--- stdout ---\n{out[-3000:]}\n--- stderr ---\n{err[-3000:]}", pytrace=False)
        return subprocess.CompletedProcess(self.argv(*args), proc.returncode, out, err)

    def run_bytes(self, *args, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
        """Like `run`, with stdout as bytes (binary exports to `-o -`)."""
        full = dict(os.environ, **self.env)
        try:
            return subprocess.run(self.argv(*args), cwd=cwd, env=full, capture_output=True,
                                  timeout=timeout, start_new_session=True, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"`{' '.join(self.argv(*args))}` did not end within {timeout} s: {e}", pytrace=False)

    def start(self, runner: FeverRunner, *args, cwd: Path) -> FeverProcess:
        """Starts a long-running `fever ARGS`, killed at the test's teardown by `runner`."""
        process = FeverProcess(self.argv(*args), cwd=cwd, env=self.env)
        runner.processes.append(process)
        return process


def make_cli(kind: str) -> Cli:
    if kind == "venv":
        return Cli("venv", [str(FEVER)])
    if kind == "python-m":
        return Cli("python-m", [str(PYTHON), "-m", "fever"])
    if not STANDALONE.exists():
        pytest.skip(f"standalone binary {STANDALONE} not built (make test builds it)")
    return Cli("standalone", [str(STANDALONE)], {"FEVER_PYTHON": str(PYTHON)})


@pytest.fixture(params=["venv", "standalone"])
def cli(request) -> Cli:
    """The fever under test: the venv's `fever`, then the standalone binary."""
    return make_cli(request.param)


def clean_stderr(text: str) -> None:
    """No Python traceback and no Rust panic from fever itself."""
    for marker in NO_CRASH:
        assert marker not in text, f"{marker!r} in stderr:\n{text}"


def describe(result: subprocess.CompletedProcess) -> str:
    return (f"command: {' '.join(map(str, result.args))} (exit {result.returncode})\n"
            f"--- stdout ---\n{result.stdout[-4000:] if isinstance(result.stdout, str) else result.stdout[:200]!r}\n"
            f"--- stderr ---\n{result.stderr[-4000:] if isinstance(result.stderr, str) else result.stderr!r}")


# --------------------------------------------------------------------------------------------
# Recording


@dataclass
class Recording:
    result: subprocess.CompletedProcess
    trace: Path
    calls: int | None  # from the `fever: recorded N calls of M functions` line
    functions: int | None

    @property
    def program_stderr(self) -> list[str]:
        return [line for line in self.result.stderr.splitlines() if not line.startswith("fever: ")]


def number(text: str) -> int:
    return int(re.sub(r"[,_\s]", "", text))


def record(cli: Cli, *args, cwd: Path, trace: Path | None = None, expect_exit: int = 0,
           timeout: float = 60, env: dict | None = None) -> Recording:
    """`fever record -o TRACE ARGS`; checks the exit code, that the trace exists and that stderr
    ends with the `fever: recorded ...` line naming it."""
    trace = trace or (cwd / "out.trace")
    result = cli.run("record", "-o", trace, *args, cwd=cwd, timeout=timeout, env=env)
    assert result.returncode == expect_exit, describe(result)
    assert trace.is_file(), f"no trace at {trace}\n{describe(result)}"
    assert trace.stat().st_size > 0, describe(result)
    lines = result.stderr.splitlines()
    assert lines, describe(result)
    m = RECORDED_LINE.match(lines[-1])
    assert m, f"the last stderr line is not `fever: recorded N calls of M functions to TRACE (SIZE)`\n{describe(result)}"
    assert Path(m["path"]).name == trace.name, describe(result)
    assert not [line for line in lines if line.startswith("fever: error")], describe(result)
    assert "panicked" not in result.stderr, describe(result)
    return Recording(result, trace, number(m["calls"]), number(m["functions"]))


# --------------------------------------------------------------------------------------------
# Reading `fever show`

CALL_LINE = re.compile(r"^(?P<indent> *)(?P<name>[A-Za-z_<][^\s(]*)\((?P<rest>.*)$")
COUNT = re.compile(r"\[[×x](\d+)\]")
THREAD_HEADER = re.compile(r"^== thread (?P<ident>\S+)(?P<main> \(main\))?.*==\s*$")


@dataclass
class Call:
    thread: int  # index of the thread section
    depth: int
    name: str  # module.qualname as printed
    text: str  # the whole line, stripped
    parent: "Call | None" = None
    children: list["Call"] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many calls this line stands for (`[×N]`, else 1)."""
        m = COUNT.search(self.text)
        return int(m[1]) if m else 1

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    def is_(self, qualname: str) -> bool:
        """The line is a call of `qualname` (a suffix of module.qualname on a dot boundary)."""
        return self.name == qualname or self.name.endswith("." + qualname)

    def __repr__(self) -> str:
        return f"Call({self.text!r})"


@dataclass
class Tree:
    text: str
    threads: list[tuple[str, bool]]  # (ident, is main)
    calls: list[Call]

    def find(self, qualname: str, where=None) -> list[Call]:
        return [c for c in self.calls if c.is_(qualname) and (where is None or where(c))]

    def one(self, qualname: str, where=None) -> Call:
        found = self.find(qualname, where)
        assert len(found) == 1, f"expected one line for {qualname}, found {found}\n{self.text}"
        return found[0]

    def total(self, qualname: str, thread: int | None = None) -> int:
        return sum(c.count for c in self.find(qualname) if thread is None or c.thread == thread)

    def in_thread(self, index: int) -> list[Call]:
        return [c for c in self.calls if c.thread == index]


def parse_tree(text: str) -> Tree:
    """Parses `fever show` output; checks that the indentation is a consistent tree (each line at
    most one level deeper than the one before, 2 spaces per level)."""
    threads: list[tuple[str, bool]] = []
    calls: list[Call] = []
    stack: list[Call] = []
    base: int | None = None
    for line in text.splitlines():
        header = THREAD_HEADER.match(line)
        if header:
            threads.append((header["ident"], bool(header["main"])))
            stack, base = [], None
            continue
        m = CALL_LINE.match(line)
        if not m or not line.strip():
            continue
        indent = len(m["indent"])
        if base is None:
            base = indent
        assert (indent - base) % 2 == 0 and indent >= base, f"odd indentation on {line!r}\n{text}"
        depth = (indent - base) // 2
        assert depth <= len(stack), f"{line!r} is more than one level deeper than the line before\n{text}"
        del stack[depth:]
        call = Call(thread=max(len(threads) - 1, 0), depth=depth, name=m["name"], text=line.strip(),
                    parent=stack[-1] if stack else None)
        if call.parent:
            call.parent.children.append(call)
        stack.append(call)
        calls.append(call)
    return Tree(text, threads, calls)


def show(cli: Cli, trace: Path, *args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = cli.run("show", trace, *args, cwd=cwd or trace.parent)
    assert result.returncode == 0, describe(result)
    clean_stderr(result.stderr)
    return result


def show_tree(cli: Cli, trace: Path, *args) -> Tree:
    return parse_tree(show(cli, trace, *args).stdout)


@dataclass
class ProfileRow:
    calls: int
    capped: bool  # marked `*`: more calls than recorded
    name: str  # module.qualname
    text: str


PROFILE_ROW = re.compile(r"^\s*(?P<calls>\d[\d,_]*)\s*(?P<star>\*)?\s")


def show_profile(cli: Cli, trace: Path, *args) -> dict[str, ProfileRow]:
    """`fever show --profile`: rows by function name (module.qualname)."""
    text = show(cli, trace, "--profile", *args).stdout
    rows: dict[str, ProfileRow] = {}
    for line in text.splitlines():
        m = PROFILE_ROW.match(line)
        if not m:
            continue
        tokens = line.split()
        # The function column: `module.qualname file:line`; the name is the token before the
        # `file:line` one, else the last dotted token that is not a number.
        located = [tokens[i - 1] for i in range(1, len(tokens)) if re.search(r":\d+\)?$", tokens[i])]
        dotted = [t for t in tokens if "." in t and re.match(r"^[A-Za-z_<]", t)]
        if not (located or dotted):
            continue
        name = (located or dotted)[-1]
        assert name not in rows, f"two profile rows for {name}\n{text}"
        rows[name] = ProfileRow(number(m["calls"]), bool(m["star"]) or "*" in line, name, line)
    assert rows, f"no rows in the profile\n{text}"
    return rows


def profile_row(rows: dict[str, ProfileRow], qualname: str) -> ProfileRow:
    found = [r for n, r in rows.items() if n == qualname or n.endswith("." + qualname)]
    assert len(found) == 1, f"expected one profile row for {qualname}: {found}\n" + "\n".join(r.text for r in rows.values())
    return found[0]
