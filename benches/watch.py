"""`fever watch`: how long a re-run takes after an edit, and what a call-cache hit costs.

Re-run latency: a copy of `examples/slow_boot/` (its loader takes ~1.5 s, its `summarize()` is
fast) runs under `fever watch`; after the first run (`fever: waiting for changes`) each round saves
`app.py` with `summarize()` changed so its result line carries a round marker, and measures the
time from just before the write until that line is read from fever's stdout. With the cache the
loader is answered from it; with `--no-cache` it really runs (~1.5 s). For reference: plain
`python app.py`, start to finish (what a user without fever waits for after each edit).

Hit cost: a generated project whose module has, for each kind of argument, a slow function (it
sleeps 0.15 s, so it is cached) and an identical plain one that does not sleep. Under `fever watch`
the first run calls each slow function once (cached); the benchmark then saves the script, and the
second run times, in-script with `perf_counter_ns`, N calls of each slow function (all cache hits,
with the same arguments) and N calls of its plain twin, best of 5 batches. The cost of a hit is
hit − plain, per call. Arguments: small (an int, a short str, a keyword), 10 MiB of bytes, a
10 MiB numpy float64 array (numpy is pip-installed into `.bench-venv/` and put on the child's
path; the row is skipped with a note when that is not possible). The plain calls are also timed
under plain python for reference.

Bookkeeping: while a program runs under `fever watch`, every call of project code pays for the
monitoring that finds slow calls and the code they reach. A recursive `fib(25)` (242,785 calls, none
slow) timed in-script, best of 7, under plain python, `python -m cProfile` and `fever watch`, in the
same run: the extra nanoseconds per call.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from common import (BENCH_VENV, REPO, Ctx, bench_env, fmt_ms, kill_group, log, md_table, median, run_capture,
                    spawn, time_process)

NAME = "watch"
TITLE = "`fever watch`: re-run latency after an edit, and the cost of a call-cache hit"
GOAL_RERUN_MS = 100.0
GOAL_HIT_NS = 10_000.0
EXAMPLE = REPO / "examples" / "slow_boot"
START_TIMEOUT = 60.0  # s: the first run (python start-up + the ~1.5 s loader)
RUN_TIMEOUT = 30.0  # s: a re-run
SETTLE = 0.5  # s: after a run ends, before the next save
WAITING = "fever: waiting for changes"

# The line of examples/slow_boot/app.py the benchmark changes (in summarize()).
SUMMARY_LINE = 'return f"{len(sales)} sales'


# ---------------------------------------------------------------------------------------------
# A fever watch child, its output read with timestamps


class Child:
    """A long-running command; its stdout and stderr lines with the perf_counter time they were read."""

    def __init__(self, argv: list[str], cwd: Path, env: dict | None = None):
        self.argv = argv
        self.proc = spawn(argv, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env or bench_env())
        self.cond = threading.Condition()
        self.lines: dict[str, list[tuple[float, str]]] = {"stdout": [], "stderr": []}
        self.open = {"stdout": True, "stderr": True}
        for name in ("stdout", "stderr"):
            threading.Thread(target=self._read, args=(name,), daemon=True).start()

    def _read(self, name: str) -> None:
        stream = getattr(self.proc, name)
        for raw in iter(stream.readline, b""):
            t = time.perf_counter()
            with self.cond:
                self.lines[name].append((t, raw.decode("utf-8", "replace").rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.open[name] = False
            self.cond.notify_all()

    def mark(self, name: str) -> int:
        with self.cond:
            return len(self.lines[name])

    def wait(self, name: str, pattern: str, start: int, timeout: float) -> tuple[float, str] | None:
        """The first line of `name` from index `start` on that matches `pattern`, or None on timeout."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                lines = self.lines[name]
                while i < len(lines):
                    if regex.search(lines[i][1]):
                        return lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or not self.open[name]:
                    return None
                self.cond.wait(min(left, 0.5))

    def since(self, name: str, start: int) -> list[str]:
        with self.cond:
            return [s for _, s in self.lines[name][start:]]

    def tail(self, n: int = 8) -> str:
        with self.cond:
            return " | ".join(s for _, s in self.lines["stderr"][-n:])

    def close(self) -> None:
        kill_group(self.proc)


