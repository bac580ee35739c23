"""Dormant `fever run` by the size of the tree it starts in: the shared measuring script
`overhead.py --workload fib-long --dirs N` (a ~0.6 s CPU-bound script with N empty directories
beside it, nested two deep) for N = 0, 1,000 and 10,000, with plain python as the base and
`fever run` and `fever run --no-watch` alternating with it, best of N runs each.

fever watches the directories of the project's modules as they are imported, not the tree, so the
ratio should not grow with N.
"""

from __future__ import annotations

import re

from common import TOOLS, Ctx, log, md_table, run_capture

NAME = "dormant"
TITLE = "Dormant `fever run` by the size of the directory tree"
GOAL = 1.01
TREES = (0, 1000, 10000)
LINE = re.compile(r"^fib-long: '(?P<cmd>.*)' best (?P<ms>[\d.]+) ms, ratio (?P<ratio>[\d.]+)$")


def run(ctx: Ctx) -> dict:
    runs = ctx.rounds(5, 3)
    commands = {"fever run": f"{ctx.fever} run", "fever run --no-watch": f"{ctx.fever} run --no-watch"}
    res: dict = {"runs": runs, "trees": {}}
    for dirs in TREES:
        argv = [str(ctx.python), str(TOOLS / "overhead.py"), "--base", str(ctx.python), "--workload", "fib-long",
                "--runs", str(runs), "--dirs", str(dirs)]
        for cmd in commands.values():
            argv += ["--cmd", cmd]
        r = run_capture(argv, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"overhead.py failed: {r.stdout[-300:]}{r.stderr[-300:]}")
        by_cmd = {m["cmd"]: (float(m["ms"]), float(m["ratio"]))
                  for m in map(LINE.match, r.stdout.splitlines()) if m}
        row = {"python_ms": by_cmd[str(ctx.python)][0]}
        for label, cmd in commands.items():
            row[label] = {"ms": by_cmd[cmd][0], "ratio": by_cmd[cmd][1]}
        res["trees"][str(dirs)] = row
        log(f"dormant: {dirs} dirs: " + ", ".join(f"{k} {row[k]['ratio']:.3f}×" for k in commands))
    return res


def render(res: dict) -> str:
    rows = []
    for dirs, row in res["trees"].items():
        cells = [f"{int(dirs):,}", f"{row['python_ms']:.1f} ms"]
        for label in ("fever run", "fever run --no-watch"):
            cells.append(f"{row[label]['ms']:.1f} ms (**{row[label]['ratio']:.3f}×**)")
        rows.append(cells)
    return "\n".join([
        md_table(["empty directories beside the script", "python", "`fever run`", "`fever run --no-watch`"], rows),
        "",
        f"`{TOOLS.name}/overhead.py --workload fib-long --dirs N --runs {res['runs']}`: whole processes, best of "
        f"{res['runs']} alternating runs, ratio to plain python. Before fever watched only the directories of "
        "imported modules (it watched every directory under the root), the issue measured 1.20× at 1,000 and "
        f"2.46× at 10,000 directories. Goal: ≤{GOAL}× at every size.",
    ])


def summary(res: dict) -> list[list[str]]:
    out = []
    for dirs, row in res["trees"].items():
        ratio = row["fever run"]["ratio"]
        out.append([f"dormant `fever run`, 0.6 s script, {int(dirs):,} empty directories beside it", f"≤{GOAL}×",
                    f"{ratio:.3f}× (`--no-watch` {row['fever run --no-watch']['ratio']:.3f}×)",
                    "yes" if ratio <= GOAL else "no"])
    return out
