"""Child processes under `fever run`: how long a save takes to reach N pool workers, and what an
idle fever costs in each child.

Latency: `main.py` maps `work.value` over a fork-context `multiprocessing.Pool(N)` (N = 1, 2, 8)
in a tight loop, or (the "1 process" row) calls it in a loop in the program itself, printing
each result set. The benchmark rewrites `work.py` with a new return value and measures the time
from just before the write until a line whose every result is new appears on stdout (so every
worker that answered runs the new code). fever's own figure, the `(X ms, N processes)` of its
`reloaded` line (from noticing the save to every process having applied it), is shown beside,
and so is the pool's own round trip (one `pool.map` of the same program under plain python):
a line needs a whole map that started after the save was applied, so the latency includes one.

Persistent workers (the issue's own measure, the DataLoader pattern): `loop.py` starts N (2, 8)
fork-context `multiprocessing.Process` workers that each call `work.value` in a loop with the
same 0.2 ms sleep as the single-process program, and print a line the first time they see a new
result. The benchmark times from just before the write to the first worker's new line and to
the last worker's, with no pool round trip in between. The "busy" rows do the same with no
sleep at all (CPU-bound workers): each worker applies a save at its main thread's next
pending-call check (fever asks with `Py_AddPendingCall`; a thread waiting for the GIL would
wait for the switch interval, 5 ms by default), and N busy workers share the machine's CPUs.

Idle cost: a CPU-bound fork pool (`Pool(2).map(fib, [24] * 16)`, three times) under plain python
and under `fever run` (the workers have joined fever and wait for saves, and listen on their own
control sockets), best of R alternating runs, whole processes.

Attaching to a worker: the latency pool (2 workers, busy) under `fever run`; a client speaking the
control protocol directly times `Attach` -> `Attached` on a worker's own socket and on the
program's, alternately (`attach.latency`); and the context switches of the workers' control
threads over 5 s while the pool idles (its workers wait for tasks).

The scheduling floor (no fever): plain python, a parent and N (1, 2, 8) forked children, a pipe
each way per child. The parent writes one short message to every child and waits (poll) for all N
replies; each child compiles a 2-line `work.py` text, sets its function's `__code__` to the new
code and replies (about what a tiny reload does in a member). Median of many rounds, a pause
between rounds like a save's. Two kinds of child: one blocked in `read` (the bare floor), and one
whose main thread loops calling the function with the same 0.2 ms sleep as the persistent workers
while a second thread waits on the pipe (a member's shape: the reply needs the GIL).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from attach import control_switches, latency, wait_socket
from common import Ctx, bench_env, fmt_ms, kill_group, log, md_table, median, spawn, time_process
from reload_latency import Watcher, save

NAME = "children"
TITLE = "Child processes: reload latency to pool workers, idle cost in each child"
WORKERS = (1, 2, 8)
START_TIMEOUT = 30.0
MISS_TIMEOUT = 10.0
PAUSE = 0.3
GOAL_FACTOR = 2.0  # issue 17: within 2x of the single-process reload latency
IDLE_GOAL = 1.01
ATTACH_GOAL_MS = 50.0  # as for the program itself (`attach`)

WORK = "def value(x):\n    return 'v{version}'\n"

POOL_MAIN = """\
import multiprocessing as mp, sys, time
import work

if __name__ == "__main__":
    n = int(sys.argv[1])
    deadline = time.monotonic() + 300
    with mp.get_context("fork").Pool(n) as pool:
        while time.monotonic() < deadline:
            print(",".join(sorted(set(pool.map(work.value, range(4 * n), chunksize=1)))), flush=True)
"""

SINGLE_MAIN = """\
import time
import work

deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    print(",".join(sorted({work.value(i) for i in range(4)})), flush=True)
    time.sleep(0.0002)
"""

# Persistent workers: each calls `work.value` in a loop and says when its result changes.
LOOP_MAIN = """\
import multiprocessing as mp, sys, time
import work

def worker(k, pause):
    last = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        v = work.value(k)
        if v != last:
            sys.stdout.write(f"w{k} {v}\\n")  # one write: workers share the pipe
            sys.stdout.flush()
            last = v
        if pause:
            time.sleep(pause)

