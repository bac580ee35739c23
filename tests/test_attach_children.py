"""`fever attach` and `fever ps` on the child processes of a program under fever: each live
worker of a fork, spawn or forkserver pool has a control socket of its own, `fever ps` lists the
workers under their program, `fever attach WORKER` (and `--record`) counts that worker's calls
alone, a worker that ends while attached is a clear error, and so is a worker that has ended.
`fever replay` re-runs calls of the program's own process: a call that ran only in workers is
a clear error."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from conftest import run_fever, run_python, write
from record_support import profile_row, show_profile
from test_attach import VENV_CLI, attach, env  # noqa: F401 (env is a fixture)

# Worker 1 calls leaf 3 times per task, every other worker 7 times: a count from more than one
# worker breaks the ratio.
WORK = """\
import multiprocessing as mp


def leaf(x):
    return x + 1


def work(x):
    n = 3 if mp.current_process().name.endswith("-1") else 7
    total = 0
    for i in range(n):
        total += leaf(i)
    return total
"""

POOL = """\
import multiprocessing as mp
import sys
import time

import work


def main():
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    with mp.get_context(sys.argv[1]).Pool(2, maxtasksperchild=tasks or None) as pool:
        n = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pool.map(work.work, range(4), chunksize=1)
            print(n, "rounds", flush=True)
            n += 1
            time.sleep(0.02)


if __name__ == "__main__":
    main()
"""

ROW = re.compile(r"^\s*(\d+)\s+\S+ \S+\s+\S+ \S+\s+\S+ \S+\s+(work\.\w+)$")


def start(fever, tmp_path, env, method: str, *args: str):
    write(tmp_path / "work.py", WORK)
    write(tmp_path / "app.py", POOL)
    proc = fever.run("app.py", method, *args, cwd=tmp_path, env=env)
    proc.wait_stdout(r"^2 rounds", timeout=60)
    return proc


def ps(env) -> list[list[str]]:
    done = run_fever("ps", cwd=Path.cwd(), env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    assert header.split() == ["PID", "PPID", "ATTACHED", "ROOT", "COMMAND"], done.stdout
    return [line.split() for line in lines]


def workers(env, top: int) -> dict[str, int]:
    """The workers `fever ps` lists under `top`, by name (waiting until both are listed)."""
    deadline = time.monotonic() + 20
    while True:
        lines = ps(env)
        at = next(i for i, fields in enumerate(lines) if fields[0] == str(top))
        found = {fields[-1]: int(fields[0]) for fields in lines[at + 1:]
                 if fields[-2] in ("├─", "└─")}
        if len(found) == 2 or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def calls(stdout: str) -> dict[str, int]:
    return {m[2]: int(m[1]) for line in stdout.splitlines() if (m := ROW.match(line))}


def name(method: str, n: int) -> str:
    return {"fork": "ForkPoolWorker", "spawn": "SpawnPoolWorker",
            "forkserver": "ForkServerPoolWorker"}[method] + f"-{n}"


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_attach_to_a_pool_worker_counts_that_worker_alone(fever, tmp_path, env, method):
    proc = start(fever, tmp_path, env, method)
    found = workers(env, proc.proc.pid)
    assert sorted(found) == [name(method, 1), name(method, 2)], found
    one, two = found[name(method, 1)], found[name(method, 2)]
    done = attach(env, one, "--duration", "1.5")
    assert done.returncode == 0, done.stderr
    assert not done.stderr
    assert f"fever attach {one}: " in done.stdout and f"`{name(method, 1)}`" in done.stdout
    counted = calls(done.stdout)
    # The worker's functions only (not the program's main loop), exact: 3 leaf calls per task.
    assert set(counted) == {"work.work", "work.leaf"}, done.stdout
    assert "2 functions called" in done.stdout and "__main__" not in done.stdout, done.stdout
    assert counted["work.work"] > 0, done.stdout
    assert counted["work.leaf"] == 3 * counted["work.work"], done.stdout
    # The other worker, recording the attached window: 7 per task, in the table and the trace.
    trace = tmp_path / "worker.trace"
    done = attach(env, two, "--duration", "1", "--record", str(trace))
    assert done.returncode == 0, done.stderr
    counted = calls(done.stdout)
    assert counted["work.leaf"] == 7 * counted["work.work"] > 0, done.stdout
    rows = show_profile(VENV_CLI, trace)
    assert profile_row(rows, "leaf").calls == counted["work.leaf"], rows
    assert profile_row(rows, "work").calls == counted["work.work"], rows
    proc.wait_iterations(3, pattern=r"^(\d+) rounds")
    proc.assert_running()
    proc.assert_no_fever_errors()


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_attach_to_a_pool_worker_under_no_watch(fever, tmp_path, env, method):
    # `--no-watch` watches no files, so no saves go to the workers: they listen all the same.
    write(tmp_path / "work.py", WORK)
    write(tmp_path / "app.py", POOL)
    proc = fever.run("--no-watch", "app.py", method, cwd=tmp_path, env=env)
    proc.wait_stdout(r"^2 rounds", timeout=60)
    found = workers(env, proc.proc.pid)
    assert sorted(found) == [name(method, 1), name(method, 2)], found
    one = found[name(method, 1)]
    done = attach(env, one, "--duration", "1.5")
    assert done.returncode == 0, done.stderr
    assert f"fever attach {one}: " in done.stdout and f"`{name(method, 1)}`" in done.stdout
    counted = calls(done.stdout)
    assert set(counted) == {"work.work", "work.leaf"}, done.stdout
    assert counted["work.work"] > 0, done.stdout
    assert counted["work.leaf"] == 3 * counted["work.work"], done.stdout


def test_ps_lists_the_workers_under_their_program_once_and_forgets_killed_ones(fever, tmp_path, env):
    proc = start(fever, tmp_path, env, "fork")
    top = proc.proc.pid
    lines = ps(env)
    assert [fields[0] for fields in lines].count(str(top)) == 1, lines
    at = next(i for i, fields in enumerate(lines) if fields[0] == str(top))
    assert lines[at][2] == "no", lines
    assert lines[at][-4:] == ["fever", "run", "app.py", "fork"], lines
    children = lines[at + 1:at + 3]
    assert [fields[-2:] for fields in children] == [["├─", name("fork", 1)], ["└─", name("fork", 2)]], lines
    pids = [int(fields[0]) for fields in children]
    for fields in children:
        assert fields[1] == str(top) and fields[2] == "no", lines
    # Each process once: the workers are not listed again on lines of their own.
    assert sorted(fields[0] for fields in lines) == sorted({fields[0] for fields in lines}), lines
    assert len(lines) == at + 3, lines
    # A worker killed with SIGKILL: the pool starts another; the killed one is not listed and
    # its socket is removed.
    sockets = Path(env["XDG_RUNTIME_DIR"]) / "fever"
    assert (sockets / f"{pids[0]}.sock").exists()
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        found = workers(env, top)
        if pids[0] not in found.values() and len(found) == 2:
            break
        assert time.monotonic() < deadline, f"the killed worker is still listed: {found}"
        time.sleep(0.1)
    assert name("fork", 3) in found and found[name("fork", 2)] == pids[1], found
    assert not (sockets / f"{pids[0]}.sock").exists()
    proc.assert_running()


def test_a_worker_that_ends_while_attached_and_after(fever, tmp_path, env):
    # Each worker ends after 400 tasks (~4 s), while attached; the pool starts new ones.
    proc = start(fever, tmp_path, env, "fork", "400")
    top = proc.proc.pid
    worker = workers(env, top)[name("fork", 1)]
    done = attach(env, worker, "--duration", "60", timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"fever: error: process {worker} exited while attached" in done.stderr
    assert "Traceback" not in done.stderr
    assert calls(done.stdout)["work.leaf"] == 3 * calls(done.stdout)["work.work"], done.stdout
    # Attaching to it again: it was a child of the program, which names its children now.
    again = attach(env, worker)
    assert again.returncode == 2
    first, hint = again.stderr.splitlines()[:2]
    assert first == (f"fever: error: process {worker} has ended: it was a child process of {top} "
                     "(`fever run app.py fork 400`)"), again.stderr
    assert hint.startswith(f"hint: the children of process {top} running now: "), again.stderr
    live = [int(p) for p in re.findall(r"\d+", hint.split(": ", 2)[2].split(";")[0])]
    assert worker not in live and live, again.stderr
    proc.assert_running()


def test_replaying_a_call_that_ran_only_in_workers_is_a_clear_error(tmp_path, env):
    write(tmp_path / "work.py", WORK)
    write(tmp_path / "app.py", """\
