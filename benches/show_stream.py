"""`fever show` on a big trace: wall time, CPU time and peak memory of each view.

A generated workload makes 300,000 calls whose arguments are all different (a string and a list
of strings each), so the trace's snapshots cannot be shared and its decompressed record stream
runs to hundreds of MB. It is recorded once with `fever record --max-calls-per-function 0`; then
`fever show --format perfetto`, `--format speedscope` and `--profile` each run a few times, their
output going to a file (the export) or /dev/null. Peak memory is the child's maximum resident set
(`wait4`'s `ru_maxrss`). The reader keeps the chunks' decompressed streams in memory up to 64 MiB,
past that in an unlinked temporary file whose pages it releases as it goes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import Ctx, bench_env, log, md_table, run_capture

NAME = "show_stream"
TITLE = "`fever show` of a big trace: time and peak memory"
GOAL_S = 2.0
GOAL_MB = 200.0
CALLS = 300_000

WORKLOAD = f"""
def label(i, text, parts):
    return len(text) + len(parts) + i


def main():
    total = 0
    for i in range({CALLS}):
        total += label(i, "item-" + str(i) * 60, [str(i + k) * 9 for k in range(16)])
    return total


print(main())
"""

VIEWS = {
    "--format perfetto": ["--format", "perfetto", "-o", "out.pftrace"],
    "--format speedscope": ["--format", "speedscope", "-o", "out.speedscope.json"],
    "--profile": ["--profile"],
}


def timed(argv: list[str], cwd: Path) -> dict:
    """Wall and CPU seconds and peak RSS (MB) of one run of `argv`, stdout to /dev/null."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=bench_env())
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode("utf-8", "replace")
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {err[-500:]}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_mb": ru.ru_maxrss / 1024}


def run(ctx: Ctx) -> dict:
    runs = ctx.rounds(3, 2)
    d = Path(tempfile.mkdtemp(prefix="fever-bench-show-"))
    try:
        (d / "big.py").write_text(WORKLOAD)
        trace = d / "big.trace"
        log(f"show_stream: recording {CALLS:,} calls")
        r = run_capture([str(ctx.fever), "record", "--max-calls-per-function", "0", "-o", str(trace), "big.py"],
                        timeout=600, cwd=d)
        if r.returncode != 0:
            raise RuntimeError(f"fever record failed: {r.stderr[-500:]}")
        res: dict = {"runs": runs, "calls": CALLS, "trace_bytes": trace.stat().st_size, "views": {}}
        for label, args in VIEWS.items():
            best = None
            for _ in range(runs):
                m = timed([str(ctx.fever), "show", str(trace), *args], d)
                best = m if best is None or m["wall_s"] < best["wall_s"] else best
            out = d / args[-1] if "-o" in args else None
            best["output_bytes"] = out.stat().st_size if out and out.exists() else None
            res["views"][label] = best
            log(f"show_stream: {label}: {best['wall_s']:.2f} s, {best['peak_mb']:.0f} MB")
        return res
    finally:
        shutil.rmtree(d, ignore_errors=True)


def render(res: dict) -> str:
    rows = []
    for label, m in res["views"].items():
        size = f"{m['output_bytes'] / 1e6:.0f} MB" if m.get("output_bytes") else "–"
        rows.append([f"`fever show {label}`", f"{m['wall_s']:.2f} s", f"{m['cpu_s']:.2f} s",
                     f"**{m['peak_mb']:.0f} MB**", size])
    return "\n".join([
        md_table(["command", "wall (best)", "CPU", "peak memory", "output"], rows),
        "",
        f"Trace: {res['calls']:,} calls with distinct arguments, {res['trace_bytes'] / 1e6:.1f} MB on disk "
        f"(`benches/show_stream.py`); best of {res['runs']} runs. Before the reader went chunk by chunk it kept the "
        "whole decompressed stream: the issue measured 4.85 s and 1.06 GB for an 858 MB trace, and a 23 MB "
        "more-itertools trace took 579 MB (93 MB now, same output). "
        f"Goals for `--format perfetto`: ≤{GOAL_S:.0f} s and ≤{GOAL_MB:.0f} MB whatever the size.",
    ])


def summary(res: dict) -> list[list[str]]:
    m = res["views"].get("--format perfetto")
    if not m:
        return []
    return [
        ["`fever show --format perfetto` of a big trace: wall", f"≤{GOAL_S:.0f} s", f"{m['wall_s']:.2f} s",
         "yes" if m["wall_s"] <= GOAL_S else "no"],
        ["`fever show --format perfetto` of a big trace: peak memory", f"≤{GOAL_MB:.0f} MB",
         f"{m['peak_mb']:.0f} MB", "yes" if m["peak_mb"] <= GOAL_MB else "no"],
    ]
