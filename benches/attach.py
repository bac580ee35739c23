"""`fever attach`: the program's slowdown while attached and after detaching, the control thread's
idle cost, and how long attaching and detaching take.

One long-running process per command (`benches/workloads/attach_loop.py fib|walk`: rounds of
`fib(22)`, 57 k calls, or of three walks of a nested dict, 28 k calls, each round's time printed):
  python              plain python: the baseline rounds
  python -m cProfile  the whole run profiled by cProfile (deterministic, like fever attach)
  fever run           rounds before attaching (dormant: the control thread waits in accept()),
                      while `fever attach PID` (no terminal) is attached, and after it detached
The median round of each phase is compared with python's median round, measured in the same run.

Attach and detach latency: a client speaking the control protocol directly (no process start-up)
times `Attach` -> `Attached` (the profiler armed, the region created: data flows from then on)
and `Detach` -> `Detached`, 20 times on the fib process; plus the whole `fever attach PID
--duration 0.05` command, start-up included, to its first printed table.

Idle cost: the control threads' context switches (`/proc/PID/task/*/status`) over 5 s of a
`fever run` whose program sleeps.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import struct
import subprocess
import threading
import time
from pathlib import Path

from common import BENCHES, Ctx, bench_env, kill_group, log, md_table, spawn

NAME = "attach"
TITLE = "`fever attach`: slowdown while attached, after detach, idle cost, attach latency"
WORKLOAD = BENCHES / "workloads" / "attach_loop.py"
GOAL_ATTACH_MS = 50.0
GOAL_AFTER = 1.01


class Target:
    """A running workload; its round times collected by a reader thread."""

    def __init__(self, argv: list[str], env: dict):
        self.proc = spawn(argv, cwd=str(WORKLOAD.parent), env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.rounds: list[float] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("round "):
                with self.lock:
                    self.rounds.append(float(line.split()[1]))

    def collect(self, n: int, timeout: float = 120.0) -> list[float]:
        """The next `n` rounds."""
        with self.lock:
            start = len(self.rounds)
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.rounds) >= start + n:
                    return self.rounds[start:start + n]
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the workload stopped giving rounds: {self.proc.args}")
            time.sleep(0.05)

    def stop(self) -> None:
        kill_group(self.proc)


def control_dir(env: dict) -> Path:
    run = env.get("XDG_RUNTIME_DIR")
    if run and Path(run).is_dir():
        return Path(run) / "fever"
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"fever-{os.getuid()}"


def wait_socket(env: dict, pid: int, timeout: float = 30.0) -> Path:
    path = control_dir(env) / f"{pid}.sock"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no control socket {path}")
        time.sleep(0.02)
    return path


def ask(sock: socket.socket, tag: int, body: bytes = b"") -> int:
    """Sends one request; returns the answer's tag."""
    payload = bytes([2, tag]) + body
    sock.sendall(struct.pack("<I", len(payload)) + payload)
    (length,) = struct.unpack("<I", sock.recv(4, socket.MSG_WAITALL))
    return sock.recv(length, socket.MSG_WAITALL)[1]


ATTACH, DETACH, ATTACHED, DETACHED = 7, 9, 110, 112


def latency(env: dict, pid: int, times: int) -> dict:
    path = wait_socket(env, pid)
    attach, detach = [], []
    for _ in range(times):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            t0 = time.perf_counter()
            assert ask(sock, ATTACH) == ATTACHED
            t1 = time.perf_counter()
            time.sleep(0.05)
            t2 = time.perf_counter()
            assert ask(sock, DETACH) == DETACHED
            t3 = time.perf_counter()
        attach.append((t1 - t0) * 1e3)
        detach.append((t3 - t2) * 1e3)
        time.sleep(0.05)
    return {"attach_ms": statistics.median(attach), "detach_ms": statistics.median(detach),
            "attach_max_ms": max(attach)}


def whole_command(ctx: Ctx, env: dict, pid: int, times: int) -> float:
    best = []
    for _ in range(times):
        t0 = time.perf_counter()
        done = subprocess.run([str(ctx.fever), "attach", str(pid), "--duration", "0.05"], env=env,
                              capture_output=True, text=True, timeout=60)
        best.append((time.perf_counter() - t0) * 1e3)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
    return statistics.median(best)