# ---------------------------------------------------------------------------------------------
# Re-run latency on examples/slow_boot


def rerun_latency(ctx: Ctx, label: str, extra: list[str], rounds: int) -> dict:
    d = Path(tempfile.mkdtemp(prefix="fever-bench-watch-"))
    res = {"label": label, "latencies_ms": [], "hit_lines": [], "error": None, "rounds": rounds,
           "command": " ".join(["fever", "watch", *extra, "app.py"])}
    child = None
    try:
        app_dir = d / "slow_boot"
        shutil.copytree(EXAMPLE, app_dir, ignore=shutil.ignore_patterns("__pycache__", ".fever"))
        app = app_dir / "app.py"
        original = app.read_text()
        if original.count(SUMMARY_LINE) != 1:
            raise RuntimeError(f"examples/slow_boot/app.py has no line {SUMMARY_LINE!r} to edit")
        child = Child([str(ctx.fever), "watch", *extra, "app.py"], cwd=app_dir)
        t_start = time.perf_counter()
        first = child.wait("stderr", f"^{WAITING}$", 0, START_TIMEOUT)
        if first is None:
            res["error"] = f"first run did not end within {START_TIMEOUT:.0f} s: {child.tail()}"
            return res
        res["first_run_s"] = first[0] - t_start
        for r in range(1, rounds + 1):
            time.sleep(SETTLE)
            out0, err0 = child.mark("stdout"), child.mark("stderr")
            text = original.replace(SUMMARY_LINE, SUMMARY_LINE.replace('f"', f'f"[round {r}] '))
            t0 = time.perf_counter()
            with open(app, "w") as f:  # an in-place save, as most editors without a backup do
                f.write(text)
            line = child.wait("stdout", rf"^summary: \[round {r}\] ", out0, RUN_TIMEOUT)
            if line is None:
                res["error"] = f"round {r}: no new result within {RUN_TIMEOUT:.0f} s: {child.tail()}"
                return res
            res["latencies_ms"].append((line[0] - t0) * 1000)
            if child.wait("stderr", f"^{WAITING}$", err0, RUN_TIMEOUT) is None:
                res["error"] = f"round {r}: the run did not end: {child.tail()}"
                return res
            fever_lines = [s for s in child.since("stderr", err0) if s.startswith("fever:")]
            res["hit_lines"].append([s for s in fever_lines if "cache hit" in s])
            res["last_lines"] = fever_lines
            res["loader_ran"] = res.get("loader_ran", 0) + sum(
                1 for s in child.since("stdout", out0) if s.startswith("loading "))
        return res
    finally:
        if child is not None:
            child.close()
        shutil.rmtree(d, ignore_errors=True)


def python_reference(ctx: Ctx, rounds: int) -> dict:
    d = Path(tempfile.mkdtemp(prefix="fever-bench-watch-py-"))
    try:
        app_dir = d / "slow_boot"
        shutil.copytree(EXAMPLE, app_dir, ignore=shutil.ignore_patterns("__pycache__", ".fever"))
        walls, error = [], None
        for _ in range(rounds):
            t = time_process([str(ctx.python), "app.py"], app_dir, timeout=120)
            if t.rc != 0:
                error = f"exit {t.rc}: {t.stderr.strip()[-300:]}"
                break
            walls.append(t.wall * 1000)
        return {"label": "python app.py", "latencies_ms": walls, "error": error, "rounds": rounds}
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Cost of a cache hit

