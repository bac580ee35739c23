"""Overhead of a dormant `fever run` on a CPU-bound script, against plain python and cProfile.

The same script runs under each command, commands alternate within a round (so drift of the
machine hits all of them alike), and the best of N whole-process wall times is compared with
plain python's. The child's CPU time (user + system, from wait4) is reported too: a busy watcher
thread would show there even when it hides in wall time on a multi-core machine.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from common import Ctx, fmt_ratio, fmt_s, log, md_table, median, short_cmd, time_process

NAME = "overhead"
TITLE = "Overhead of `fever run` on a CPU-bound script"
GOAL = 1.02

WORKLOAD = '''\
"""CPU-bound workload for the overhead benchmark: recursive calls, then dict and str work."""


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def word_stats(n):
    counts = {}
    for i in range(n):
        word = "w" + str(i % 7919)
        counts[word] = counts.get(word, 0) + len(word)
    text = ",".join(f"{k}={v}" for k, v in sorted(counts.items()))
    return len(text), text.count("=1")


if __name__ == "__main__":
    import time
    t0 = time.perf_counter()
    total = sum(fib(27) for _ in range(20))
    length, ones = word_stats(2_400_000)
    elapsed = time.perf_counter() - t0
    print(total, length, ones)
    print(f"in-script seconds: {elapsed:.6f}")
'''


def commands(ctx: Ctx, script: str) -> dict[str, list[str]]:
    py, fever = str(ctx.python), str(ctx.fever)
    return {
        "python": [py, script],
        "fever run --no-watch": [fever, "run", "--no-watch", script],
        "fever run": [fever, "run", script],
        "python -m cProfile": [py, "-m", "cProfile", "-o", "/dev/null", script],
    }


def run(ctx: Ctx) -> dict:
    n = ctx.rounds(5, 3)
    with tempfile.TemporaryDirectory(prefix="fever-bench-overhead-") as d:
        return _run(ctx, n, d)


def _run(ctx: Ctx, n: int, d: str) -> dict:
    script = str(Path(d) / "workload.py")
    Path(script).write_text(WORKLOAD)
    cmds = commands(ctx, script)
    walls = {k: [] for k in cmds}
    cpus = {k: [] for k in cmds}
    inner = {k: [] for k in cmds}
    errors = {}
    # One warm-up run per command (page cache, .pyc of the stdlib), not counted.
    for name, argv in cmds.items():
        t = time_process(argv, d)
        if t.rc != 0:
            errors[name] = f"exit {t.rc}: {t.stderr.strip()[-500:]}"
    for r in range(n):
        order = list(cmds) if r % 2 == 0 else list(reversed(cmds))
        for name in order:
            if name in errors:
                continue
            t = time_process(cmds[name], d, capture=True)
            if t.rc != 0:
                errors[name] = f"exit {t.rc}: {t.stderr.strip()[-500:]}"
                continue
            walls[name].append(t.wall)
            cpus[name].append(t.cpu)
            m = re.search(r"in-script seconds: ([\d.]+)", t.stdout)
            if m:
                inner[name].append(float(m.group(1)))
        log(f"overhead: round {r + 1}/{n}: " + ", ".join(
            f"{k} {walls[k][-1]:.3f}s" for k in order if walls[k]))
    base_w = min(walls["python"]) if walls["python"] else None
    base_c = min(cpus["python"]) if cpus["python"] else None
    base_i = min(inner["python"]) if inner["python"] else None
    rows = []
    for name, argv in cmds.items():
        w, c = walls[name], cpus[name]
        rows.append({
            "name": name,
            "argv": short_cmd(argv).replace(script, "workload.py"),
            "runs": len(w),
            "best_wall": min(w) if w else None,
            "median_wall": median(w),
            "best_cpu": min(c) if c else None,
            "ratio_wall": (min(w) / base_w) if (w and base_w) else None,
            "ratio_cpu": (min(c) / base_c) if (c and base_c) else None,
            "best_inner": min(inner[name]) if inner[name] else None,
            "ratio_inner": (min(inner[name]) / base_i) if (inner[name] and base_i) else None,
            "error": errors.get(name),
        })
    return {"runs": n, "rows": rows, "workload": WORKLOAD}


def render(res: dict) -> str:
    rows = []
    by = {r["name"]: r for r in res["rows"]}
    cp = by.get("python -m cProfile", {}).get("best_wall")
    for r in res["rows"]:
        vs_cprofile = (r["best_wall"] / cp) if (cp and r["best_wall"]) else None
        rows.append([
            f"`{r['name']}`", r["runs"], fmt_s(r["best_wall"]), fmt_s(r["median_wall"]),
            f"**{fmt_ratio(r['ratio_wall'])}**" if r["name"].startswith("fever") else fmt_ratio(r["ratio_wall"]),
            fmt_ratio(vs_cprofile), fmt_s(r["best_cpu"]), fmt_ratio(r["ratio_cpu"]),
            fmt_s(r.get("best_inner")), fmt_ratio(r.get("ratio_inner")),
            ("error: " + r["error"].replace("\n", " ")[:200]) if r["error"] else "",
        ])
    out = [md_table(["command", "runs", "best wall", "median wall", "best wall / python",
                     "best wall / cProfile", "best CPU", "CPU / python", "best in-script",
                     "in-script / python", "note"], rows)]
    out.append("")
    out.append(f"Workload: recursive `fib(27)` 20 times, then a dict/str pass over 2.4 M keys "
               f"(`benches/overhead.py`); best of {res['runs']} alternating runs after one warm-up run "
               f"each. Wall and CPU are whole processes (start-up and exit included); \"in-script\" is the "
               f"workload timed with `perf_counter` inside the script, i.e. the cost while the program "
               f"runs, without fever's fixed start-up and exit costs. Goal for both `fever run` rows: "
               f"≤{GOAL:.2f}× plain python (whole process). Where whole process and in-script differ, it "
               f"is fixed cost: ~9 ms of start-up, and with the watcher on ~8 ms at exit while the kernel "
               f"tears down the inotify instance (a bare `inotify_init` + one watch adds ~14 ms to a "
               f"process's exit on this kernel; every inotify-based watcher, jurigged's included, pays it).")
    return "\n".join(out)


def summary(res: dict) -> list[list[str]]:
    by = {r["name"]: r for r in res["rows"]}
    out = []
    for name in ("fever run", "fever run --no-watch"):
        r = by.get(name)
        if not r:
            continue
        ratio = r["ratio_wall"]
        met = "–" if ratio is None else ("yes" if ratio <= GOAL else "no")
        val = fmt_ratio(ratio) if ratio else ("error" if r["error"] else "–")
        if ratio and r.get("ratio_inner"):
            val += f" whole process ({fmt_ratio(r['ratio_inner'])} in-script)"
        out.append([f"`{name}` overhead on a CPU-bound script", f"≤{GOAL:.2f}×", val, met])
    return out