def wakeups(ctx: Ctx, env: dict, tmp: Path) -> float:
    """Context switches per second of the control threads of an idle `fever run`."""
    script = tmp / "sleeper.py"
    script.write_text("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    proc = spawn([str(ctx.fever), "run", str(script)], cwd=str(tmp), env=env, stdin=subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        proc.stdout.readline()
        wait_socket(env, proc.pid)

        def switches() -> int:
            total = 0
            for task in Path(f"/proc/{proc.pid}/task").iterdir():
                if (task / "comm").read_text().strip().startswith("fever-control"):
                    for line in (task / "status").read_text().splitlines():
                        if "ctxt_switches" in line:
                            total += int(line.split()[1])
            return total

        before = switches()
        time.sleep(5)
        return (switches() - before) / 5
    finally:
        kill_group(proc)


def workload(ctx: Ctx, kind: str, env: dict, rounds: int) -> dict:
    base = Target([str(ctx.python), str(WORKLOAD), kind], env)
    try:
        python = base.collect(rounds + 5)[5:]
    finally:
        base.stop()
    prof = Target([str(ctx.python), "-m", "cProfile", "-o", os.devnull, str(WORKLOAD), kind], env)
    try:
        cprofile = prof.collect(rounds + 5)[5:]
    finally:
        prof.stop()
    target = Target([str(ctx.fever), "run", str(WORKLOAD), kind], env)
    try:
        before = target.collect(rounds + 5)[5:]
        client = spawn([str(ctx.fever), "attach", str(target.proc.pid)], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        target.collect(3)  # rounds that straddle the attach
        during = target.collect(rounds)
        client.send_signal(signal.SIGINT)
        out, err = client.communicate(timeout=30)
        if client.returncode != 0:
            raise RuntimeError(f"fever attach failed: {err}")
        target.collect(3)
        after = target.collect(rounds)
    finally:
        target.stop()
    med = statistics.median
    return {"python_ms": med(python), "cprofile": med(cprofile) / med(python),
            "before": med(before) / med(python), "during": med(during) / med(python),
            "after": med(after) / med(python), "table": out.splitlines()[:4]}


def run(ctx: Ctx) -> dict:
    import tempfile
    rounds = ctx.rounds(40, 15)
    env = bench_env()
    res: dict = {"rounds": rounds, "workloads": {}}
    for kind in ("fib", "walk"):
        res["workloads"][kind] = workload(ctx, kind, env, rounds)
        w = res["workloads"][kind]
        log(f"attach: {kind}: cProfile {w['cprofile']:.2f}×, fever run {w['before']:.3f}×, attached "
            f"{w['during']:.2f}×, after {w['after']:.3f}×")
    target = Target([str(ctx.fever), "run", str(WORKLOAD), "fib"], env)
    try:
        target.collect(3)
        res["latency"] = latency(env, target.proc.pid, ctx.rounds(20, 8))
        res["command_ms"] = whole_command(ctx, env, target.proc.pid, ctx.rounds(5, 3))
    finally:
        target.stop()
    with tempfile.TemporaryDirectory() as tmp:
        res["wakeups_per_s"] = wakeups(ctx, env, Path(tmp))
    log(f"attach: latency {res['latency']}, command {res['command_ms']:.0f} ms, "
        f"idle wake-ups {res['wakeups_per_s']:.1f}/s")
    return res


def render(res: dict) -> str:
    rows = []
    for kind, w in res["workloads"].items():
        rows.append([kind, f"{w['python_ms']:.2f} ms", f"{w['cprofile']:.2f}×", f"{w['before']:.3f}×",
                     f"**{w['during']:.2f}×**", f"**{w['after']:.3f}×**"])
    lat = res["latency"]
    return "\n".join([
        md_table(["workload (one round)", "python", "cProfile", "`fever run`, before attach",
                  "`fever run`, attached", "`fever run`, after detach"], rows),
        "",
        f"Median of {res['rounds']} rounds per phase, ratio to plain python's median round in the same run. "
        "cProfile profiles everything (library code too); `fever attach` counts and times only the "
        "project's functions, exactly (every call), in the callbacks, with no per-event records.",
        "",
        md_table(["", "measured", "goal"], [
            ["`Attach` → `Attached` (profiler armed, data flows)", f"{lat['attach_ms']:.2f} ms "
             f"(max {lat['attach_max_ms']:.2f} ms)", f"≤{GOAL_ATTACH_MS:.0f} ms"],
            ["`Detach` → `Detached`", f"{lat['detach_ms']:.2f} ms", ""],
            ["`fever attach PID --duration 0.05`, whole command", f"{res['command_ms']:.0f} ms", ""],
            ["control thread wake-ups while idle", f"{res['wakeups_per_s']:.1f}/s", "0/s"],
        ]),
        "",
        "py-spy and `python -m profiling.sampling` (3.15) were not measured here (py-spy is not "
        "installed on this machine; the main venv is 3.13).",
    ])
