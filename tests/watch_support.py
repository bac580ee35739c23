"""Helpers for the `fever watch` end-to-end tests (test_watch.py).

`fever watch` runs a script again and again in one process; a run ends when fever prints
`fever: waiting for changes` on stderr. `next_run(p)` waits for that line and returns what the run
printed: its stderr lines (everything since the previous run boundary) and its stdout lines.
stdout and stderr are separate pipes read by separate threads, so the stdout of a run is only
known to be complete when its last line has arrived: the test scripts print `end` as their last
line (in a `finally:` where a run may raise), and `next_run` waits for it too.

`rerun(p)` is the same for a run a save triggered, and checks fever announced it.
A slow function prints `ran NAME ...` when it really runs; a run whose stdout lacks that line
answered the call from the cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from conftest import DEFAULT_TIMEOUT, FeverProcess, FeverRunner, write

WAITING = r"^fever: waiting for changes$"
HIT_LINE = re.compile(r"^fever: cache hit (?P<name>\S+?)\(\)(?: ×(?P<count>\d+))? saved (?P<saved>\d+\.\d\d) s$")
NO_CRASH = ("panicked", "RUST_BACKTRACE", "Segmentation fault", "core dumped", "Fatal Python error")

# Slow functions in the tests sleep 0.25 s; the threshold is the default, given explicitly.
CACHE_OPTS = ("--cache-min-ms", "100")


@dataclass
class Run:
    """What one run of the script printed."""

    out: list[str]  # stdout lines of the run (up to and including `end` when waited for)
    err: list[str]  # stderr lines since the previous `waiting for changes`, up to this one
    report: str  # the process's output so far, for failure messages

    def ran(self, name: str) -> int:
        """How many times the slow function `name` really ran in this run (its `ran NAME` lines)."""
        return sum(1 for line in self.out if re.match(rf"^ran {re.escape(name)}\b", line))

    def hits(self) -> dict[str, tuple[int, float]]:
        """The run's `fever: cache hit NAME() [×N] saved S s` lines: name -> (count, seconds)."""
        found = {}
        for line in self.err:
            m = HIT_LINE.match(line)
            if m:
                assert m["name"] not in found, f"two cache-hit lines for {m['name']}\n{self.report}"
                found[m["name"]] = (int(m["count"] or 1), float(m["saved"]))
        return found

    def fever(self, pattern: str = r"^fever: ") -> list[str]:
        return [line for line in self.err if re.search(pattern, line)]

    def value(self, key: str) -> str:
        """The rest of the only stdout line `KEY: VALUE` of the run."""
        found = [line.split(": ", 1)[1] for line in self.out if line.startswith(f"{key}: ")]
        assert len(found) == 1, f"expected one {key!r} line, got {found}\n{self.report}"
        return found[0]

    def assert_no_crash(self) -> None:
        for line in self.err:
            assert not any(word in line for word in NO_CRASH), f"crash: {line}\n{self.report}"


def next_run(p: FeverProcess, end: str | None = r"^end$", timeout: float = DEFAULT_TIMEOUT) -> Run:
    """Waits for the end of the next run (its `waiting for changes` line) and returns its output.
    Also waits for the run's last stdout line (matching `end`); with `end=None`, `out` is whatever
    stdout has arrived (use that only for runs that print nothing)."""
    err_start, out_start = p.cursor["stderr"], p.cursor["stdout"]
    p.wait_stderr(WAITING, timeout)
    err = p.stderr[err_start:p.cursor["stderr"]]
    if end:
        p.wait_stdout(end, timeout)
        out = p.stdout[out_start:p.cursor["stdout"]]
    else:
        out = p.stdout[out_start:]
    run = Run(out=out, err=err, report=p.report())
    run.assert_no_crash()
    return run


def rerun(p: FeverProcess, script: str = "app.py", end: str | None = r"^end$") -> Run:
    """The run that a save triggers: like `next_run`, and fever announced it (once) as a re-run of
    `script` (a regex)."""
    run = next_run(p, end=end)
    reruns = run.fever(r"^fever: re-running ")
    assert len(reruns) == 1 and re.match(rf"^fever: re-running {script}$", reruns[0]), \
        f"expected one `fever: re-running {script}` line, got {reruns}\n{run.report}"
    return run


def watch(fever: FeverRunner, cwd: Path, *args: str | Path, **kwargs) -> FeverProcess:
    """Starts `fever watch ARGS` (the venv's console script)."""
    return fever.start("watch", *args, cwd=cwd, **kwargs)


def project(root: Path, files: dict[str, str]) -> Path:
    """Writes the files of a sample project (dedented) under `root`; returns `root`."""
    for name, text in files.items():
        write(root / name, text)
    return root

