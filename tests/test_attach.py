"""`fever ps` and `fever attach`: a real long-running program under `fever run` (or `--no-watch`,
`watch`, `record`), profiled from another process over its control socket.

Every test gets its own control directory (`XDG_RUNTIME_DIR` under tmp_path), so `fever ps`
sees only the test's processes. The program calls `leaf` exactly 1000 times per `tick`, and a
tick takes far less than the interpreter's switch interval, so the profile of any attached
window holds exactly 1000 calls of `leaf` per call of `tick`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import FEVER, write, run_fever
from record_support import RECORDED_LINE, STANDALONE, Cli, clean_stderr, profile_row, show_profile
from test_replay_ui import Tmux

PROGRAM = """\
import sys
import time


def leaf(x):
    return x + 1


def tick():
    total = 0
    for i in range(1000):
        total += leaf(i)
    return total


def main():
    deadline = time.monotonic() + (float(sys.argv[1]) if len(sys.argv) > 1 else 120)
    n = 0
    while time.monotonic() < deadline:
        tick()
        print(n, "ticks", flush=True)
        n += 1
        time.sleep(0.01)


main()
"""

ROW = re.compile(r"^\s*(\d+)\s+\S+ \S+\s+\S+ \S+\s+\S+ \S+\s+(__main__\.\w+)$")


@pytest.fixture
def env(tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    return {"XDG_RUNTIME_DIR": str(run)}


def sock_dir(env) -> Path:
    return Path(env["XDG_RUNTIME_DIR"]) / "fever"


def start(fever, tmp_path, env, *command: str, seconds: float = 120):
    write(tmp_path / "prog.py", PROGRAM)
    proc = fever.start(*command, "prog.py", str(seconds), cwd=tmp_path, env=env)
    proc.wait_stdout(r"^2 ticks")
    return proc


def attach(env, pid: int, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return run_fever("attach", str(pid), *args, cwd=Path.cwd(), env=env, timeout=timeout)


def calls(stdout: str) -> dict[str, int]:
    return {m[2]: int(m[1]) for line in stdout.splitlines() if (m := ROW.match(line))}


def ps(env) -> str:
    done = run_fever("ps", cwd=Path.cwd(), env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_until(check, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)
        time.sleep(0.05)


def attached(env, pid: int) -> bool | None:
    for line in ps(env).splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == str(pid):
            return fields[2] == "yes"
    return None


@pytest.mark.parametrize("command", [("run",), ("run", "--no-watch"), ("record", "-o", "t.trace"),
                                     ("watch", "--no-cache")])
def test_attach_counts_every_call_exactly_and_the_program_runs_on(fever, tmp_path, env, command):
    proc = start(fever, tmp_path, env, *command)
    done = attach(env, proc.proc.pid, "--duration", "1.5")
    assert done.returncode == 0, done.stderr
    assert not done.stderr
    counted = calls(done.stdout)
    assert set(counted) == {"__main__.tick", "__main__.leaf"}, done.stdout
    assert counted["__main__.tick"] >= 5, done.stdout
    assert counted["__main__.leaf"] == 1000 * counted["__main__.tick"], done.stdout
    assert f"fever attach {proc.proc.pid}: " in done.stdout
    assert f"`fever {command[0]} " in done.stdout
    # Sorted by total time: tick (which calls leaf) first.
    names = [m[2] for line in done.stdout.splitlines() if (m := ROW.match(line))]
    assert names == ["__main__.tick", "__main__.leaf"]
    # The program ran on during and after, and is detached.
    proc.wait_iterations(20, pattern=r"^(\d+) ticks")
    proc.assert_running()
    assert attached(env, proc.proc.pid) is False
    # A second, later attach starts from zero and is exact again.
    again = attach(env, proc.proc.pid, "--duration", "0.5", "--sort", "calls", "--top", "1")
    assert again.returncode == 0, again.stderr
    counted = calls(again.stdout)
    assert list(counted) == ["__main__.leaf"], again.stdout
    assert counted["__main__.leaf"] % 1000 == 0 and counted["__main__.leaf"] > 0
    assert "2 functions called" in again.stdout
    proc.assert_running()
    assert not proc.fever_lines(r"^fever: (error|warning)")


def test_ps_lists_the_processes_and_who_is_attached(fever, tmp_path, env):
    assert "no process is running under fever" in run_fever("ps", cwd=tmp_path, env=env).stderr
    proc = start(fever, tmp_path, env, "run")
    out = ps(env)
    header, *lines = out.splitlines()
    assert header.split() == ["PID", "PPID", "ATTACHED", "ROOT", "COMMAND"]
    assert len(lines) == 1, out
    fields = lines[0].split()
    assert fields[0] == str(proc.proc.pid) and fields[2:4] == ["no", str(tmp_path.resolve())], out
    with open(f"/proc/{proc.proc.pid}/stat") as f:
        assert fields[1] == f.read().rsplit(")", 1)[1].split()[1], out
    assert lines[0].endswith("fever run prog.py 120"), out
    client = fever.start("attach", str(proc.proc.pid), cwd=tmp_path, env=env)
    wait_until(lambda: attached(env, proc.proc.pid), "ps to show the attach")
    # Without a terminal, Ctrl-C ends the attach with the table.
    client.signal(signal.SIGINT)
    assert client.wait_exit() == 0, client.report()
    assert calls("\n".join(client.stdout))["__main__.leaf"] % 1000 == 0
    assert attached(env, proc.proc.pid) is False
    proc.assert_running()


def test_a_second_attach_is_refused_while_one_is_active(fever, tmp_path, env):
    proc = start(fever, tmp_path, env, "run")
    first = fever.start("attach", str(proc.proc.pid), cwd=tmp_path, env=env)
    wait_until(lambda: attached(env, proc.proc.pid), "the first attach")
    second = attach(env, proc.proc.pid, "--duration", "1")
    assert second.returncode == 2
    assert "fever: error: cannot attach to process" in second.stderr
    assert "already attached" in second.stderr
    assert "Traceback" not in second.stderr
    first.signal(signal.SIGINT)
    assert first.wait_exit() == 0, first.report()
    proc.assert_running()


def test_a_killed_client_leaves_the_program_detached(fever, tmp_path, env):
    proc = start(fever, tmp_path, env, "run")
    client = fever.start("attach", str(proc.proc.pid), "--record", "killed.trace", cwd=tmp_path, env=env)
    wait_until(lambda: attached(env, proc.proc.pid), "the attach")
    proc.wait_iterations(3, pattern=r"^(\d+) ticks")  # a window with ticks in it
    client.signal(signal.SIGKILL)
    client.kill()
    wait_until(lambda: attached(env, proc.proc.pid) is False, "the program to detach", timeout=5)
    # The trace of the window was completed all the same.
    rows = show_profile(VENV_CLI, tmp_path / "killed.trace")
    assert profile_row(rows, "leaf").calls == 1000 * profile_row(rows, "tick").calls
    done = attach(env, proc.proc.pid, "--duration", "0.5")
    assert done.returncode == 0, done.stderr
    proc.wait_iterations(5, pattern=r"^(\d+) ticks")
    proc.assert_running()


def frame(payload: bytes) -> bytes:
    return struct.pack("<I", len(payload)) + payload


def answer(sock: socket.socket) -> tuple[int, bytes]:
    head = sock.recv(4, socket.MSG_WAITALL)
    assert len(head) == 4, "the connection closed"
    (length,) = struct.unpack("<I", head)
    payload = sock.recv(length, socket.MSG_WAITALL)
    assert payload[0] == 2
    return payload[1], payload[2:]


ERROR, PONG = 105, 101


def test_garbage_and_oversized_messages_are_answered_with_errors(fever, tmp_path, env):
    proc = start(fever, tmp_path, env, "run")
    path = str(sock_dir(env) / f"{proc.proc.pid}.sock")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(frame(bytes([9, 1])))  # another protocol version
        tag, body = answer(sock)
        assert tag == ERROR and b"protocol version 9" in body
        sock.sendall(frame(bytes([2, 77, 1, 2, 3])))  # an unknown request
        tag, body = answer(sock)
        assert tag == ERROR and b"unknown request tag 77" in body
        sock.sendall(frame(bytes([2, 8])))  # Names without its body
        assert answer(sock)[0] == ERROR
        sock.sendall(frame(bytes([2, 1])))  # the connection still works: Ping
        assert answer(sock) == (PONG, b"")
        sock.sendall(b"\xff\xff\xff\xff" + b"x" * 100)  # over the size cap: answered, then closed
        tag, body = answer(sock)
        assert tag == ERROR and b"over the limit" in body
        try:
            assert sock.recv(10) == b""
        except ConnectionResetError:  # closed with the rest of our bytes unread
            pass
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(os.urandom(3))  # a cut frame, then gone
    proc.wait_iterations(5, pattern=r"^(\d+) ticks")
    proc.assert_running()
    done = attach(env, proc.proc.pid, "--duration", "0.5")
    assert done.returncode == 0, done.stderr
    assert not proc.fever_lines(r"^fever: (error|warning)")


def test_the_socket_is_private_removed_at_exit_and_stale_ones_are_cleaned(fever, tmp_path, env):
    directory = sock_dir(env)
    proc = start(fever, tmp_path, env, "run", seconds=3)
    path = directory / f"{proc.proc.pid}.sock"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert proc.wait_exit() == 0
    assert not path.exists()
    # A process killed with SIGKILL leaves its socket; `fever ps` removes it.
    killed = start(fever, tmp_path, env, "run")
    stale = directory / f"{killed.proc.pid}.sock"
    killed.kill()
    assert stale.exists()
    assert f"{killed.proc.pid} " not in ps(env)
    assert not stale.exists()


def test_the_session_directories_of_killed_programs_are_removed_when_another_program_exits(fever, tmp_path, env):
    directory = sock_dir(env)
    killed = start(fever, tmp_path, env, "run")
    left = sorted(directory.glob(f"family-{killed.proc.pid}-*"))
    assert left, sorted(p.name for p in directory.iterdir())
    killed.kill()
    assert all(d.exists() for d in left)
    write(tmp_path / "short.py", "print('short')\n")
    done = run_fever("run", "--no-watch", "short.py", cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "short\n"
    assert not any(d.exists() for d in left)


OTHER_USER_PROBE = """\
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("refused by permissions")
    sys.exit()