import multiprocessing as mp
import sys

import work


if __name__ == "__main__":
    with mp.get_context(sys.argv[1]).Pool(2) as pool:
        print(pool.map(work.work, range(4), chunksize=1), flush=True)
""")
    done = run_fever("replay", "--start", "work.work#1", "app.py", "fork", cwd=tmp_path, env=env,
                     timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "fever: error: work.work ran only in child processes" in done.stderr, done.stderr
    assert "\nhint: " in done.stderr and "Traceback" not in done.stderr


def test_fevers_own_failures_in_a_spawned_child_are_fever_errors_and_joining_stays_silent(tmp_path):
    script = f"""
import pickle
from fever import _family, _native

for call in (lambda: _native.join_family("{tmp_path}/no.sock", "{tmp_path}/missing"),
             lambda: _native.listen_as_child("{tmp_path}/missing"),
             lambda: _native.join_family("{tmp_path}/no.sock", "{tmp_path}")):
    try:
        call()
    except _native.FeverError as err:
        print("FeverError:", err)
# What a spawned child unpickles: never raises, prints nothing.
pickle.loads(pickle.dumps(_family._Join("{tmp_path}/no.sock", "{tmp_path}/missing", None)))
print("ran on")
"""
    done = run_python("-c", script, cwd=tmp_path)
    assert done.returncode == 0 and not done.stderr, done.stderr
    lines = done.stdout.splitlines()
    for line in lines[:2]:
        assert line.startswith(f"FeverError: cannot use {tmp_path}/missing as the project: "), lines
    assert lines[2].startswith("FeverError: cannot join the family: "), lines
    assert lines[3:] == ["ran on"], lines
