"""Child processes: a save reaches every live child of the program (fork, spawn and forkserver
pools, `ProcessPoolExecutor`, persistent workers), applied by the same engine and reported once
for all; a child that exits while a save is sent is no error; `fever watch` re-runs and Ctrl-C
leave no child behind."""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import time

import pytest

from conftest import edit, run_fever, write
from record_support import describe, make_cli, profile_row, record, show, show_profile
from test_show_e2e import export
from watch_support import next_run, project, watch

WORK = """
def work(x):
    return x * 1
"""

POOL = """
import multiprocessing as mp
import sys
import time

import work


def main():
    ctx = mp.get_context(sys.argv[1])
    with ctx.Pool(2) as pool:
        i = 0
        while True:
            print(i, pool.map(work.work, [1, 2, 3, 4, 5, 6], chunksize=1), flush=True)
            i += 1
            time.sleep(0.05)


if __name__ == "__main__":
    main()
"""

EXECUTOR = """
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import work


def main():
    with ProcessPoolExecutor(2, mp_context=mp.get_context(sys.argv[1])) as pool:
        i = 0
        while True:
            print(i, list(pool.map(work.work, [1, 2, 3, 4, 5, 6])), flush=True)
            i += 1
            time.sleep(0.05)


if __name__ == "__main__":
    main()
"""

OLD = re.escape("[1, 2, 3, 4, 5, 6]")
NEW = re.escape("[100, 200, 300, 400, 500, 600]")
RELOADED = r"^fever: reloaded work\.work \(\d+\.\d ms, (\d+) processes\)$"


def assert_new_results_from_now_on(p, lines: int = 4) -> None:
    """The results change, and every later line has them: no worker runs the old code."""
    p.wait_stdout(rf"^\d+ {NEW}$")
    for _ in range(lines):
        p.wait_stdout(r"^\d+ ")
        assert re.search(NEW, p.stdout[p.cursor["stdout"] - 1]), p.report()


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("script", [POOL, EXECUTOR], ids=["pool", "executor"])
def test_a_save_reaches_every_worker(fever, tmp_path, method, script):
    project(tmp_path, {"work.py": WORK, "app.py": script})
    p = fever.run("app.py", method, cwd=tmp_path)
    p.wait_stdout(rf"^\d+ {OLD}$", timeout=30)
    p.wait_iterations(2)
    edit(tmp_path / "work.py", "x * 1", "x * 100")
    m = p.wait_stderr(RELOADED)
    # The program and its workers (a ProcessPoolExecutor may start fewer than two).
    assert int(m[1]) >= 2, p.report()
    assert_new_results_from_now_on(p)
    # Said once for all processes.
    assert len(p.fever_lines(r"^fever: reloaded work\.work")) == 1, p.report()
    p.assert_not_restarted()
    p.assert_no_fever_errors()


LOADER = """
import multiprocessing as mp
import time

import dataset


def worker_loop(index_queue, data_queue):
    # A persistent worker, as torch's DataLoader runs with persistent_workers=True.
    for index in iter(index_queue.get, None):
        data_queue.put((index, dataset.load(index)))


def main():
    ctx = mp.get_context("fork")
    index_queue, data_queue = ctx.Queue(), ctx.Queue()
    workers = [ctx.Process(target=worker_loop, args=(index_queue, data_queue), daemon=True)
               for _ in range(2)]
    for w in workers:
        w.start()
    epoch = 0
    while True:
        for i in range(4):
            index_queue.put(i)
        batch = sorted(data_queue.get(timeout=10) for _ in range(4))
        print(epoch, [item for _, item in batch], flush=True)
        epoch += 1
        time.sleep(0.05)


if __name__ == "__main__":
    main()
"""

DATASET = """
def load(index):
    return f"v1-{index}"
"""


def test_persistent_workers_of_a_data_loader(fever, tmp_path):
    project(tmp_path, {"dataset.py": DATASET, "app.py": LOADER})
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ \['v1-0', 'v1-1', 'v1-2', 'v1-3'\]$", timeout=30)
    edit(tmp_path / "dataset.py", 'f"v1-{index}"', 'f"v2-{index}"')
    p.wait_stderr(r"^fever: reloaded dataset\.load \(\d+\.\d ms, 3 processes\)$")
    p.wait_stdout(r"^\d+ \['v2-0', 'v2-1', 'v2-2', 'v2-3'\]$")
    p.wait_iterations(2)
    assert "v1-" not in p.stdout[-1], p.report()
    p.assert_not_restarted()
    p.assert_no_fever_errors()


