"""Start-up cost of `fever run` on a hello-world script, against plain python.

Commands alternate within a round; best and median whole-process wall times over ~20 runs; the
delta to plain python in milliseconds is what a user waits for in addition.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from common import Ctx, fmt_ms, log, md_table, median, short_cmd, time_process

NAME = "startup"
TITLE = "Start-up of `fever run` (hello world)"
GOAL_MS = 30.0


def commands(ctx: Ctx, script: str) -> dict[str, list[str]]:
    py, fever = str(ctx.python), str(ctx.fever)
    cmds = {
        "python": [py, script],
        "fever run --no-watch": [fever, "run", "--no-watch", script],
        "fever run": [fever, "run", script],
    }
    if ctx.bench_python:
        # Context only: the other hot reloader starting the same script.
        cmds["python -m jurigged"] = [str(ctx.bench_python), "-m", "jurigged", script]
    return cmds


def run(ctx: Ctx) -> dict:
    n = ctx.rounds(20, 10)
    with tempfile.TemporaryDirectory(prefix="fever-bench-startup-") as d:
        return _run(ctx, n, d)


def _run(ctx: Ctx, n: int, d: str) -> dict:
    script = str(Path(d) / "hello.py")
    Path(script).write_text("print('hello')\n")
    cmds = commands(ctx, script)
    walls = {k: [] for k in cmds}
    errors = {}
    for name, argv in cmds.items():  # warm-up
        t = time_process(argv, d, timeout=60)
        if t.rc != 0:
            errors[name] = f"exit {t.rc}: {t.stderr.strip()[-500:]}"
    for r in range(n):
        order = list(cmds) if r % 2 == 0 else list(reversed(cmds))
        for name in order:
            if name in errors:
                continue
            t = time_process(cmds[name], d, timeout=60)
            if t.rc != 0:
                errors[name] = f"exit {t.rc}: {t.stderr.strip()[-500:]}"
                continue
            walls[name].append(t.wall * 1000)
        if (r + 1) % 5 == 0 or r + 1 == n:
            log(f"startup: {r + 1}/{n} rounds")
    base = walls["python"]
    rows = []
    for name, argv in cmds.items():
        w = walls[name]
        rows.append({
            "name": name,
            "argv": short_cmd(argv).replace(script, "hello.py"),
            "runs": len(w),
            "best_ms": min(w) if w else None,
            "median_ms": median(w),
            "p90_ms": sorted(w)[min(len(w) - 1, int(0.9 * len(w)))] if w else None,
            "delta_best_ms": (min(w) - min(base)) if (w and base) else None,
            "delta_median_ms": (median(w) - median(base)) if (w and base) else None,
            "error": errors.get(name),
        })
    return {"runs": n, "rows": rows}


def _delta(x):
    return "–" if x is None else f"{x:+.1f} ms"


def render(res: dict) -> str:
    rows = []
    for r in res["rows"]:
        rows.append([
            f"`{r['name']}`", r["runs"], fmt_ms(r["best_ms"]), fmt_ms(r["median_ms"]), fmt_ms(r.get("p90_ms")),
            f"**{_delta(r['delta_best_ms'])}**" if r["name"].startswith("fever") else _delta(r["delta_best_ms"]),
            _delta(r["delta_median_ms"]),
            ("error: " + r["error"].replace("\n", " ")[:200]) if r["error"] else "",
        ])
    out = [md_table(["command", "runs", "best", "median", "90th percentile", "best − python", "median − python", "note"], rows)]
    out.append("")
    out.append(f"Script: `print('hello')`; {res['runs']} alternating runs after one warm-up run each. "
               f"Goal for both `fever run` rows: ≤ +{GOAL_MS:.0f} ms over plain python. "
               "jurigged is there for context only.")
    return "\n".join(out)


def summary(res: dict) -> list[list[str]]:
    out = []
    for r in res["rows"]:
        if not r["name"].startswith("fever"):
            continue
        d = r["delta_median_ms"]
        met = "–" if d is None else ("yes" if d <= GOAL_MS else "no")
        out.append([f"`{r['name']}` start-up (median, hello world)", f"≤ +{GOAL_MS:.0f} ms",
                    _delta(d) if d is not None else ("error" if r["error"] else "–"), met])
    return out