if __name__ == "__main__":
    n, pause = int(sys.argv[1]), float(sys.argv[2])
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=worker, args=(k, pause)) for k in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
"""
LOOP_WORKERS = (2, 8)
LOOP_PAUSE = 0.0002  # as in SINGLE_MAIN

IDLE_MAIN = """\
import multiprocessing as mp, time

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

if __name__ == "__main__":
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(2) as pool:
        for _ in range(3):
            pool.map(fib, [24] * 16)
    print(f"in-script {time.perf_counter() - t0:.6f}")
"""

IDLE_POOL_MAIN = """\
import multiprocessing as mp, time

if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as pool:
        print(sum(pool.map(abs, range(8))), flush=True)
        time.sleep(60)
"""

# The pool's own round trip, under plain python in the same run: a line needs a whole `pool.map`
# that started after every worker applied the save, so the latency is at least about one.
ROUND_TRIP_MAIN = """\
import multiprocessing as mp, sys, time
import work

if __name__ == "__main__":
    n = int(sys.argv[1])
    with mp.get_context("fork").Pool(n) as pool:
        times = []
        for _ in range(300):
            t0 = time.perf_counter()
            pool.map(work.value, range(4 * n), chunksize=1)
            times.append(time.perf_counter() - t0)
    print(f"round-trip {sorted(times)[len(times) // 2]:.6f}")
"""

# The scheduling floor: a bare broadcast to N forked children and their N replies, no fever.
FLOOR_MAIN = """\
import os, select, sys, threading, time, types

SOURCE = "def value(x):\\n    return 'v{}'\\n"
n, rounds, pause, looping = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "loop"


def function_code(text):
    code = compile(text, "work.py", "exec")
    return next(c for c in code.co_consts if isinstance(c, types.CodeType))


def child(r, w):
    ns = {}
    exec(SOURCE.format(0), ns)
    value = ns["value"]

    def serve():
        while True:
            msg = os.read(r, 64)
            if not msg:
                os._exit(0)
            value.__code__ = function_code(SOURCE.format(msg.decode()))
            os.write(w, b"k")

    if not looping:
        serve()
    threading.Thread(target=serve, daemon=True).start()
    while True:
        value(0)
        time.sleep(0.0002)


pipes = []
for k in range(n):
    down_r, down_w = os.pipe()
    up_r, up_w = os.pipe()
    if os.fork() == 0:
        for fd in (down_w, up_r, *(fd for pair in pipes for fd in pair)):
            os.close(fd)
        child(down_r, up_w)
    os.close(down_r)
    os.close(up_w)
    pipes.append((down_w, up_r))
poller = select.poll()
for _, up_r in pipes:
    poller.register(up_r, select.POLLIN)
times = []
for i in range(1, rounds + 1):
    time.sleep(pause)
    msg = str(i).encode()
    t0 = time.perf_counter()
    for down_w, _ in pipes:
        os.write(down_w, msg)
    left = n
    while left:
        for fd, _ in poller.poll():
            left -= len(os.read(fd, 64))
    times.append(time.perf_counter() - t0)
for down_w, _ in pipes:
    os.close(down_w)
for _ in pipes:
    os.wait()
