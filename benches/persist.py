"""`fever watch --persist-cache`: what keeping the call cache on disk costs at start-up, by
`--cache-size`.

Each measurement starts `fever watch` and times from the spawn until `fever: waiting for changes`
(the end of the first run) is read from its stderr. An empty cache: a project whose script only
prints, started with no `.fever/` directory, compared with the same start-up without
`--persist-cache` (the difference is what the cache file costs). With an entry: a copy of
`examples/slow_boot/` primed by one run at that size, so the next start answers its ~1.5 s loader
from the file (the time includes rebuilding the stored rows); compared with `--no-cache`. The cache
file's size on disk (allocated blocks) is given after the runs: it holds only what was written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from common import Ctx, log, md_table, median
from watch import EXAMPLE, START_TIMEOUT, WAITING, Child

NAME = "persist"
TITLE = "`fever watch --persist-cache`: start-up by cache size"
GOAL_MS = 50.0
SIZES = ("64M", "1G", "8G")
CACHE_FILE = Path(".fever") / "cache" / "calls.ring"


def start_ms(ctx: Ctx, cwd: Path, extra: list[str]) -> float:
    """Spawn → `waiting for changes`, in ms."""
    child = Child([str(ctx.fever), "watch", *extra, "app.py"], cwd=cwd)
    try:
        t0 = time.perf_counter()
        line = child.wait("stderr", f"^{WAITING}$", 0, START_TIMEOUT)
        if line is None:
            raise RuntimeError(f"no `{WAITING}` within {START_TIMEOUT:.0f} s: {child.tail()}")
        return (line[0] - t0) * 1000
    finally:
        child.close()


def allocated(path: Path) -> int | None:
    try:
        return os.stat(path).st_blocks * 512
    except OSError:
        return None


def run(ctx: Ctx) -> dict:
    rounds = ctx.rounds(7, 3)
    d = Path(tempfile.mkdtemp(prefix="fever-bench-persist-"))
    res: dict = {"rounds": rounds, "sizes": {}, "error": None}
    try:
        empty = d / "empty"
        empty.mkdir()
        (empty / "app.py").write_text('print("end")\n')
        boot = d / "slow_boot"
        shutil.copytree(EXAMPLE, boot, ignore=shutil.ignore_patterns("__pycache__", ".fever"))
        log(f"persist: fever watch without --persist-cache, {rounds} start-ups")
        res["base_empty_ms"] = [start_ms(ctx, empty, []) for _ in range(rounds)]
        res["base_boot_ms"] = [start_ms(ctx, boot, ["--no-cache"]) for _ in range(max(1, rounds // 2))]
        for size in SIZES:
            opts = ["--persist-cache", "--cache-size", size]
            walls = []
            for _ in range(rounds):
                shutil.rmtree(empty / ".fever", ignore_errors=True)
                walls.append(start_ms(ctx, empty, opts))
            shutil.rmtree(boot / ".fever", ignore_errors=True)
            start_ms(ctx, boot, opts)  # primes the file with load_data()'s entry
            entry = [start_ms(ctx, boot, opts) for _ in range(rounds)]
            res["sizes"][size] = {"empty_ms": walls, "entry_ms": entry,
                                  "file_bytes": (boot / CACHE_FILE).stat().st_size,
                                  "allocated_bytes": allocated(boot / CACHE_FILE)}
            log(f"persist: {size}: empty {median(walls):.1f} ms, with slow_boot's entry {median(entry):.1f} ms")
    except (RuntimeError, OSError) as err:
        res["error"] = str(err)
        log(f"persist: error: {err}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return res


def _mib(n) -> str:
    return "–" if n is None else f"{n / (1 << 20):.1f} MiB"


def render(res: dict) -> str:
    out = []
    if res.get("error"):
        out.append(f"The run failed: `{res['error'][:300]}`")
        out.append("")
    if not res.get("sizes"):
        return "\n".join(out)
    base = median(res["base_empty_ms"])
    boot = median(res["base_boot_ms"])
    rows = [["no `--persist-cache`", f"{base:.1f} ms", "–", f"{boot:.0f} ms (`--no-cache`)", "–"]]
    for size, r in res["sizes"].items():
        e = median(r["empty_ms"])
        rows.append([f"`--cache-size {size}`", f"{e:.1f} ms", f"**{e - base:+.1f} ms**",
                     f"{median(r['entry_ms']):.0f} ms", f"{_mib(r['file_bytes'])} ({_mib(r['allocated_bytes'])} allocated)"])
    out.append(md_table(["cache file", "start-up, empty cache", "cost of the file", "slow_boot start-up with its entry",
                         "file size"], rows))
    out.append("")
    out.append(f"Medians of {res['rounds']} start-ups each (spawn → `{WAITING}`). The file is at most 1 GiB "
               f"(`8G` is capped), created sparse: its pages are faulted in as records are written, so start-up "
               f"costs what the file holds. Goal: ≤{GOAL_MS:.0f} ms for an empty cache at any size.")
    return "\n".join(out)


def summary(res: dict) -> list[list[str]]:
    if not res.get("sizes"):
        return [["`--persist-cache` start-up cost, empty cache, worst `--cache-size`", f"≤{GOAL_MS:.0f} ms",
                 "error", "no"]]
    base = median(res["base_empty_ms"])
    worst_size, worst = max(((s, median(r["empty_ms"]) - base) for s, r in res["sizes"].items()),
                            key=lambda x: x[1])
    return [["`--persist-cache` start-up cost, empty cache, worst `--cache-size`", f"≤{GOAL_MS:.0f} ms",
             f"{worst:+.1f} ms ({worst_size})", "yes" if worst <= GOAL_MS else "no"]]