# Refused at once: the process speaks first, then closes.
head = s.recv(4, socket.MSG_WAITALL)
body = s.recv(struct.unpack("<I", head)[0], socket.MSG_WAITALL)
print(body[1], body[2 + 4:].decode(), s.recv(10))
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None
                    or not os.access("/usr/bin/python3", os.X_OK),
                    reason="needs root, setpriv and /usr/bin/python3 to connect as another user")
def test_another_user_is_refused(fever, tmp_path):
    # A control directory others can traverse up to fever's own 0700 one.
    run = Path(tempfile.mkdtemp(prefix="fever-attach-test-", dir="/tmp"))
    try:
        run.chmod(0o711)
        env = {"XDG_RUNTIME_DIR": str(run)}
        proc = start(fever, tmp_path, env, "run")
        path = sock_dir(env) / f"{proc.proc.pid}.sock"

        def probe() -> str:
            done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                   "/usr/bin/python3", "-c", OTHER_USER_PROBE, str(path)],
                                  capture_output=True, text=True, timeout=30)
            assert not done.stderr
            return done.stdout.strip()

        assert probe() == "refused by permissions"
        # Even with the permissions opened up, the peer's uid (SO_PEERCRED) is refused.
        sock_dir(env).chmod(0o711)
        path.chmod(0o666)
        assert probe() == "105 refused: this process belongs to another user b''"
        # `fever attach` run by that user says so, with a hint.
        if STANDALONE.exists():
            done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                   str(STANDALONE), "attach", str(proc.proc.pid)],
                                  capture_output=True, text=True, timeout=30,
                                  env={"PATH": os.environ["PATH"], "XDG_RUNTIME_DIR": str(run)})
            assert done.returncode == 2, done.stderr
            assert done.stderr == (f"fever: error: process {proc.proc.pid} belongs to another user "
                                   f"(uid {os.geteuid()})\nhint: run `fever attach` as the user who "
                                   "started it\n"), done.stderr
        proc.assert_running()
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_a_missing_pid_and_a_process_not_under_fever_are_clear_errors(tmp_path, env):
    done = attach(env, 4_194_999)
    assert done.returncode == 2
    assert done.stderr.startswith("fever: error: no process has pid 4194999\nhint: ")
    done = attach(env, 4_194_999, "--record", str(tmp_path / "missing" / "w.trace"))
    assert done.returncode == 2
    assert done.stderr.startswith(f"fever: error: cannot record: the directory {tmp_path / 'missing'} "
                                  "does not exist\nhint: "), done.stderr
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        done = attach(env, sleeper.pid)
        assert done.returncode == 2
        assert f"fever: error: process {sleeper.pid} is not running under fever" in done.stderr
        assert "hint: start the program with `fever run`" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        sleeper.kill()
        sleeper.wait(10)