print(f"floor {sorted(times)[len(times) // 2]:.6f}")
"""
FLOOR_KINDS = ("blocked", "loop")
FLOOR_PAUSE = 0.01

RELOADED = re.compile(r"\((\d+(?:\.\d+)?) ms(?:, (\d+) process(?:es)?)?\)")


def measure(ctx: Ctx, workers: int | None, rounds: int) -> dict:
    d = Path(tempfile.mkdtemp(prefix="fever-bench-children-"))
    (d / "work.py").write_text(WORK.format(version=0))
    (d / "main.py").write_text(POOL_MAIN if workers else SINGLE_MAIN)
    argv = [str(ctx.fever), "run", "main.py"] + ([str(workers)] if workers else [])
    res = {"latencies_ms": [], "fever_ms": [], "processes": [], "missed": 0}
    p = spawn(argv, cwd=d, env=bench_env(), stdout=-1, stderr=-1)
    w = Watcher(p)
    try:
        if w.wait_for(b"v0", START_TIMEOUT) is None:
            raise RuntimeError(f"no output from {argv}: {w.stderr_tail()}")
        time.sleep(1.0)
        for version in range(1, rounds + 1):
            t0 = time.perf_counter()
            save(d / "work.py", WORK.format(version=version), "inplace")
            seen = w.wait_for(f"v{version}".encode(), MISS_TIMEOUT)
            if seen is None:
                res["missed"] += 1
                continue
            res["latencies_ms"].append((seen - t0) * 1000)
            time.sleep(PAUSE)
            for line in w.stderr_since(t0):
                m = RELOADED.search(line) if "reloaded work.value" in line else None
                if m:
                    res["fever_ms"].append(float(m[1]))
                    res["processes"].append(int(m[2] or 1))
                    break
    finally:
        kill_group(p)
    return res


def measure_loop(ctx: Ctx, workers: int, pause: float, rounds: int) -> dict:
    """Save → the first and the last of `workers` persistent workers printing the new result."""
    d = Path(tempfile.mkdtemp(prefix="fever-bench-children-loop-"))
    (d / "work.py").write_text(WORK.format(version=0))
    (d / "main.py").write_text(LOOP_MAIN)
    argv = [str(ctx.fever), "run", "main.py", str(workers), str(pause)]
    res = {"first_ms": [], "all_ms": [], "fever_ms": [], "missed": 0}
    p = spawn(argv, cwd=d, env=bench_env(), stdout=-1, stderr=-1)
    w = Watcher(p)
    try:
        for k in range(workers):
            if w.wait_for(f"w{k} v0".encode(), START_TIMEOUT) is None:
                raise RuntimeError(f"no output from worker {k} of {argv}: {w.stderr_tail()}")
        time.sleep(1.0)
        for version in range(1, rounds + 1):
            t0 = time.perf_counter()
            save(d / "work.py", WORK.format(version=version), "inplace")
            seen = [w.wait_for(f"w{k} v{version}".encode(), MISS_TIMEOUT) for k in range(workers)]
            if None in seen:
                res["missed"] += 1
                continue
            res["first_ms"].append((min(seen) - t0) * 1000)
            res["all_ms"].append((max(seen) - t0) * 1000)
            time.sleep(PAUSE)
            for line in w.stderr_since(t0):
                m = RELOADED.search(line) if "reloaded work.value" in line else None
                if m:
                    res["fever_ms"].append(float(m[1]))
                    break
    finally:
        kill_group(p)
    return res


def loop_labels() -> list[str]:
    """The persistent-worker rows, in order: sleeping workers, then busy ones."""
    return [f"{n} {kind}workers" for kind in ("", "busy ") for n in LOOP_WORKERS]


def round_trip_ms(ctx: Ctx, workers: int) -> float | None:
    """The median time of one `pool.map` of the latency program under plain python."""
    d = Path(tempfile.mkdtemp(prefix="fever-bench-children-trip-"))
    (d / "work.py").write_text(WORK.format(version=0))
    (d / "main.py").write_text(ROUND_TRIP_MAIN)
    r = time_process([str(ctx.python), "main.py", str(workers)], cwd=d, capture=True)
    m = re.search(r"round-trip ([\d.]+)", r.stdout)
    return float(m[1]) * 1000 if r.rc == 0 and m else None


def floor_ms(ctx: Ctx, children: int, kind: str, rounds: int) -> float | None:
    """The median time of a bare broadcast to `children` forked children and their replies."""
    d = Path(tempfile.mkdtemp(prefix="fever-bench-children-floor-"))
    (d / "floor.py").write_text(FLOOR_MAIN)
    r = time_process([str(ctx.python), "floor.py", str(children), str(rounds), str(FLOOR_PAUSE), kind], cwd=d,
                     capture=True)
    m = re.search(r"floor ([\d.]+)", r.stdout)
    return float(m[1]) * 1000 if r.rc == 0 and m else None


def idle_cost(ctx: Ctx, runs: int) -> dict:
    d = Path(tempfile.mkdtemp(prefix="fever-bench-children-idle-"))
    (d / "main.py").write_text(IDLE_MAIN)
    cmds = {"python": [str(ctx.python), "main.py"], "fever run": [str(ctx.fever), "run", "main.py"]}
    best: dict[str, float] = {}
    for _ in range(runs):
        for label, argv in cmds.items():
            r = time_process(argv, cwd=d, capture=True)
            m = re.search(r"in-script ([\d.]+)", r.stdout)
            if r.rc != 0 or not m:
                raise RuntimeError(f"{argv} exited with {r.rc}: {r.stderr[-300:]}")
            best[label] = min(best.get(label, float("inf")), r.wall)
            best[label + " in-script"] = min(best.get(label + " in-script", float("inf")), float(m[1]))
    return {"python_s": best["python"], "fever_s": best["fever run"],
            "ratio": best["fever run"] / best["python"], "runs": runs,
            "python_in_script_s": best["python in-script"], "fever_in_script_s": best["fever run in-script"],
            "in_script_ratio": best["fever run in-script"] / best["python in-script"]}


def workers_of(pid: int, env: dict, count: int, timeout: float = 30.0) -> list[int]:
    """The `count` child processes of `pid` that listen on a control socket of their own."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = f.read().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                continue
            if ppid == str(pid) and (Path(env["XDG_RUNTIME_DIR"]) / "fever" / f"{entry}.sock").exists():
                found.append(int(entry))
        if len(found) >= count:
            return sorted(found)[:count]
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} has {len(found)} workers with a control socket")
        time.sleep(0.05)