WORK = '''
"""Slow functions (cached by fever watch) and identical plain twins."""
import time

DELAY = 0.15


def slow_small(a, b, scale=1):
    time.sleep(DELAY)
    return a * scale + len(b)


def plain_small(a, b, scale=1):
    return a * scale + len(b)


def slow_bytes(blob):
    time.sleep(DELAY)
    return len(blob)


def plain_bytes(blob):
    return len(blob)


def slow_array(array):
    time.sleep(DELAY)
    return array.shape[0]


def plain_array(array):
    return array.shape[0]
'''

MAIN = '''
import sys
import time

import work

MEASURE = False  # the benchmark saves this file with True: the second run measures
PLAIN_ONLY = "--plain-only" in sys.argv  # under plain python: only the plain functions

BLOB = bytes(range(256)) * (10 * 1024 * 1024 // 256)  # 10 MiB, the same in every run
try:
    import numpy
    ARRAY = numpy.arange(10 * 1024 * 1024 // 8, dtype=numpy.float64)  # 10 MiB
except ImportError:
    numpy = None

CASES = [("small", work.slow_small, work.plain_small, (42, "abc"), {"scale": 2}, 20000),
         ("bytes", work.slow_bytes, work.plain_bytes, (BLOB,), {}, 2000)]
if numpy is not None:
    CASES.append(("numpy", work.slow_array, work.plain_array, (ARRAY,), {}, 2000))

# The timing loops are module-level code on purpose: a timing *function* of the project whose
# call took >= 100 ms would itself be cached by fever watch, and return a stale timing.
if not PLAIN_ONLY:
    for name, slow, plain, args, kwargs, n in CASES:
        slow(*args, **kwargs)  # slow once (first run), a hit after that

if MEASURE or PLAIN_ONLY:
    for name, slow, plain, args, kwargs, n in CASES:
        funcs = [plain] if PLAIN_ONLY else [slow, plain]
        best, batch = {}, {}
        for f in funcs:
            t0 = time.perf_counter_ns()
            f(*args, **kwargs)
            one = time.perf_counter_ns() - t0
            if one > 50e6:
                break
            # About 0.2 s per batch at most, whatever a call costs; best of 5 batches.
            calls = batch[f] = max(5, min(n, int(2e8 / max(one, 1))))
            for _ in range(5):
                t0 = time.perf_counter_ns()
                for _ in range(calls):
                    f(*args, **kwargs)
                per_call = (time.perf_counter_ns() - t0) / calls
                best[f] = min(best.get(f, per_call), per_call)
        if PLAIN_ONLY:
            print(f"case {name} plain_ns={best[plain]:.1f}", flush=True)
        elif slow not in best:
            print(f"case {name} miss one_ms={one / 1e6:.1f}", flush=True)
        else:
            print(f"case {name} hit_ns={best[slow]:.1f} plain_ns={best[plain]:.1f} calls={batch[slow]}", flush=True)
print("numpy:", "yes" if numpy is not None else "no", flush=True)
print("done", flush=True)
'''

CASE_LINE = re.compile(r"^case (\w+) (?:(miss) one_ms=([\d.]+)"
                       r"|hit_ns=([\d.]+) plain_ns=([\d.]+) calls=(\d+)|plain_ns=([\d.]+))$")


def numpy_path(ctx: Ctx) -> tuple[str | None, str | None]:
    """The site-packages directory of .bench-venv with numpy in it (installing numpy there if
    needed), or (None, why not)."""
    py = ctx.bench_python
    if py is None:
        return None, "no `.bench-venv/` (run without `--no-jurigged`)"
    probe = "import numpy, os; print(os.path.dirname(os.path.dirname(numpy.__file__)))"
    r = run_capture([str(py), "-c", probe], timeout=60)
    if r.returncode != 0:
        log("watch: pip-installing numpy into .bench-venv/ (from PyPI)")
        r = run_capture([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "numpy"], timeout=600)
        if r.returncode != 0:
            return None, f"pip install numpy into {BENCH_VENV.name}/ failed: {r.stderr.strip()[-200:]}"
        r = run_capture([str(py), "-c", probe], timeout=60)
        if r.returncode != 0:
            return None, f"numpy does not import in {BENCH_VENV.name}/"
    return r.stdout.strip(), None


