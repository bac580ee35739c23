"""`fever attach PID` on a process that was NOT started under fever: on Python 3.14+ fever loads
itself into it with `sys.remote_exec` (PEP 768), and the attach goes on over the control socket
the bootstrap opens. Before 3.14 it says that attach needs `fever run` or Python 3.14+.

The target is a plain `python prog.py` of the venv under test (fever is importable there); the
program is test_attach.py's, whose every `tick` calls `leaf` exactly 1000 times, so the profile
of any attached window holds exactly 1000 calls of `leaf` per `tick`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import FEVER, PYTHON, FeverProcess, write
from record_support import profile_row, show_profile
from test_attach import PROGRAM, VENV_CLI, attach, attached, calls, env, sock_dir, wait_until  # noqa: F401

VERSION = tuple(int(part) for part in subprocess.run(
    [str(PYTHON), "-c", "import sys; print(*sys.version_info[:2])"],
    capture_output=True, text=True, check=True, timeout=30).stdout.split())
PEP_768 = VERSION >= (3, 14)
needs_pep_768 = pytest.mark.skipif(not PEP_768, reason="PEP 768 (sys.remote_exec) needs the target "
                                   f"to run Python 3.14+; the venv under test is {VERSION}")


def plain(fever, tmp_path: Path, env: dict, *python_args: str, program: str = PROGRAM,
          ready: str = r"^2 ticks") -> FeverProcess:
    """`python [ARGS] prog.py 120` with the venv's python, not under fever (killed at teardown),
    once it printed a line matching `ready`."""
    write(tmp_path / "prog.py", program)
    proc = FeverProcess([str(PYTHON), *python_args, "prog.py", "120"], cwd=tmp_path, env=env)
    fever.processes.append(proc)
    proc.wait_stdout(ready)
    return proc


def assert_refused(done: subprocess.CompletedProcess, message: str, hint: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"fever: error: {message}"), done.stderr
    assert f"\nhint: {hint}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not done.stdout


@needs_pep_768
def test_a_plain_python_process_is_attached_exactly_and_runs_on(fever, tmp_path, env):
    proc = plain(fever, tmp_path, env)
    pid = proc.proc.pid
    done = attach(env, pid, "--duration", "1.5")
    assert done.returncode == 0, done.stderr
    assert done.stderr == (f"fever: loaded fever into process {pid} with sys.remote_exec (PEP 768); "
                           f"project root: {tmp_path}\n")
    counted = calls(done.stdout)
    assert set(counted) == {"__main__.tick", "__main__.leaf"}, done.stdout
    assert counted["__main__.tick"] >= 5, done.stdout
    assert counted["__main__.leaf"] == 1000 * counted["__main__.tick"], done.stdout
    assert f"fever attach {pid}: " in done.stdout and "attached to `python prog.py 120`" in done.stdout
    # The program ran on, detached; from now on it is one of `fever ps`'s processes.
    proc.wait_iterations(20, pattern=r"^(\d+) ticks")
    proc.assert_running()
    assert attached(env, pid) is False
    # A second attach connects to the socket at once, and records the window.
    again = attach(env, pid, "--duration", "0.5", "--record", str(tmp_path / "w.trace"))
    assert again.returncode == 0, again.stderr
    assert "loaded fever" not in again.stderr
    counted = calls(again.stdout)
    assert counted["__main__.leaf"] == 1000 * counted["__main__.tick"] > 0, again.stdout
    rows = show_profile(VENV_CLI, tmp_path / "w.trace")
    assert profile_row(rows, "tick").calls == counted["__main__.tick"]
    proc.wait_iterations(5, pattern=r"^(\d+) ticks")
    proc.assert_running()
    # fever said nothing into the program's output.
    assert proc.stderr == []
    # No bootstrap is left behind.
    assert [p.name for p in sock_dir(env).iterdir()] == [f"{pid}.sock"]


@needs_pep_768
def test_a_process_whose_environment_lacks_fever_is_told_so(fever, tmp_path, env):
    # -S: no site-packages, so `import fever` fails in the program.
    proc = plain(fever, tmp_path, env, "-S")
    done = attach(env, proc.proc.pid)
    assert_refused(done, f"fever is not installed in the environment of process {proc.proc.pid} "
                   f"(its Python is {PYTHON}; import fever: No module named 'fever')",
                   f"install it there (`{PYTHON} -m pip install fever`)")
    proc.wait_iterations(3, pattern=r"^(\d+) ticks")
    proc.assert_running()
    assert proc.stderr == []
    assert not (sock_dir(env) / f"{proc.proc.pid}.sock").exists()


@needs_pep_768
@pytest.mark.parametrize(("python_args", "env_var", "how"), [
    ((), True, "PYTHON_DISABLE_REMOTE_DEBUG is set in its environment"),
    (("-X", "disable-remote-debug"), False, "it was started with -X disable-remote-debug"),
])
def test_remote_debugging_turned_off_is_respected(fever, tmp_path, env, python_args, env_var, how):
    proc = plain(fever, tmp_path, env | ({"PYTHON_DISABLE_REMOTE_DEBUG": "1"} if env_var else {}),
                 *python_args)
    done = attach(env, proc.proc.pid)
    assert_refused(done, f"process {proc.proc.pid} has remote debugging turned off ({how})",
                   "start the program with `fever run`")
    proc.wait_iterations(3, pattern=r"^(\d+) ticks")
    proc.assert_running()
    assert proc.stderr == []


SLEEPS_FIRST = "import time\nprint('asleep', flush=True)\ntime.sleep(9)\n" + PROGRAM


@needs_pep_768
def test_a_main_thread_stuck_in_a_long_c_call_times_out_and_the_late_request_does_nothing(
        fever, tmp_path, env):
    proc = plain(fever, tmp_path, env, program=SLEEPS_FIRST, ready=r"^asleep$")
    proc.wait_asleep()
    done = attach(env, proc.proc.pid)
    assert_refused(done, f"process {proc.proc.pid}'s main thread did not reach a point where it can "
                   "run fever's bootstrap within 5 s: it is blocked in a system call",
                   "sys.remote_exec runs code between two Python instructions")
    # When the sleep ends, the pending bootstrap runs, does nothing and removes itself.
    proc.wait_iterations(3, pattern=r"^(\d+) ticks")
    wait_until(lambda: not any(sock_dir(env).iterdir()), "the pending bootstrap to remove itself")
    proc.assert_running()
    assert proc.stderr == []


NOT_DUMPABLE = "import ctypes\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE\n" + PROGRAM


@needs_pep_768
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv (to attach without CAP_SYS_PTRACE)")
def test_the_kernel_refusing_is_explained(fever, tmp_path, env):
    # A process that is not dumpable, attached without CAP_SYS_PTRACE: the kernel says EPERM.
    proc = plain(fever, tmp_path, env, program=NOT_DUMPABLE)
    done = subprocess.run(["setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace",
                           str(FEVER), "attach", str(proc.proc.pid)], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, **env))
    assert_refused(done, f"the kernel refused to let fever into process {proc.proc.pid}",
                   "PEP 768 needs the rights of a debugger (ptrace)")
    for words in ("lacks CAP_SYS_PTRACE", "/proc/sys/kernel/yama/ptrace_scope", "--cap-add=SYS_PTRACE",
                  "another PID namespace"):
        assert words in done.stderr, done.stderr
    proc.assert_running()


@pytest.mark.skipif(PEP_768, reason="the venv under test has Python 3.14+ (PEP 768 attach works)")
def test_a_plain_python_before_3_14_is_told_what_attach_needs(fever, tmp_path, env):
    proc = plain(fever, tmp_path, env)
    done = attach(env, proc.proc.pid)
    assert_refused(done, f"process {proc.proc.pid} is not running under fever, and it runs Python "
                   f"{VERSION[0]}.{VERSION[1]}", "start the program with `fever run`")
    assert "needs Python 3.14 or later (PEP 768)" in done.stderr
    proc.assert_running()