def worker_attach(ctx: Ctx, times: int) -> dict:
    d = Path(tempfile.mkdtemp(prefix="fever-bench-children-attach-"))
    (d / "work.py").write_text(WORK.format(version=0))
    (d / "main.py").write_text(POOL_MAIN)
    (d / "idle.py").write_text(IDLE_POOL_MAIN)
    (d / "run").mkdir(mode=0o700)
    env = dict(bench_env(), XDG_RUNTIME_DIR=str(d / "run"))
    res = {}
    p = spawn([str(ctx.fever), "run", "main.py", "2"], cwd=d, env=env, stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL)
    try:
        worker = workers_of(p.pid, env, 2)[0]
        wait_socket(env, p.pid)
        worker_ms, top_ms = [], []
        for _ in range(times):
            worker_ms.append(latency(env, worker, 1)["attach_ms"])
            top_ms.append(latency(env, p.pid, 1)["attach_ms"])
        res.update(worker_ms=median(worker_ms), worker_max_ms=max(worker_ms), top_ms=median(top_ms))
    finally:
        kill_group(p)
    p = spawn([str(ctx.fever), "run", "idle.py"], cwd=d, env=env, stdout=subprocess.PIPE,
              stderr=subprocess.DEVNULL)
    try:
        p.stdout.readline()
        workers = workers_of(p.pid, env, 2)
        before = control_switches(workers)
        time.sleep(5)
        res["idle_switches_per_s"] = (control_switches(workers) - before) / 5
    finally:
        kill_group(p)
    return res


def run(ctx: Ctx) -> dict:
    rounds = ctx.rounds(10, 4)
    res: dict = {"rounds": rounds, "latency": {}}
    for workers in (None, *WORKERS):
        label = f"{workers} workers" if workers else "1 process"
        r = measure(ctx, workers, rounds)
        r["round_trip_ms"] = round_trip_ms(ctx, workers) if workers else None
        res["latency"][label] = r
        log(f"children: {label}: median {median(r['latencies_ms']) or 0:.1f} ms, fever "
            f"{median(r['fever_ms']) or 0:.1f} ms, processes {r['processes']}, missed {r['missed']}")
    res["loop"] = {}
    for label in loop_labels():
        busy, workers = "busy" in label, int(label.split()[0])
        r = measure_loop(ctx, workers, 0.0 if busy else LOOP_PAUSE, rounds)
        res["loop"][label] = r
        log(f"children: persistent {label}: first {median(r['first_ms']) or 0:.1f} ms, all "
            f"{median(r['all_ms']) or 0:.1f} ms, fever {median(r['fever_ms']) or 0:.1f} ms, "
            f"missed {r['missed']}")
    res["floor"] = {kind: {str(n): floor_ms(ctx, n, kind, ctx.rounds(300, 100)) for n in WORKERS}
                    for kind in FLOOR_KINDS}
    log(f"children: floor (bare broadcast, ms by children): {res['floor']}")
    res["idle"] = idle_cost(ctx, ctx.rounds(5, 3))
    log(f"children: idle fever in a fork pool: {res['idle']['ratio']:.3f}x")
    res["attach"] = worker_attach(ctx, ctx.rounds(20, 8))
    log(f"children: attach to a worker: {res['attach']}")
    return res


