"""`fever attach`: the program's slowdown while attached and after detaching, the control thread's
idle cost, and how long attaching and detaching take.

One long-running process per command (`benches/workloads/attach_loop.py fib|walk`: rounds of
`fib(22)`, 57 k calls, or of three walks of a nested dict, 28 k calls, each round's CPU time
printed), the three running side by side, so that they share the machine's load:
  python              plain python: the baseline rounds
  python -m cProfile  the whole run profiled by cProfile (deterministic, like fever attach)
  fever run           rounds before attaching (dormant: the control thread waits in accept()),
                      while `fever attach PID` (no terminal) is attached, and after it detached
The median round of each phase of `fever run` is compared with python's median round over the
same window of time; cProfile's median round with python's over the whole run.

Attach and detach latency: a client speaking the control protocol directly (no process start-up)
times `Attach` -> `Attached` (the profiler armed, the region created: data flows from then on)
and `Detach` -> `Detached`, 20 times on the fib process; plus the whole `fever attach PID
--duration 0.05` command, start-up included, to its first printed table.

Idle cost: the control threads' context switches (`/proc/PID/task/*/status`) over 5 s of a
`fever run` whose program sleeps.

PEP 768 (with the newest `.venv-3.X`, X >= 14, that has fever built): the same workload as a plain
`python attach_loop.py fib`, not started under fever.
  attach -> first data  from starting `fever attach PID` to the profile region appearing (the
                        profiler armed): the first attach loads fever into the process with
                        `sys.remote_exec`; a later one finds its control socket. A fresh process
                        for each first attach; the venv's `fever` and the standalone binary.
  slowdown              one plain target attached in turn by `fever attach` (PEP 768), py-spy
                        (`py-spy record`, its defaults: 100 Hz, pausing the process for each
                        sample; pip-installed into that venv) and, on 3.15, `python -m
                        profiling.sampling attach` (its defaults: 1 kHz, not pausing); each
                        phase's median round against plain python's beside it, in CPU time and
                        in wall time (a sampler's pauses cost wall time only); cProfile as above.
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

from common import BENCHES, REPO, Ctx, bench_env, kill_group, log, md_table, spawn

NAME = "attach"
TITLE = "`fever attach`: slowdown while attached, after detach, idle cost, attach latency"
WORKLOAD = BENCHES / "workloads" / "attach_loop.py"
GOAL_ATTACH_MS = 50.0
GOAL_AFTER = 1.01


class Target:
    """A running workload; its round times (and when each was read) collected by a reader thread."""

    def __init__(self, argv: list[str], env: dict):
        self.proc = spawn(argv, cwd=str(WORKLOAD.parent), env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.rounds: list[float] = []
        self.walls: list[float] = []
        self.at: list[float] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("round "):
                _, cpu, wall = line.split()
                with self.lock:
                    self.rounds.append(float(cpu))
                    self.walls.append(float(wall))
                    self.at.append(time.monotonic())

    def between(self, t0: float, t1: float, wall: bool = False) -> list[float]:
        """The rounds (CPU time, or wall time) that ended between `t0` and `t1`."""
        with self.lock:
            return [r for r, t in zip(self.walls if wall else self.rounds, self.at) if t0 <= t <= t1]

    def collect(self, n: int, timeout: float = 120.0, wall: bool = False) -> list[float]:
        """The next `n` rounds (CPU time, or wall time)."""
        with self.lock:
            start = len(self.rounds)
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.rounds) >= start + n:
                    return (self.walls if wall else self.rounds)[start:start + n]
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


def control_switches(pids: list[int]) -> int:
    """Context switches so far of the control threads (`fever-control*`) of processes `pids`."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            if (task / "comm").read_text().strip().startswith("fever-control"):
                for line in (task / "status").read_text().splitlines():
                    if "ctxt_switches" in line:
                        total += int(line.split()[1])
    return total


