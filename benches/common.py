"""Shared helpers for fever's Python-level benchmarks (see benches/run.py).

Everything here measures whole processes from the outside, the way a user experiences them:
no numbers are ever typed in by hand and no timing is ever asserted.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHES = REPO / "benches"
OUT = BENCHES / "out"  # per-benchmark JSON results (gitignored); RESULTS.md is rebuilt from them
RESULTS_MD = BENCHES / "RESULTS.md"
MAIN_VENV = REPO / ".venv"
BENCH_VENV = REPO / ".bench-venv"
TOOLS = Path(os.environ.get("FEVER_BENCH_TOOLS", str(REPO.parent / "shared" / "tools")))


def log(msg: str) -> None:
    """Progress line on stderr (stdout stays quiet)."""
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def now_iso() -> str:
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


# ---------------------------------------------------------------------------------------------
# The context every benchmark gets


@dataclass
class Ctx:
    quick: bool
    python: Path  # plain python of the main venv (the baseline)
    fever: Path  # the fever command of the main venv
    bench_python: Path | None  # python of .bench-venv (has jurigged), None when unavailable
    machine: dict = field(default_factory=dict)
    baseline: Path | None = None  # a directory holding another build's `fever` package (--baseline)

    def rounds(self, full: int, quick: int) -> int:
        return quick if self.quick else full


# ---------------------------------------------------------------------------------------------
# Child processes: every one is started in its own session (process group) and killed at exit.

_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


def kill_group(p: subprocess.Popen, sig: int = signal.SIGKILL, wait: float = 5.0) -> None:
    """Kill the process group of `p` (started with start_new_session=True) and reap it."""
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            log(f"warning: process {p.pid} did not die")
    with _live_lock:
        _live.discard(p)


def spawn(argv: list[str], **kw) -> subprocess.Popen:
    """Popen in a new session, remembered so that it is killed when the benchmark exits."""
    kw.setdefault("start_new_session", True)
    p = subprocess.Popen(argv, **kw)
    with _live_lock:
        _live.add(p)
    return p


def _kill_all() -> None:
    with _live_lock:
        procs = list(_live)
    for p in procs:
        kill_group(p, wait=2.0)


atexit.register(_kill_all)


def _on_term(signum, frame):  # SIGTERM/SIGHUP: clean up like Ctrl-C does
    _kill_all()
    sys.exit(128 + signum)


for _s in (signal.SIGTERM, signal.SIGHUP):
    try:
        signal.signal(_s, _on_term)
    except (ValueError, OSError):
        pass


def bench_env() -> dict:
    """Environment for measured children: unbuffered, no bytecode writes in the temp dirs."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    env.setdefault("NO_COLOR", "1")
    return env


@dataclass
class Timing:
    wall: float  # seconds, fork to reap
    cpu: float  # seconds, user + system of the child (and what it waited for)
    rc: int
    stderr: str
    stdout: str = ""


def time_process(argv: list[str], cwd: str | Path, timeout: float = 120.0, capture: bool = False,
                 env_extra: dict | None = None) -> Timing:
    """Run argv to completion; wall-clock time around fork..reap and the child's CPU time.

    Output goes to files (never pipes that could fill up); stdout is returned when `capture`.
    `env_extra` is added to the benchmark environment (e.g. PYTHONPATH for a baseline fever).
    """
    err = tempfile.TemporaryFile()
    out = tempfile.TemporaryFile() if capture else subprocess.DEVNULL
    t0 = time.perf_counter()
    p = spawn(argv, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
              env={**bench_env(), **(env_extra or {})})
    timed_out = threading.Event()

    def _expire():
        timed_out.set()
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    timer = threading.Timer(timeout, _expire)
    timer.daemon = True
    timer.start()
    try:
        # Blocking reap: no polling loop in the parent competing with the child for CPU.
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    with _live_lock:
        _live.discard(p)
    try:
        os.killpg(p.pid, signal.SIGKILL)  # leftovers of the group, if any
    except (ProcessLookupError, PermissionError):
        pass
    err.seek(0)
    stderr = err.read().decode("utf-8", "replace")
    err.close()
    stdout = ""
    if capture:
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        out.close()
    if timed_out.is_set():
        raise RuntimeError(f"timed out after {timeout:.0f} s: {' '.join(map(str, argv))}")
    return Timing(wall=wall, cpu=ru.ru_utime + ru.ru_stime, rc=p.returncode, stderr=stderr, stdout=stdout)