def render(res: dict) -> str:
    base = median(res["latency"]["1 process"]["latencies_ms"])
    rows = []
    for label, r in res["latency"].items():
        lat = median(r["latencies_ms"])
        ratio = f"{lat / base:.2f}×" if lat and base else "-"
        trip = r.get("round_trip_ms")
        rows.append([label, fmt_ms(lat), ratio, fmt_ms(median(r["fever_ms"])),
                     ", ".join(str(n) for n in sorted(set(r["processes"]))) or "-", str(r["missed"]),
                     fmt_ms(trip) if trip else "-"])
    loop_rows = []
    for label in loop_labels():
        r = res["loop"][label]
        first, every = median(r["first_ms"]), median(r["all_ms"])
        loop_rows.append([label + (" (no sleep)" if "busy" in label else f" ({LOOP_PAUSE * 1000:.1f} ms sleep)"),
                          fmt_ms(first), f"{first / base:.2f}×" if first and base else "-",
                          fmt_ms(every), f"{every / base:.2f}×" if every and base else "-",
                          fmt_ms(median(r["fever_ms"])), str(r["missed"])])
    idle = res["idle"]
    return "\n".join([
        *floor_lines(res, base),
        md_table(["persistent workers (each loops calling `work.value`)", "save → first worker's new result",
                  "vs 1 process", "save → every worker's new result", "vs 1 process",
                  "fever's own figure", "missed"], loop_rows),
        "",
        f"The issue's measure: no pool round trip; each worker loops like the single-process program "
        f"(\"1 process\" in the table below, {fmt_ms(base)} in this run). Busy workers never sleep: "
        "each applies a save at its main thread's next pending-call check, and they share the CPUs.",
        "",
        md_table(["program", "save → every result new (median)", "vs 1 process", "fever's own figure (median)",
                  "processes in fever's line", "missed", "one `pool.map` under python (median)"], rows),
        "",
        f"{res['rounds']} saves per row (in-place writes). Goal: within {GOAL_FACTOR}× of the single-process "
        "latency with 2 and 8 workers.",
        "",
        md_table(["fork pool, `Pool(2).map(fib, [24] * 16)` ×3", "python", "`fever run`", "ratio"],
                 [["whole process, best of " + str(idle["runs"]), f"{idle['python_s'] * 1000:.1f} ms",
                   f"{idle['fever_s'] * 1000:.1f} ms", f"**{idle['ratio']:.3f}×**"],
                  ["in-script (pool start to end), best of " + str(idle["runs"]),
                   f"{idle['python_in_script_s'] * 1000:.1f} ms", f"{idle['fever_in_script_s'] * 1000:.1f} ms",
                   f"**{idle['in_script_ratio']:.3f}×**"]]),
        "",
        f"The whole-process ratio includes `fever run`'s fixed start-up and exit costs (see `startup`); "
        f"goal ≤{IDLE_GOAL}× for the cost while the workers run (in-script). The end-to-end latency includes "
        "the pool's own round trip: a line counts once a whole `pool.map` ran after every worker applied the "
        "save (the last column: that round trip alone, measured in the same run); fever's own figure is from "
        "noticing the save to every process having answered.",
        "",
        md_table(["`fever attach` to a fork-pool worker", "measured", "goal"],
                 [["`Attach` → `Attached` on the worker's socket (median, busy pool)",
                   f"{res['attach']['worker_ms']:.2f} ms (max {res['attach']['worker_max_ms']:.2f} ms)",
                   f"≤{ATTACH_GOAL_MS:.0f} ms"],
                  ["the same on the program's socket, alternately", f"{res['attach']['top_ms']:.2f} ms", ""],
                  ["workers' control threads: wake-ups while the pool idles",
                   f"{res['attach']['idle_switches_per_s']:.1f}/s", "0/s"]]),
    ])