def parse_cases(lines: list[str]) -> dict:
    out = {}
    for s in lines:
        m = CASE_LINE.match(s)
        if not m:
            continue
        if m[2]:
            out[m[1]] = {"miss": True, "one_ms": float(m[3])}
        elif m[4]:
            out[m[1]] = {"hit_ns": float(m[4]), "plain_ns": float(m[5]), "calls": int(m[6])}
        else:
            out[m[1]] = {"plain_python_ns": float(m[7])}
    return out


def hit_cost(ctx: Ctx) -> dict:
    res = {"cases": {}, "error": None, "numpy_note": None}
    site, why = numpy_path(ctx)
    env = bench_env()
    if site:
        env["PYTHONPATH"] = site
    else:
        res["numpy_note"] = why
    d = Path(tempfile.mkdtemp(prefix="fever-bench-hit-"))
    child = None
    try:
        (d / "work.py").write_text(WORK.lstrip())
        main = d / "main.py"
        main.write_text(MAIN.lstrip())
        # Plain python, plain functions only: the reference for a call.
        r = run_capture([str(ctx.python), "main.py", "--plain-only"], timeout=300, cwd=d, env=env)
        if r.returncode != 0:
            res["error"] = f"python main.py --plain-only: exit {r.returncode}: {r.stderr.strip()[-300:]}"
            return res
        python_cases = parse_cases(r.stdout.splitlines())
        child = Child([str(ctx.fever), "watch", "--cache-min-ms", "100", "main.py"], cwd=d, env=env)
        if child.wait("stderr", f"^{WAITING}$", 0, START_TIMEOUT) is None:
            res["error"] = f"first run did not end: {child.tail()}"
            return res
        time.sleep(SETTLE)
        out0, err0 = child.mark("stdout"), child.mark("stderr")
        main.write_text(MAIN.lstrip().replace("MEASURE = False", "MEASURE = True"))
        if child.wait("stdout", "^done$", out0, 300) is None or \
                child.wait("stderr", f"^{WAITING}$", err0, 60) is None:
            res["error"] = f"the measuring run did not end: {child.tail()}"
            return res
        lines = child.since("stdout", out0)
        res["numpy_in_child"] = "numpy: yes" in lines
        res["cases"] = parse_cases(lines)
        for name, row in python_cases.items():
            res["cases"].setdefault(name, {}).update(row)
        res["fever_lines"] = [s for s in child.since("stderr", err0) if s.startswith("fever:")][-8:]
        return res
    finally:
        if child is not None:
            child.close()
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Per-call cost of the cache's bookkeeping

FIB = '''
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


best = min(
    (lambda t: (fib(25), time.perf_counter_ns() - t)[1])(time.perf_counter_ns()) for _ in range(7)
)
print("ns_per_call", best / 242785)
'''


def bookkeeping(ctx: Ctx) -> dict:
    """ns per fib call under python, cProfile and fever watch (first run only)."""
    d = Path(tempfile.mkdtemp(prefix="fever-bench-watch-fib-"))
    res: dict = {"error": None}
    try:
        (d / "fib.py").write_text(FIB.lstrip())
        for label, argv in (("python", [str(ctx.python), "fib.py"]),
                            ("cProfile", [str(ctx.python), "-m", "cProfile", "-o", "/dev/null", "fib.py"])):
            r = run_capture(argv, timeout=300, cwd=d, env=bench_env())
            m = re.search(r"ns_per_call (\S+)", r.stdout)
            if not m:
                res["error"] = f"{label}: {r.stderr.strip()[-300:]}"
                return res
            res[label] = float(m[1])
        child = Child([str(ctx.fever), "watch", "fib.py"], cwd=d)
        try:
            if child.wait("stderr", f"^{WAITING}$", 0, 300) is None:
                res["error"] = f"fever watch: {child.tail()}"
                return res
            m = next((re.search(r"ns_per_call (\S+)", s) for s in child.since("stdout", 0)
                      if s.startswith("ns_per_call")), None)
            if not m:
                res["error"] = f"fever watch printed no timing: {child.tail()}"
                return res
            res["fever watch"] = float(m[1])
        finally:
            child.close()
        return res
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------