SHORT_LIVED = """
import os
import time

import work

i = 0
while True:
    pid = os.fork()
    if pid == 0:
        print(i, "child", work.work(1), flush=True)
        time.sleep(0.002 * (i % 5))
        os._exit(0)
    os.waitpid(pid, 0)
    i += 1
"""


def test_a_child_exiting_while_a_save_is_sent_is_no_error(fever, tmp_path):
    project(tmp_path, {"work.py": WORK, "app.py": SHORT_LIVED})
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ child 1$")
    for factor in (2, 3, 4, 5, 6, 7, 8, 9, 100):
        edit(tmp_path / "work.py", "return x * ", f"return x * {factor} # ")
        p.wait_stderr(r"^fever: reloaded work\.work ")
    p.wait_stdout(r"^\d+ child 100$")
    p.assert_running()
    p.assert_no_fever_errors()
    assert not p.fever_lines(r"has not answered"), p.report()


def test_an_error_in_the_children_names_them(fever, tmp_path):
    # MAIN is the program's pid in every process (the workers are forks of it).
    project(tmp_path, {"work.py": "import os\nMAIN = os.getpid()\n" + WORK, "app.py": POOL})
    p = fever.run("app.py", "fork", cwd=tmp_path)
    p.wait_stdout(rf"^\d+ {OLD}$", timeout=30)
    # A new statement that fails in the workers only.
    edit(tmp_path / "work.py", "MAIN = os.getpid()\n", "MAIN = os.getpid()\nCHECK = 1 // (os.getpid() == MAIN)\n")
    p.wait_stderr(r"^fever: re-executed work line 3: CHECK = .* \(\d+\.\d ms\)$")
    m = p.wait_stderr(r"^fever: error: processes (\d+), (\d+): work\.py:3: ZeroDivisionError")
    assert os.getpid() not in (int(m[1]), int(m[2]))
    p.wait_iterations(2)
    p.assert_not_restarted()


# The top never imports work.py: only the worker does, at its first task.
LAZY_POOL = """
import multiprocessing as mp
import os
import time


def task(x):
    import work

    return os.getpid(), work.work(x)


def main():
    with mp.get_context("spawn").Pool(1) as pool:
        i = 0
        while True:
            print(i, *pool.apply(task, (1,)), flush=True)
            i += 1
            time.sleep(0.05)


if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("broken", ["return x *", "return x * 1\nCHECK = 1 // 0"],
                         ids=["syntax", "runtime"])
def test_an_error_in_a_module_only_a_worker_runs_names_the_worker(fever, tmp_path, broken):
    project(tmp_path, {"work.py": WORK, "app.py": LAZY_POOL})
    p = fever.run("app.py", cwd=tmp_path)
    pid = p.wait_stdout(r"^\d+ (\d+) 1$", timeout=30)[1]
    edit(tmp_path / "work.py", "return x * 1", broken)
    p.wait_stderr(rf"^fever: error: process {pid}: work\.py:\d+: ")
    p.wait_iterations(2)
    assert not p.fever_lines(r"^fever: error: work\.py"), p.report()
    p.assert_not_restarted()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_save_that_adds_a_class_reaches_the_workers(fever, tmp_path, method):
    """A save that adds a class and a function using it: the workers define them too."""
    project(tmp_path, {"work.py": WORK, "app.py": POOL})
    p = fever.run("app.py", method, cwd=tmp_path)
    p.wait_stdout(r"^\d+ \[1, 2, 3, 4, 5, 6\]$", timeout=30)
    p.wait_iterations(2)
    edit(tmp_path / "work.py", "def work(x):\n    return x * 1\n", """\
class Scaled:
    def __init__(self, x):
        self.x = x

    def value(self):
        return self.x * 7


def scaled(x):
    return Scaled(x).value()


def work(x):
    return scaled(x)
""")
    p.wait_stderr(r"^fever: reloaded work\.")
    p.wait_stdout(r"^\d+ \[7, 14, 21, 28, 35, 42\]$")
    p.wait_iterations(3)
    assert p.stdout[-1].endswith("[7, 14, 21, 28, 35, 42]"), p.report()
    p.assert_not_restarted()
    p.assert_no_fever_errors()


# The workers set their own FACTOR: the code the program compiled once for all runs with each
# process's globals.
OWN_GLOBALS = """
import multiprocessing as mp
import sys
import time