def wakeups(ctx: Ctx, env: dict, tmp: Path) -> float:
    """Context switches per second of the control threads of an idle `fever run`."""
    script = tmp / "sleeper.py"
    script.write_text("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    proc = spawn([str(ctx.fever), "run", str(script)], cwd=str(tmp), env=env, stdin=subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        proc.stdout.readline()
        wait_socket(env, proc.pid)

        before = control_switches([proc.pid])
        time.sleep(5)
        return (control_switches([proc.pid]) - before) / 5
    finally:
        kill_group(proc)


def workload(ctx: Ctx, kind: str, env: dict, rounds: int) -> dict:
    base = Target([str(ctx.python), str(WORKLOAD), kind], env)
    prof = Target([str(ctx.python), "-m", "cProfile", "-o", os.devnull, str(WORKLOAD), kind], env)
    target = Target([str(ctx.fever), "run", str(WORKLOAD), kind], env)
    med = statistics.median
    try:
        for t in (base, prof, target):
            t.collect(5)  # warm-up

        def phase(collect) -> tuple[float, float]:
            """Runs `collect` (which returns fever's rounds); fever's median / python's over it."""
            t0 = time.monotonic()
            fever = collect()
            python = base.between(t0, time.monotonic())
            return med(fever) / med(python), med(python)

        start = time.monotonic()
        before, python_ms = phase(lambda: target.collect(rounds))
        client = spawn([str(ctx.fever), "attach", str(target.proc.pid)], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        target.collect(3)  # rounds that straddle the attach
        during, _ = phase(lambda: target.collect(rounds))
        client.send_signal(signal.SIGINT)
        out, err = client.communicate(timeout=30)
        if client.returncode != 0:
            raise RuntimeError(f"fever attach failed: {err}")
        target.collect(3)
        after, _ = phase(lambda: target.collect(rounds))
        end = time.monotonic()
        cprofile = med(prof.between(start, end)) / med(base.between(start, end))
    finally:
        for t in (base, prof, target):
            t.stop()
    return {"python_ms": python_ms, "cprofile": cprofile, "before": before, "during": during,
            "after": after, "table": out.splitlines()[:4]}


def pep768_venv() -> Path | None:
    """The newest `.venv-3.X` with Python 3.14+ (PEP 768) and fever built."""
    found = []
    for venv in REPO.glob(".venv-3.*"):
        try:
            minor = int(venv.name.rsplit(".", 1)[1])
        except ValueError:
            continue
        if minor >= 14 and (venv / "bin" / "fever").exists():
            found.append((minor, venv))
    return max(found)[1] if found else None


def first_data(fever: Path, env: dict, pid: int, timeout: float = 60.0) -> float:
    """Milliseconds from starting `fever attach PID --duration 1` to its profile region (the
    profiler armed); the client must then end well."""
    region = control_dir(env) / f"{pid}.profile"
    t0 = time.perf_counter()
    client = spawn([str(fever), "attach", str(pid), "--duration", "1"], env=env, stdin=subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not region.exists():
        if client.poll() is not None or time.perf_counter() - t0 > timeout:
            kill_group(client)
            raise RuntimeError(f"fever attach {pid} gave no data: {client.stderr.read()}")
        time.sleep(0.0005)
    ms = (time.perf_counter() - t0) * 1e3
    _, err = client.communicate(timeout=30)
    if client.returncode != 0:
        raise RuntimeError(f"fever attach {pid} failed: {err}")
    while region.exists():  # detached: the process removes it
        time.sleep(0.01)
    return ms


def pep768_latency(venv: Path, env: dict, times: int) -> dict:
    """First (loads fever) and later attaches to fresh plain processes, per fever command."""
    commands = {"venv": venv / "bin" / "fever"}
    standalone = REPO / "target" / "rust" / "release" / "fever"
    if standalone.exists():
        commands["standalone"] = standalone
    res: dict = {}
    for name, fever in commands.items():
        first, later = [], []
        for _ in range(times):
            target = Target([str(venv / "bin" / "python"), str(WORKLOAD), "fib"], env)
            try:
                target.collect(2)
                first.append(first_data(fever, env, target.proc.pid))
                later.append(first_data(fever, env, target.proc.pid))
            finally:
                target.stop()
        res[name] = {"first_ms": statistics.median(first), "first_max_ms": max(first),
                     "later_ms": statistics.median(later)}
    return res


def pep768_slowdown(venv: Path, env: dict, rounds: int, tmp: Path) -> dict:
    """One plain target attached in turn by each tool available; ratios to plain python."""
    python = venv / "bin" / "python"
    tools = {"fever attach (PEP 768)": lambda pid: [str(venv / "bin" / "fever"), "attach", str(pid)]}
    spy = venv / "bin" / "py-spy"
    if not spy.exists():
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                               "py-spy"], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            log(f"attach: py-spy not installable: {done.stderr.strip()[-300:]}")
    if spy.exists():
        tools["py-spy record"] = lambda pid: [str(spy), "record", "-p", str(pid), "-f", "raw", "-o",
                                              str(tmp / "py-spy.raw")]
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version_info[1])"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
    # It starts slowly (seconds on a busy machine) and a Ctrl-C during its start-up is a
    # KeyboardInterrupt: it samples for a fixed time that covers the phase, and ends by itself.
    sampling_s = 6 + rounds * 0.2
    if int(version) >= 15:
        tools["profiling.sampling attach"] = lambda pid: [
            str(python), "-m", "profiling.sampling", "attach", str(pid), "-d", f"{sampling_s:.0f}",
            "--collapsed", "-o", str(tmp / "sampling.txt")]
    base = Target([str(python), str(WORKLOAD), "fib"], env)
    prof = Target([str(python), "-m", "cProfile", "-o", os.devnull, str(WORKLOAD), "fib"], env)
    target = Target([str(python), str(WORKLOAD), "fib"], env)
    med = statistics.median
    res: dict = {"python": f"3.{version}", "tools": {}}
    try:
        for t in (base, prof, target):
            t.collect(5)
        start = time.monotonic()

        def phase() -> dict:
            t0 = time.monotonic()
            before = len(target.rounds)
            target.collect(rounds)
            t1 = time.monotonic()
            ratio = {}
            for wall in (False, True):
                with target.lock:
                    mine = (target.walls if wall else target.rounds)[before:before + rounds]
                ratio["wall" if wall else "cpu"] = med(mine) / med(base.between(t0, t1, wall=wall))
            return ratio

        res["plain"] = phase()
        for name, argv in tools.items():
            tool = spawn(argv(target.proc.pid), env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            spawned = time.monotonic()
            while time.monotonic() - spawned < 4:  # rounds that straddle the attach and the tool's start
                target.collect(1)
            during = phase()
            if time.monotonic() - spawned > sampling_s:
                log(f"attach: warning: the phase outlasted {name}'s sampling")
            if "-d" not in tool.args:
                tool.send_signal(signal.SIGINT)
            _, err = tool.communicate(timeout=sampling_s + 60)
            if tool.returncode != 0:
                raise RuntimeError(f"{name} failed: {err[-500:]}")
            target.collect(3)
            res["tools"][name] = {"during": during, "after": phase()}
            log(f"attach: PEP 768 {name}: attached {during['cpu']:.2f}× CPU, {during['wall']:.2f}× wall")
        end = time.monotonic()
        res["cprofile"] = {"cpu": med(prof.between(start, end)) / med(base.between(start, end)),
                           "wall": med(prof.between(start, end, wall=True))
                           / med(base.between(start, end, wall=True))}
    finally:
        for t in (base, prof, target):
            t.stop()
    return res


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
    venv = pep768_venv()
    if venv is None:
        log("attach: no .venv-3.14 or newer with fever: PEP 768 not measured")
        return res
    res["pep768"] = {"venv": venv.name, "latency": pep768_latency(venv, env, ctx.rounds(5, 3))}
    log(f"attach: PEP 768 latency {res['pep768']['latency']}")
    with tempfile.TemporaryDirectory() as tmp:
        res["pep768"]["slowdown"] = pep768_slowdown(venv, env, ctx.rounds(30, 12), Path(tmp))
    return res


def summary(res: dict) -> list[list[str]]:
    lat = res["latency"]
    rows = [["`fever attach`: `Attach` → `Attached` (data flows)", f"≤{GOAL_ATTACH_MS:.0f} ms",
             f"{lat['attach_ms']:.1f} ms median, {lat['attach_max_ms']:.1f} ms max",
             "yes" if lat["attach_ms"] <= GOAL_ATTACH_MS else "no"]]
    for kind, w in res["workloads"].items():
        rows.append([f"`fever attach`: slowdown while attached, {kind}", "below cProfile",
                     f"{w['during']:.2f}× (cProfile {w['cprofile']:.2f}×)",
                     "yes" if w["during"] < w["cprofile"] else "no"])
        rows.append([f"`fever attach`: slowdown after detach, {kind}", f"≤{GOAL_AFTER}×",
                     f"{w['after']:.3f}×", "yes" if w["after"] <= GOAL_AFTER else "no"])
    pep = res.get("pep768")
    if pep:
        first = pep["latency"].get("standalone") or pep["latency"]["venv"]
        rows.append([f"`fever attach`, PEP 768 (Python {pep['slowdown']['python']}): start → first data, "
                     "fever loaded into a plain process", f"≤{GOAL_ATTACH_MS:.0f} ms",
                     f"{first['first_ms']:.0f} ms median", "yes" if first["first_ms"] <= GOAL_ATTACH_MS else "no"])
        fever = pep["slowdown"]["tools"]["fever attach (PEP 768)"]
        rows.append([f"`fever attach`, PEP 768: slowdown while attached, fib", "below cProfile",
                     f"{fever['during']['cpu']:.2f}× (cProfile {pep['slowdown']['cprofile']['cpu']:.2f}×)",
                     "yes" if fever["during"]["cpu"] < pep["slowdown"]["cprofile"]["cpu"] else "no"])
    rows.append(["`fever attach`: control thread wake-ups while idle", "0/s",
                 f"{res['wakeups_per_s']:.1f}/s", "yes" if res["wakeups_per_s"] == 0 else "no"])
    return rows


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
        f"Median of {res['rounds']} rounds per phase of `fever run`, ratio to the median round of plain "
        "python running beside it over the same window (cProfile: over the whole run); rounds are "
        "timed in CPU time. "
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
    ] + pep768_render(res.get("pep768")))


