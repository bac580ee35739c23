"""`fever check`: how fast recorded calls are re-invoked and compared, and how long a large trace
takes to load and validate.

Throughput: a script makes 10,000 small top-level calls (`scale(Point(x, y), k)`: a dataclass
argument and a float, a dataclass result), recorded with `fever record --max-calls-per-function 0`.
Measured three ways, best of N rounds:
  - in-script: `_native.CheckSession(trace)` then `run(i)` for every call, timed with perf_counter
    around the runs only (rebuild the arguments, call, snapshot, compare);
  - whole process: `fever check TRACE` (start-up, import, load, 10,000 calls, summary) and, for
    the fixed part, the same on a trace of the same script with 10 calls.
Load: a script makes 200,000 calls with a 200-character string argument and result, recorded to a
~100 MB trace; the time of `CheckSession(trace, select=[no match])` (read, validate every
checksum and archive, walk every event to select) against reading the file's bytes alone.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from common import Ctx, fmt_s, log, md_table, run_capture, time_process

NAME = "check"
TITLE = "`fever check`: re-invoked calls per second, loading a 100 MB trace"

SMALL = """
from dataclasses import dataclass
import sys


@dataclass
class Point:
    x: float
    y: float


def scale(p, k):
    return Point(p.x * k, p.y * k)


if __name__ == "__main__":
    for i in range(int(sys.argv[1])):
        scale(Point(float(i), i / 7), 2.5)
"""

BIG = """
import sys


def echo(text):
    return text[::-1]


if __name__ == "__main__":
    for i in range(int(sys.argv[1])):
        echo(f"{i:08d}" + "x" * 192)
"""

IN_SCRIPT = """
import json, sys, time
from fever import _native

session = _native.CheckSession(sys.argv[1])
n = len(session.cases())
t0 = time.perf_counter()
statuses = [session.run(i)[0] for i in range(n)]
elapsed = time.perf_counter() - t0
print(json.dumps({"calls": n, "passed": statuses.count("passed"), "seconds": elapsed}))
"""

LOAD = """
import json, sys, time
from fever import _native

t0 = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    size = len(f.read())
read = time.perf_counter() - t0
t0 = time.perf_counter()
session = _native.CheckSession(sys.argv[1], select=["no.such.function"])
load = time.perf_counter() - t0
print(json.dumps({"bytes": size, "read": read, "load": load, "cases": len(session.cases())}))
"""

CALLS = 10_000
BIG_CALLS = 200_000


def _record(ctx: Ctx, tmp: Path, script: str, calls: int, name: str) -> Path:
    trace = tmp / f"{name}.trace"
    r = run_capture([str(ctx.fever), "record", "-q", "--no-watch", "--max-calls-per-function", "0",
                     "-o", str(trace), script, str(calls)], timeout=600, cwd=tmp)
    if r.returncode != 0 or not trace.exists():
        raise RuntimeError(f"fever record failed: {r.stderr[-2000:]}")
    return trace


def _json_run(ctx: Ctx, tmp: Path, code: str, trace: Path) -> dict:
    r = run_capture([str(ctx.python), "-c", code, str(trace)], timeout=600, cwd=tmp)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def run(ctx: Ctx) -> dict:
    rounds = ctx.rounds(5, 3)
    with tempfile.TemporaryDirectory(prefix="fever-bench-check-") as tmp:
        tmp = Path(tmp)
        (tmp / "points.py").write_text(SMALL)
        (tmp / "echo.py").write_text(BIG)
        small = _record(ctx, tmp, "points.py", CALLS, "points")
        tiny = _record(ctx, tmp, "points.py", 10, "points10")
        log(f"recorded {CALLS} calls ({small.stat().st_size / 1e6:.2f} MB)")
        inner, whole, fixed = [], [], []
        for i in range(rounds):
            res = _json_run(ctx, tmp, IN_SCRIPT, small)
            if res["passed"] != CALLS:
                raise RuntimeError(f"expected {CALLS} passed calls, got {res}")
            inner.append(res["seconds"])
            t = time_process([str(ctx.fever), "check", str(small)], cwd=tmp, timeout=600)
            if t.rc != 0:
                raise RuntimeError(f"fever check failed: {t.stderr[-2000:]}")
            whole.append(t.wall)
            fixed.append(time_process([str(ctx.fever), "check", str(tiny)], cwd=tmp, timeout=600).wall)
            log(f"round {i + 1}/{rounds}: {res['seconds']:.3f} s in-script, {t.wall:.3f} s whole process")
        big = _record(ctx, tmp, "echo.py", BIG_CALLS, "echo")
        log(f"recorded {BIG_CALLS} calls ({big.stat().st_size / 1e6:.1f} MB)")
        loads = [_json_run(ctx, tmp, LOAD, big) for _ in range(rounds)]
        for trace in (small, tiny, big):
            os.unlink(trace)
    return {
        "calls": CALLS,
        "in_script_s": min(inner),
        "whole_s": min(whole),
        "fixed_s": min(fixed),
        "big_calls": BIG_CALLS,
        "big_bytes": loads[0]["bytes"],
        "read_s": min(x["read"] for x in loads),
        "load_s": min(x["load"] for x in loads),
    }


def render(res: dict) -> str:
    calls = res["calls"]
    net = res["whole_s"] - res["fixed_s"]
    mb = res["big_bytes"] / 1e6
    rows = [
        ["in-script: `CheckSession.run` for every call", fmt_s(res["in_script_s"]),
         f"{calls / res['in_script_s']:,.0f} calls/s ({res['in_script_s'] / calls * 1e6:.1f} µs per call)"],
        [f"whole process: `fever check` on {calls:,} calls", fmt_s(res["whole_s"]),
         f"{calls / res['whole_s']:,.0f} calls/s"],
        ["whole process: `fever check` on 10 calls (start-up, import, load)", fmt_s(res["fixed_s"]), ""],
        ["whole process, net of the 10-call run", fmt_s(net),
         f"{calls / net:,.0f} calls/s" if net > 0 else "–"],
        [f"load and validate a {mb:.0f} MB trace ({res['big_calls']:,} calls) and select its calls",
         fmt_s(res["load_s"]), f"{mb / res['load_s']:,.0f} MB/s"],
        [f"reading the same {mb:.0f} MB file alone", fmt_s(res["read_s"]),
         f"validation costs {res['load_s'] / res['read_s']:.1f}× the read"],
    ]
    return "\n".join([
        md_table(["measured", "time (best)", "rate"], rows), "",
        "Each call re-invoked rebuilds a `Point` dataclass argument from its snapshot (`__new__` and its "
        "fields), calls `scale`, snapshots the returned `Point` with the trace's limits and compares it "
        "with the recorded one in Rust. The load time is `CheckSession(trace, select=[no match])` in a "
        "running interpreter: the whole file read, every checksum and rkyv archive validated, every event "
        "walked to select calls.",
    ])


def summary(res: dict) -> list[list[str]]:
    return []


if __name__ == "__main__":
    import sys
    sys.exit("run through benches/run.py --only check")