def run_capture(argv: list[str], timeout: float, cwd: str | Path | None = None,
                env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a helper command (not measured), killing its whole group on timeout."""
    p = spawn(argv, cwd=None if cwd is None else str(cwd), env=env, stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p)
        out, err = p.communicate()
        raise RuntimeError(f"timed out after {timeout:.0f} s: {' '.join(map(str, argv))}\n{err[-2000:]}")
    with _live_lock:
        _live.discard(p)
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


# ---------------------------------------------------------------------------------------------
# Venvs


def python_info(python: Path) -> dict:
    r = run_capture([str(python), "-c",
                     "import json, sys; print(json.dumps({'version': sys.version.split()[0], "
                     "'full': sys.version, 'executable': sys.executable, "
                     "'base': getattr(sys, '_base_executable', sys.executable), "
                     "'implementation': sys.implementation.name}))"], timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"{python} does not run: {r.stderr.strip()}")
    return json.loads(r.stdout)


def ensure_bench_venv(base_python: Path, want_version: str) -> Path:
    """Create (or reuse) .bench-venv with the same Python as the main venv, with jurigged in it."""
    py = BENCH_VENV / "bin" / "python"
    have = None
    if py.exists():
        try:
            have = python_info(py)["version"]
        except Exception:
            have = None
    if have != want_version:
        if BENCH_VENV.exists():
            log(f"re-creating {BENCH_VENV.name}/ (has Python {have}, want {want_version})")
            import shutil
            shutil.rmtree(BENCH_VENV)
        else:
            log(f"creating {BENCH_VENV.name}/ with Python {want_version} ({base_python})")
        r = run_capture([str(base_python), "-m", "venv", str(BENCH_VENV)], timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"venv creation failed: {r.stderr.strip()}")
    check = run_capture([str(py), "-c", "import jurigged"], timeout=60)
    if check.returncode != 0:
        log("pip-installing jurigged into .bench-venv/ (from PyPI)")
        r = run_capture([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "jurigged"],
                        timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"pip install jurigged failed:\n{r.stderr[-2000:]}")
    return py


def package_version(python: Path, dist: str) -> str | None:
    r = run_capture([str(python), "-c",
                     f"import importlib.metadata as m; print(m.version({dist!r}))"], timeout=30)
    return r.stdout.strip() if r.returncode == 0 else None


def machine_info(ctx_python: Path, fever: Path, bench_python: Path | None) -> dict:
    info: dict = {}
    info["date"] = now_iso()
    info["nproc"] = os.cpu_count()
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["usable_cpus"] = os.cpu_count()
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["cpu"] = cpu or "unknown"
    try:
        mem_kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
                      if l.startswith("MemTotal"))
        info["memory"] = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except Exception:
        info["memory"] = "unknown"
    info["os"] = f"{platform.system()} {platform.release()} ({platform.machine()})"
    try:
        info["loadavg_at_start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        info["loadavg_at_start"] = "unknown"
    pi = python_info(ctx_python)
    info["python"] = pi["version"]
    info["python_full"] = pi["full"]
    info["python_base"] = pi["base"]
    r = run_capture([str(fever), "--version"], timeout=30) if fever.exists() else None
    info["fever"] = (r.stdout.strip() or r.stderr.strip()) if r is not None and r.returncode == 0 else "unavailable"
    info["jurigged"] = (package_version(bench_python, "jurigged") if bench_python else None) or "unavailable"
    try:
        r = run_capture(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], timeout=10)
        info["commit"] = r.stdout.strip() if r.returncode == 0 else "uncommitted"
        r = run_capture(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"], timeout=10)
        if info["commit"] != "uncommitted" and r.stdout.strip():
            info["commit"] += " (+ local changes)"
    except Exception:
        info["commit"] = "unknown"
    return info


# ---------------------------------------------------------------------------------------------
# Numbers and formatting


def median(xs):
    return statistics.median(xs) if xs else None


def fmt_ms(x, digits=1):
    return "–" if x is None else f"{x:.{digits}f} ms"


def fmt_s(x):
    return "–" if x is None else f"{x:.3f} s"


def fmt_ratio(x, digits=3):
    return "–" if x is None else f"{x:.{digits}f}×"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def save_result(name: str, data: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    return path


def load_result(name: str) -> dict | None:
    path = OUT / f"{name}.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def short_cmd(argv: list[str]) -> str:
    """A command line with the repo prefix removed, for tables."""
    out = []
    for a in argv:
        s = str(a)
        if s.startswith(str(REPO) + os.sep):
            s = s[len(str(REPO)) + 1:]
        out.append(s)
    return " ".join(out)