def run(ctx: Ctx) -> dict:
    rounds = ctx.rounds(5, 3)
    rows = []
    for label, extra in (("fever watch", []), ("fever watch --no-cache", ["--no-cache"])):
        log(f"watch: re-run latency, {label}, {rounds} saves")
        r = rerun_latency(ctx, label, extra, rounds)
        if r["error"]:
            log(f"watch:   error: {r['error']}")
        else:
            lat = r["latencies_ms"]
            log(f"watch:   median {median(lat):.1f} ms, max {max(lat):.1f} ms; loader ran {r.get('loader_ran', 0)}×")
        rows.append(r)
    log(f"watch: python app.py, {rounds} runs")
    rows.append(python_reference(ctx, rounds))
    log("watch: cost of a cache hit")
    hits = hit_cost(ctx)
    if hits["error"]:
        log(f"watch:   error: {hits['error']}")
    for name, c in hits["cases"].items():
        log(f"watch:   {name}: {c}")
    log("watch: bookkeeping cost per call (fib)")
    book = bookkeeping(ctx)
    log(f"watch:   {book}")
    return {"rounds": rounds, "rerun": rows, "hits": hits, "settle_s": SETTLE, "bookkeeping": book}


def _latency_cell(r: dict) -> tuple[str, str]:
    if r["error"] and not r["latencies_ms"]:
        return "error", "–"
    lat = r["latencies_ms"]
    return f"{median(lat):.1f} ms", f"{max(lat):.1f} ms"


def _fmt_ns(x) -> str:
    if x is None:
        return "–"
    return f"{x / 1000:.1f} µs" if x >= 10_000 else f"{x:.0f} ns"


HIT_LABELS = {"small": "small: `f(42, 'abc', scale=2)`", "bytes": "10 MiB `bytes`",
              "numpy": "10 MiB numpy `float64` array"}