import work


def init():
    work.FACTOR = 10


def main():
    with mp.get_context(sys.argv[1]).Pool(2, initializer=init) as pool:
        i = 0
        while True:
            print(i, pool.map(work.work, [1, 2, 3, 4, 5, 6], chunksize=1), work.work(1), flush=True)
            i += 1
            time.sleep(0.05)


if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_workers_run_the_new_code_with_their_own_globals(fever, tmp_path, method):
    project(tmp_path, {"work.py": "FACTOR = 1\n" + WORK.replace("x * 1", "x * FACTOR"), "app.py": OWN_GLOBALS})
    p = fever.run("app.py", method, cwd=tmp_path)
    p.wait_stdout(r"^\d+ \[10, 20, 30, 40, 50, 60\] 1$", timeout=30)
    edit(tmp_path / "work.py", "x * FACTOR", "x * FACTOR + 1")
    p.wait_stderr(RELOADED)
    p.wait_stdout(r"^\d+ \[11, 21, 31, 41, 51, 61\] 2$")
    p.wait_iterations(2)
    assert p.stdout[-1].endswith("[11, 21, 31, 41, 51, 61] 2"), p.report()
    p.assert_not_restarted()
    p.assert_no_fever_errors()


# Only the workers import `helper` (in the task): the program has nothing to compile for them.
WORKERS_ONLY = """
import multiprocessing as mp
import sys
import time


def task(x):
    import helper
    return helper.scale(x)


def main():
    with mp.get_context(sys.argv[1]).Pool(2) as pool:
        i = 0
        while True:
            print(i, pool.map(task, [1, 2, 3], chunksize=1), "helper" in sys.modules, flush=True)
            i += 1
            time.sleep(0.05)


if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_module_only_the_workers_import(fever, tmp_path, method):
    project(tmp_path, {"helper.py": "def scale(x):\n    return x * 1\n", "app.py": WORKERS_ONLY})
    p = fever.run("app.py", method, cwd=tmp_path)
    p.wait_stdout(r"^\d+ \[1, 2, 3\] False$", timeout=30)
    p.wait_iterations(2)
    edit(tmp_path / "helper.py", "x * 1", "x * 100")
    p.wait_stderr(r"^fever: reloaded helper\.scale ")
    p.wait_stdout(r"^\d+ \[100, 200, 300\] False$")
    p.wait_iterations(2)
    assert p.stdout[-1].endswith("[100, 200, 300] False"), p.report()
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def pid_alive(pid: int) -> bool:
    """Is `pid` a process that exists and is no zombie?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid) and not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.02)
    return False


# A child that ignores Ctrl-C and would sleep for a minute: only fever can end it.
STUBBORN = """
import os
import signal
import sys
import time

import work

ready, said = os.pipe()
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("child", os.getpid(), work.work(1), flush=True)
    os.write(said, b".")
    time.sleep(60)
    os._exit(0)
os.read(ready, 1)  # the child's line comes first
"""


def test_a_watch_rerun_ends_the_last_runs_children(fever, tmp_path):
    project(tmp_path, {"work.py": WORK, "app.py": STUBBORN + 'print("end", flush=True)\n'})
    p = watch(fever, tmp_path, "app.py")
    first = int(p.wait_stdout(r"^child (\d+) 1$")[1])
    next_run(p)
    edit(tmp_path / "work.py", "x * 1", "x * 100")
    second = int(p.wait_stdout(r"^child (\d+) 100$")[1])
    next_run(p)
    assert wait_gone(first), f"the first run's child {first} is still there\n{p.report()}"
    assert pid_alive(second), p.report()
    p.signal(signal.SIGINT)
    assert p.wait_exit() == 0, p.report()
    assert wait_gone(second), f"the last run's child {second} is still there\n{p.report()}"


def test_ctrl_c_leaves_no_child_behind(fever, tmp_path):
    project(tmp_path, {"work.py": WORK, "app.py": STUBBORN + "time.sleep(60)\n"})
    p = fever.run("app.py", cwd=tmp_path)
    child = int(p.wait_stdout(r"^child (\d+) 1$")[1])
    p.wait_asleep()
    p.signal(signal.SIGINT)
    assert p.wait_exit() == 130, p.report()
    assert wait_gone(child), f"the child {child} is still there\n{p.report()}"