def pep768_render(pep: dict | None) -> list[str]:
    if not pep:
        return ["", "PEP 768 attach was not measured (no `.venv-3.14` or newer with fever built)."]
    lat, slow = pep["latency"], pep["slowdown"]
    rows = [[f"`{pep['venv']}/bin/fever` (a Python starts first)" if name == "venv"
             else "the standalone binary (`target/rust/release/fever`)",
             f"**{r['first_ms']:.0f} ms** (max {r['first_max_ms']:.0f} ms)", f"{r['later_ms']:.0f} ms"]
            for name, r in lat.items()]
    plain = slow["plain"]
    tools = [["nothing (the same target before any attach)", f"{plain['cpu']:.2f}×", f"{plain['wall']:.2f}×", ""]] + [
        [name, f"**{t['during']['cpu']:.2f}×**", f"{t['during']['wall']:.2f}×",
         f"{t['after']['cpu']:.3f}× / {t['after']['wall']:.3f}×"] for name, t in slow["tools"].items()]
    tools.append(["cProfile (whole run)", f"{slow['cprofile']['cpu']:.2f}×", f"{slow['cprofile']['wall']:.2f}×", ""])
    return [
        "",
        f"### PEP 768: a plain `python` process, not started under fever (Python {slow['python']}, "
        f"`{pep['venv']}`)",
        "",
        md_table(["`fever attach PID` → first data (profiler armed)", "first attach: loads fever "
                  "(`sys.remote_exec`)", "later attach: its control socket"], rows),
        "",
        "From starting the command to the profile region appearing; the command's own start-up is "
        "included (the venv's `fever` starts a Python first). The first attach also starts an "
        "interpreter of the target's version to call `sys.remote_exec`, waits for the target's "
        "main thread to reach a safe point (the workload runs Python code all the time), and the "
        "target imports fever.",
        "",
        md_table(["fib workload, one plain target, attached by", "CPU time per round",
                  "wall time per round", "after detaching (CPU / wall)"], tools),
        "",
        "Median round of each phase over plain python's rounds in the same window, the tools one "
        "after the other on the same target. py-spy (100 Hz, pausing the target for each sample) "
        "and `profiling.sampling` (1 kHz, not pausing) sample stacks: they cost the target little "
        "CPU time and give estimates; `fever attach` counts every call of the project's functions "
        "exactly, at the price of a callback per call. Wall-time ratios move with the machine's "
        "load (the first row shows how much without any tool).",
    ]