def render(res: dict) -> str:
    out = []
    rows = []
    for r in res["rerun"]:
        med, mx = _latency_cell(r)
        if r["label"] == "python app.py":
            note = "whole process, start to finish"
        elif r["error"]:
            note = f"error: {r['error'][:200]}"
        else:
            ran = r.get("loader_ran", 0)
            note = f"loader ran in {ran} of {len(r['latencies_ms'])} re-runs"
        rows.append([f"`{r['label']}`", len(r["latencies_ms"]), med, mx, note])
    out.append("**Re-run latency** (`examples/slow_boot/`: save `app.py` with `summarize()` changed → its new "
               "result line on stdout)")
    out.append("")
    out.append(md_table(["command", "saves", "median", "max", "note"], rows))
    out.append("")
    hit_lines = next((r["hit_lines"][-1] for r in res["rerun"]
                      if r["label"] == "fever watch" and r.get("hit_lines")), None)
    out.append(f"{res['rounds']} in-place saves per command, {res['settle_s']:.1f} s after the previous run ended; the "
               f"time runs from just before the write until the new result line is read from the child's pipe. "
               f"Goal with the cache: <{GOAL_RERUN_MS:.0f} ms (the loader alone takes ~1.5 s)."
               + (f" fever's report after a re-run: `{hit_lines[0]}`." if hit_lines else ""))
    out.append("")
    h = res["hits"]
    out.append("**Cost of a cache hit** (per call, in-script `perf_counter_ns`, best of 5 batches)")
    out.append("")
    if h.get("error"):
        out.append(f"The hit-cost run failed: `{h['error'][:300]}`")
        out.append("")
    rows = []
    for name in ("small", "bytes", "numpy"):
        c = h["cases"].get(name)
        if c is None or ("hit_ns" not in c and "miss" not in c):
            note = h.get("numpy_note") if name == "numpy" else None
            rows.append([HIT_LABELS[name], "–", "–", "–", _fmt_ns((c or {}).get("plain_python_ns")),
                         f"not measured{': ' + note if note else ''}"])
            continue
        if c.get("miss"):
            rows.append([HIT_LABELS[name], f"**no hit** ({c['one_ms']:.0f} ms)", "–", "–",
                         _fmt_ns(c.get("plain_python_ns")), "the call was not answered from the cache"])
            continue
        goal = f"≤{GOAL_HIT_NS / 1000:.0f} µs" if name == "small" else ""
        rows.append([HIT_LABELS[name], _fmt_ns(c["hit_ns"]), _fmt_ns(c["plain_ns"]),
                     f"**{_fmt_ns(c['hit_ns'] - c['plain_ns'])}**", _fmt_ns(c.get("plain_python_ns")),
                     f"{c['calls']} calls per batch" + (f"; goal {goal}" if goal else "")])
    out.append(md_table(["argument", "hit", "plain call (fever watch)", "hit − plain", "plain call (python)",
                         "note"], rows))
    out.append("")
    out.append("Each slow function sleeps 0.15 s, so its first call is cached (`--cache-min-ms 100`); the timed "
               "calls repeat the same arguments in the next run, so every one is a hit and returns a small "
               "value (the cost is looking the call up: snapshotting and hashing the arguments, finding the "
               "entry, copying the result). \"plain call\" is an identical function without the sleep, "
               "timed the same way in the same run, and under plain python.")
    book = res.get("bookkeeping")
    if book:
        out.append("")
        out.append("**Bookkeeping while the program runs** (recursive `fib(25)`, 242,785 calls, in-script, best "
                   "of 7; none is slow enough to cache)")
        out.append("")
        if book.get("error"):
            out.append(f"Not measured: `{book['error'][:300]}`")
        else:
            base = book["python"]
            rows = [[f"`{label}`", f"{book[label]:.0f} ns", f"{book[label] - base:+.0f} ns",
                     f"**{book[label] / base:.2f}×**"] for label in ("python", "cProfile", "fever watch")]
            out.append(md_table(["run under", "per call", "extra per call", "vs python"], rows))
            out.append("")
            out.append("`fever watch` keeps, per thread, a stack of the project's calls with the set of project "
                       "code each reached (what a cached call's validity depends on) and reads the TSC at each "
                       "call's start and end; library code is switched off at its first call. fib is the worst "
                       "case: a call does almost nothing else.")
    return "\n".join(out)


def summary(res: dict) -> list[list[str]]:
    out = []
    for r in res["rerun"]:
        if r["label"] != "fever watch":
            continue
        if r["latencies_ms"] and not r["error"]:
            m = median(r["latencies_ms"])
            out.append(["`fever watch` re-run after editing the fast function of slow_boot (call cache)",
                        f"<{GOAL_RERUN_MS:.0f} ms", f"{fmt_ms(m)} median, {fmt_ms(max(r['latencies_ms']))} max",
                        "yes" if m < GOAL_RERUN_MS else "no"])
        else:
            out.append(["`fever watch` re-run after editing the fast function of slow_boot (call cache)",
                        f"<{GOAL_RERUN_MS:.0f} ms", "error", "no"])
    c = res["hits"]["cases"].get("small")
    if c and "hit_ns" in c:
        cost = c["hit_ns"] - c["plain_ns"]
        out.append(["call-cache hit, small arguments (hit − plain call)", f"≤{GOAL_HIT_NS / 1000:.0f} µs",
                    _fmt_ns(cost), "yes" if cost <= GOAL_HIT_NS else "no"])
    elif c is not None or res["hits"].get("error"):
        out.append(["call-cache hit, small arguments (hit − plain call)", f"≤{GOAL_HIT_NS / 1000:.0f} µs",
                    "no hit" if c and c.get("miss") else "error", "no"])
    return out