def test_ps_shows_the_children_under_their_program(fever, tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(run)}
    project(tmp_path, {"work.py": WORK, "app.py": POOL})
    p = fever.run("app.py", "fork", cwd=tmp_path, env=env)
    p.wait_stdout(rf"^\d+ {OLD}$", timeout=30)
    top = p.proc.pid
    out = run_fever("ps", cwd=tmp_path, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[0] == str(top))
    assert lines[at].split()[2] == "no", out.stdout
    children = lines[at + 1:at + 3]
    assert [line.split()[-2:] for line in children] == [["├─", "ForkPoolWorker-1"],
                                                        ["└─", "ForkPoolWorker-2"]], out.stdout
    assert [line.split()[1] for line in children] == [str(top)] * 2, out.stdout
    for line in children:
        pid = int(line.split()[0])
        assert pid != top and pid_alive(pid), out.stdout
        with open(f"/proc/{pid}/stat") as f:
            assert int(f.read().rsplit(")", 1)[1].split()[1]) == top, out.stdout
    assert len(lines) == at + 3, out.stdout
    p.assert_no_fever_errors()


RECORDED_POOL = """
import multiprocessing as mp
import sys

import work


def main():
    with mp.get_context(sys.argv[1]).Pool(2) as pool:
        print(pool.map(work.work, range(20), chunksize=1), flush=True)
        pool.map(work.pid, range(8), chunksize=1)
        print("workers", *sorted(p.pid for p in pool._pool), flush=True)
        pool.close()
        pool.join()
    print(work.work(1000), flush=True)


if __name__ == "__main__":
    main()
"""

# The set is a frozenset constant, whose order differs between interpreters (str hashes): the
# same code must still be one function of the trace.
PID = """
import os


def pid(x):
    if x in {"a", "b", "c", "d", "e"}:
        return None
    return os.getpid()
"""

PROCESS_HEADER = re.compile(r"^== process (\d+) thread (\d+) ==$")


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_record_a_pool_records_each_worker_as_a_process(tmp_path, method):
    project(tmp_path, {"work.py": WORK + PID, "app.py": RECORDED_POOL})
    cli = make_cli("venv")
    rec = record(cli, "app.py", method, cwd=tmp_path)
    out = rec.result.stdout.splitlines()
    assert out[0] == str(list(range(20))) and out[2] == "1000", describe(rec.result)
    workers = {int(pid) for pid in out[1].split()[1:]}
    # The tree: the program's thread, then each worker's, with the calls it ran.
    tree = show(cli, rec.trace).stdout
    sections: dict[str, list[str]] = {}
    header = None
    for line in tree.splitlines():
        if line.startswith("== "):
            header = line
            sections[header] = []
        elif header and line.strip():
            sections[header].append(line.strip())
    children = {int(m[1]): lines for h, lines in sections.items() if (m := PROCESS_HEADER.match(h))}
    assert children and set(children) <= workers, tree
    ran = sum(int(m[1]) if (m := re.search(r"\[[×x](\d+)\]", line)) else 1
              for lines in children.values() for line in lines if line.startswith("work.work("))
    assert ran == 20, tree
    # The profile counts the calls of every process, one row per function.
    profile = show_profile(cli, rec.trace)
    assert profile_row(profile, "work.work").calls == 21
    assert profile_row(profile, "work.pid").calls == 8
    assert not [name for name in profile if "[v" in name], profile
    # Each worker is a process of its own in the exports.
    chrome, _ = export(cli, rec.trace, "chrome")
    events = json.loads(chrome.read_text())["traceEvents"]
    named = {e["pid"]: e["args"]["name"] for e in events if e.get("name") == "process_name"}
    assert all(f"process {pid}, child of " in named[pid] for pid in children), named
    # The workers' calls, and the program's own last one.
    ran_in = {e["pid"] for e in events if e.get("name") == "work.work" and e["ph"] == "B"}
    assert ran_in & set(children) and len(ran_in - set(children)) == 1, (ran_in, children)
    # `fever check` re-runs the workers' calls like any other.
    checked = cli.run("check", rec.trace, "--select", "work.work", cwd=tmp_path)
    assert checked.returncode == 0, describe(checked)
    assert "fever: 21 passed, 0 failed" in checked.stderr, describe(checked)


def child_rings(top: int) -> list[str]:
    """The live rings of the children of recording program `top` that are still named, and their
    directory if it is still there."""
    dirs = [d for d in ("/dev/shm", tempfile.gettempdir()) if os.path.isdir(d)]
    return [name for d in dirs for name in os.listdir(d) if name.startswith(f"fever-ring-{top}-")]