def test_a_program_that_exits_while_attached_gives_the_table_so_far(fever, tmp_path, env):
    proc = start(fever, tmp_path, env, "run", seconds=2.5)
    trace = tmp_path / "so-far.trace"
    done = attach(env, proc.proc.pid, "--record", str(trace))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"fever: error: process {proc.proc.pid} exited while attached" in done.stderr
    counted = calls(done.stdout)
    assert counted["__main__.leaf"] == 1000 * counted["__main__.tick"] > 0, done.stdout
    assert proc.wait_exit() == 0
    # The program completed the trace of the attached window as it exited.
    assert f"the trace of the attached window is in {trace}" in done.stderr
    rows = show_profile(VENV_CLI, trace)
    assert profile_row(rows, "leaf").calls == 1000 * profile_row(rows, "tick").calls > 0


VENV_CLI = Cli("venv", [str(FEVER)])


def test_record_writes_a_trace_of_the_attached_window_that_show_reads(fever, tmp_path, env):
    proc = start(fever, tmp_path, env, "run", "--no-watch")
    client = tmp_path / "client"
    client.mkdir()
    # A relative TRACE is the client's, not the program's (which runs in tmp_path).
    done = run_fever("attach", str(proc.proc.pid), "--duration", "1.5", "--record", "window.trace",
                     cwd=client, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    clean_stderr(done.stderr)
    trace = client / "window.trace"
    recorded = RECORDED_LINE.match(done.stderr.strip())
    assert recorded, done.stderr
    assert Path(recorded["path"]) == trace and recorded["functions"] == "2", done.stderr
    counted = calls(done.stdout)
    assert counted["__main__.leaf"] == 1000 * counted["__main__.tick"] > 0, done.stdout
    # The trace holds the same window: the same exact counts, and only the calls that started in it.
    rows = show_profile(VENV_CLI, trace)
    assert profile_row(rows, "tick").calls == counted["__main__.tick"], rows
    assert profile_row(rows, "leaf").calls == counted["__main__.leaf"], rows
    assert len(rows) == 2, rows
    assert int(recorded["calls"].replace(",", "").replace("_", "")) == sum(counted.values())
    proc.wait_iterations(5, pattern=r"^(\d+) ticks")
    proc.assert_running()
    assert attached(env, proc.proc.pid) is False
    assert not proc.fever_lines(r"^fever: ")
    # Recording again, from a later attach, gives a second trace.
    again = attach(env, proc.proc.pid, "--duration", "0.5", "--record", str(tmp_path / "again.trace"))
    assert again.returncode == 0, again.stderr
    assert profile_row(show_profile(VENV_CLI, tmp_path / "again.trace"), "leaf").calls > 0


def test_record_is_refused_where_a_trace_is_being_recorded(fever, tmp_path, env):
    proc = start(fever, tmp_path, env, "record", "-o", "whole.trace")
    done = attach(env, proc.proc.pid, "--duration", "0.5", "--record", str(tmp_path / "w.trace"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"fever: error: cannot attach to process {proc.proc.pid}: " in done.stderr
    assert "is recorded by `fever record` already" in done.stderr
    assert not (tmp_path / "w.trace").exists()
    # Refused whole: not left attached; a plain attach works.
    assert attached(env, proc.proc.pid) is False
    plain = attach(env, proc.proc.pid, "--duration", "0.5")
    assert plain.returncode == 0, plain.stderr
    proc.assert_running()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_the_live_table_on_a_terminal(fever, tmp_path, env):
    proc = start(fever, tmp_path, env, "run")
    command = " ".join(shlex.quote(a) for a in
                       ["env", f"XDG_RUNTIME_DIR={env['XDG_RUNTIME_DIR']}", str(FEVER), "attach",
                        str(proc.proc.pid)])
    t = Tmux(tmp_path, command, width=120, height=30)
    try:
        screen = t.wait_for(r"__main__\.leaf")
        assert re.search(r"sorted by total", screen), screen
        assert re.search(r"^\s*calls\s+total\s+self\s+total/call\s+function", screen, re.M), screen
        # Sorted by total: tick (which calls leaf) first, once one tick has ended since the attach
        # (the first screen may come before: tick at 0 ns below leaf).
        t.wait_for(r"function\s*\n\s*\d+\s.*__main__\.tick\s*$")
        t.keys("c")
        screen = t.wait_for(r"sorted by calls")
        first = [line for line in screen.splitlines() if "__main__." in line]
        assert "__main__.leaf" in first[0], screen
        assert attached(env, proc.proc.pid) is True
        t.keys("q")
        screen = t.wait_for(r"^EXIT=0")
        counted = calls(screen)
        assert counted["__main__.leaf"] == 1000 * counted["__main__.tick"] > 0, screen
        assert attached(env, proc.proc.pid) is False
    finally:
        t.kill()
    proc.assert_running()


FORKING = """\
import os
import time


def leaf(x):
    return x + 1


def tick():
    return sum(leaf(i) for i in range(100))


def in_child():
    for i in range(50):
        leaf(i)


n = 0
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    tick()
    pid = os.fork()
    if pid == 0:
        in_child()
        os._exit(0)
    os.waitpid(pid, 0)
    print(n, "ticks", flush=True)
    n += 1
    time.sleep(0.01)
"""


def test_forked_children_count_nothing_into_the_parents_profile_or_trace(fever, tmp_path, env):
    write(tmp_path / "prog.py", FORKING)
    proc = fever.start("run", "--no-watch", "prog.py", cwd=tmp_path, env=env)
    proc.wait_stdout(r"^2 ticks")
    trace = tmp_path / "fork.trace"
    done = attach(env, proc.proc.pid, "--duration", "1", "--record", str(trace))
    assert done.returncode == 0, done.stderr
    counted = calls(done.stdout)
    # Only the parent's calls: the children's `in_child` and their 50 `leaf`s are not counted.
    assert "__main__.in_child" not in counted, done.stdout
    assert counted["__main__.leaf"] == 100 * counted["__main__.tick"] > 0, done.stdout
    # A generator expression is named with its first line.
    assert re.search(rf"^\s*{counted['__main__.tick']}\s.*\s__main__\.tick\.<locals>\.<genexpr>:10$",
                     done.stdout, re.M), done.stdout
    rows = show_profile(VENV_CLI, trace)
    assert profile_row(rows, "leaf").calls == counted["__main__.leaf"]
    assert not [name for name in rows if name.endswith("in_child")], rows
    proc.wait_iterations(5, pattern=r"^(\d+) ticks")
    proc.assert_running()
    assert not proc.fever_lines(r"^fever: (error|warning)")