def floor_lines(res: dict, base: float | None) -> list[str]:
    """The scheduling floor's table (no fever), beside fever's persistent-worker rows."""
    floor = res.get("floor")
    if not floor:
        return []

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}×" if a and b else "-"

    rows = []
    for kind, label in (("blocked", "children blocked in `read`"),
                        ("loop", "children looping (0.2 ms sleep), a thread on the pipe")):
        f = floor[kind]
        rows.append([f"bare broadcast, {label}", fmt_ms(f["1"]), fmt_ms(f["2"]), fmt_ms(f["8"]),
                     ratio(f["2"], f["1"]), ratio(f["8"], f["1"])])
    loop = {n: median(res["loop"][f"{n} workers"]["all_ms"]) for n in LOOP_WORKERS}
    rows.append(["fever, save → every persistent worker's new result (vs 1 process)", fmt_ms(base),
                 fmt_ms(loop[2]), fmt_ms(loop[8]), ratio(loop[2], base), ratio(loop[8], base)])
    return [
        md_table(["scheduling floor (median)", "1", "2", "8", "2 / 1", "8 / 1"], rows),
        "",
        "The floor: plain python, no fever; the parent writes one short message to N forked children "
        "(a pipe each) and waits for their N replies, each child compiling a 2-line function and setting "
        f"its `__code__` ({FLOOR_PAUSE * 1000:.0f} ms between rounds). fever's row: the columns are 1 process, 2 and "
        "8 persistent workers, from the table below.",
        "",
    ]


def summary(res: dict) -> list[list[str]]:
    base = median(res["latency"]["1 process"]["latencies_ms"])
    out = []
    own_base = median(res["latency"]["1 process"]["fever_ms"])
    rows = [(f"save → new result from {n} fork-pool workers, vs 1 process", res["latency"][f"{n} workers"],
             "latencies_ms") for n in (2, 8)]
    rows += [(f"save → new result from every one of {n} persistent workers, vs 1 process",
              res["loop"][f"{n} workers"], "all_ms") for n in LOOP_WORKERS]
    for what, r, key in rows:
        lat, own = median(r[key]), median(r["fever_ms"])
        ratio = lat / base if lat and base else None
        own_ratio = f"; fever's own figure {own / own_base:.2f}× ({fmt_ms(own)} vs {fmt_ms(own_base)})" \
            if own and own_base else ""
        out.append([what, f"≤{GOAL_FACTOR}×",
                    (f"{ratio:.2f}× ({fmt_ms(lat)} vs {fmt_ms(base)}){own_ratio}") if ratio else "missed",
                    "yes" if ratio and ratio <= GOAL_FACTOR else "no"])
    idle = res["idle"]
    out.append(["idle fever in fork-pool workers (in-script: pool start to end)", f"≤{IDLE_GOAL}×",
                f"{idle['in_script_ratio']:.3f}× (whole process {idle['ratio']:.3f}×)",
                "yes" if idle["in_script_ratio"] <= IDLE_GOAL else "no"])
    attach = res["attach"]
    out.append(["`fever attach` to a fork-pool worker: `Attach` → `Attached`", f"≤{ATTACH_GOAL_MS:.0f} ms",
                f"{attach['worker_ms']:.2f} ms", "yes" if attach["worker_ms"] <= ATTACH_GOAL_MS else "no"])
    out.append(["workers' control threads: wake-ups while idle", "0/s",
                f"{attach['idle_switches_per_s']:.1f}/s", "yes" if attach["idle_switches_per_s"] == 0 else "no"])
    return out