# A child killed while the program records, and a child that outlives the program and forks a
# child of its own that is killed: no drain reads that one's ring.
KILLED_CHILDREN = """
import os
import signal
import time
import warnings

import work

# Forking with fever's threads running is fine: only the forking thread is copied.
warnings.simplefilter("ignore", DeprecationWarning)


# Forks a child calling the project's code, and kills it with SIGKILL 0.2 s later.
def fork_and_kill(value):
    pid = os.fork()
    if pid == 0:
        while True:
            work.work(value)
            time.sleep(0.001)
    time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return pid


top = os.getpid()
killed = fork_and_kill(1)
late = os.fork()
if late == 0:
    while os.getppid() == top:
        time.sleep(0.01)
    time.sleep(0.3)
    fork_and_kill(2)
    os._exit(0)
print("top", top, "killed", killed, "late", late, flush=True)
"""


def test_record_leaves_no_ring_of_a_killed_child(tmp_path):
    project(tmp_path, {"work.py": WORK, "app.py": KILLED_CHILDREN})
    rec = record(make_cli("venv"), "app.py", cwd=tmp_path)
    m = re.search(r"^top (\d+) killed (\d+) late (\d+)$", rec.result.stdout, re.M)
    assert m, describe(rec.result)
    top, killed, late = map(int, m.groups())
    # The late child held the program's stdout open: it has ended by now.
    assert wait_gone(late), f"the late child {late} is still there"
    assert child_rings(top) == [], child_rings(top)
    # The killed child's calls up to its last flush are in the trace, under its process.
    tree = show(make_cli("venv"), rec.trace).stdout
    assert f"== process {killed} thread 1 ==" in tree, tree


# Forks a short-lived child every 50 ms, each calling the project's code.
FORKING = """
import os
import time
import warnings

import work

warnings.simplefilter("ignore", DeprecationWarning)
while True:
    pid = os.fork()
    if pid == 0:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            work.work(1)
            time.sleep(0.001)
        os._exit(0)
    print("forked", pid, flush=True)
    time.sleep(0.05)
    while os.waitpid(-1, os.WNOHANG)[0]:
        pass
"""


def children_of(pid: int) -> list[int]:
    """The live child processes of `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and fields[1] == str(pid):
            found.append(int(entry))
    return found


def fever_threads(pid: int) -> list[str]:
    """The names of process `pid`'s threads that fever started for a recording (not the ones
    every child has: its family connection and its control socket)."""
    names = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                names.append(f.read().strip())
        except FileNotFoundError:
            pass
    return [n for n in names if n.startswith("fever-") and n not in ("fever-member", "fever-control")]


def test_children_forked_during_an_attach_record_window_are_left_alone(fever, tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(run)}
    project(tmp_path, {"work.py": WORK, "app.py": FORKING})
    p = fever.run("app.py", cwd=tmp_path, env=env)
    p.wait_stdout(r"^forked \d+$", timeout=30)
    top = p.proc.pid
    done = run_fever("attach", str(top), "--duration", "0.5", "--record", "window.trace",
                     cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "fever: recorded " in done.stderr, done.stderr
    # Children forked during the window and after it run with no recording of their own.
    first = int(p.wait_stdout(r"^forked (\d+)$")[1])
    children = children_of(top)
    assert first in children and len(children) > 10, children
    assert {c: fever_threads(c) for c in children if fever_threads(c)} == {}
    assert child_rings(top) == [], child_rings(top)
    p.assert_no_fever_errors()


# `with Pool(...)` ends the workers with SIGTERM (`terminate()`) as soon as the map returned.
TERMINATED_POOL = """
import multiprocessing as mp
import sys

import work

if __name__ == "__main__":
    with mp.get_context(sys.argv[1]).Pool(2) as pool:
        print(sum(pool.map(work.work, range(20), chunksize=1)), flush=True)
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_record_a_terminated_pool_keeps_every_workers_calls(tmp_path, method):
    project(tmp_path, {"work.py": WORK, "app.py": TERMINATED_POOL})
    cli = make_cli("venv")
    rec = record(cli, "app.py", method, cwd=tmp_path)
    assert rec.result.stdout.strip() == "190", describe(rec.result)
    assert profile_row(show_profile(cli, rec.trace), "work.work").calls == 20
