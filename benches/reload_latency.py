"""Save-to-new-output latency of hot reload, as a user sees it: fever against jurigged.

A generated module `big.py` holds N functions (N = 100, 1,000, 10,000) plus `target()`; `main.py`
imports it and prints `big.target()` in a tight loop, flushing each line. The benchmark starts the
reloader on `main.py`, waits for the first line, lets the watcher settle, then rewrites `big.py`
with only `target()`'s return value changed and measures the time from just before the write until
the new value appears on the child's stdout. Two kinds of save: in-place (truncate + write, as
`open(path, "w")` does) and rename-into-place (write a temp file, then `os.replace`, as most editors
save). A change that does not show up within the timeout is reported as missed (jurigged is known
never to see rename-into-place saves), and that configuration stops there: later rounds would
measure nothing meaningful. fever's own figure (the `(X.X ms)` of its `reloaded` line, from noticing
the save to the new code installed) is reported next to the outside measurement.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from common import Ctx, bench_env, fmt_ms, kill_group, log, md_table, median, short_cmd, spawn

NAME = "reload_latency"
TITLE = "Reload latency: save → new output (fever vs jurigged)"
GOAL_MS = {1000: 2.0, 10000: 4.0}  # issue 15: a reload costs what changed, not the file
SIZES = (100, 1000, 10000)
MODES = ("inplace", "rename")
MODE_LABEL = {"inplace": "in-place write", "rename": "rename-into-place"}
MISS_TIMEOUT = 5.0  # s: a change not visible by then is "missed"
START_TIMEOUT = 30.0  # s: until the first line of output
SETTLE = 1.0  # s: after the first line, before the first save (both tools get the same)
PAUSE = 0.3  # s: between rounds

RELOADED_MS = re.compile(r"\((\d+(?:\.\d+)?) ms\)")


def module_source(n: int, version: int) -> str:
    out = ["import math", ""]
    for i in range(n):
        out += [f"def f{i}(x):", f"    y = x * {i} + 1", f"    return math.sqrt(y) + {i}", ""]
    out += ["def target():", f"    return 'version-{version}'", ""]
    return "\n".join(out)


MAIN = """\
import os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import big

deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    print(big.target(), flush=True)
    time.sleep(0.0002)
"""


def save(path: Path, text: str, mode: str) -> None:
    if mode == "inplace":
        with open(path, "w") as f:
            f.write(text)
    else:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)


class Watcher:
    """Reads the child's stdout and stderr on threads; records when each distinct line first shows."""

    def __init__(self, proc):
        self.proc = proc
        self.cond = threading.Condition()
        self.first_seen: dict[bytes, float] = {}
        self.stderr: list[tuple[float, str]] = []
        self.eof = False
        self._threads = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._threads:
            t.start()

    def _read_out(self):
        fd = self.proc.stdout.fileno()
        rest = b""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                chunk = b""
            t = time.perf_counter()
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            new = [ln for ln in set(lines) if ln not in self.first_seen]
            if new:
                with self.cond:
                    for ln in new:
                        self.first_seen.setdefault(ln, t)
                    self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def _read_err(self):
        for raw in iter(self.proc.stderr.readline, b""):
            with self.cond:
                self.stderr.append((time.perf_counter(), raw.decode("utf-8", "replace").rstrip("\n")))

    def wait_for(self, line: bytes, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while line not in self.first_seen:
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    return None
                self.cond.wait(left)
            return self.first_seen[line]

    def stderr_since(self, t0: float) -> list[str]:
        with self.cond:
            return [s for t, s in self.stderr if t >= t0]

    def stderr_tail(self, n: int = 8) -> list[str]:
        with self.cond:
            return [s for _, s in self.stderr[-n:]]


def measure(argv_prefix: list[str], n: int, mode: str, rounds: int) -> dict:
    d = Path(tempfile.mkdtemp(prefix="fever-bench-reload-"))
    big = d / "big.py"
    big.write_text(module_source(n, 0))
    main = d / "main.py"
    main.write_text(MAIN)
    res = {"latencies_ms": [], "fever_ms": [], "reload_lines": [], "missed": False, "error": None,
           "rounds": rounds}
    p = spawn(argv_prefix + [str(main)], cwd=str(d), stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=bench_env())
    try:
        w = Watcher(p)
        t_start = time.perf_counter()
        if w.wait_for(b"version-0", START_TIMEOUT) is None:
            res["error"] = f"no output within {START_TIMEOUT:.0f} s; stderr: " + " | ".join(w.stderr_tail())
            return res
        res["startup_ms"] = (w.first_seen[b"version-0"] - t_start) * 1000
        time.sleep(SETTLE)
        for r in range(1, rounds + 1):
            key = f"version-{r}".encode()
            text = module_source(n, r)
            t0 = time.perf_counter()
            save(big, text, mode)
            t1 = w.wait_for(key, MISS_TIMEOUT)
            if t1 is None:
                if p.poll() is not None:
                    res["error"] = f"process exited ({p.returncode}); stderr: " + " | ".join(w.stderr_tail())
                else:
                    res["missed"] = True
                    res["missed_round"] = r
                    res["stderr_after_miss"] = w.stderr_since(t0)[-5:]
                break
            res["latencies_ms"].append((t1 - t0) * 1000)
            time.sleep(PAUSE)
            lines = [s for s in w.stderr_since(t0) if s.startswith("fever:")]
            res["reload_lines"].append(lines[-6:])
            for s in reversed(lines):
                m = RELOADED_MS.search(s)
                if s.startswith("fever: reloaded") and m:
                    res["fever_ms"].append(float(m.group(1)))
                    break
        res["stderr_tail"] = w.stderr_tail(5)
        return res
    finally:
        kill_group(p)
        shutil.rmtree(d, ignore_errors=True)


def tools(ctx: Ctx) -> dict[str, list[str]]:
    t = {"fever": [str(ctx.fever), "run"]}
    if ctx.bench_python:
        t["jurigged"] = [str(ctx.bench_python), "-m", "jurigged"]
    return t


def run(ctx: Ctx, sizes=SIZES, modes=MODES) -> dict:
    rounds = ctx.rounds(5, 3)
    results = []
    for n in sizes:
        for mode in modes:
            for tool, prefix in tools(ctx).items():
                log(f"reload: {tool}, {n} functions, {MODE_LABEL[mode]}, {rounds} rounds")
                r = measure(prefix, n, mode, rounds)
                r.update(tool=tool, n=n, mode=mode, command=short_cmd(prefix) + " main.py")
                lat = r["latencies_ms"]
                if r["error"]:
                    log(f"reload:   error: {r['error']}")
                elif r["missed"]:
                    log(f"reload:   missed (round {r['missed_round']}: new output not seen within {MISS_TIMEOUT:.0f} s)"
                        + (f" after {len(lat)} seen" if lat else ""))
                else:
                    log(f"reload:   median {median(lat):.1f} ms, max {max(lat):.1f} ms"
                        + (f", fever's own figure median {median(r['fever_ms']):.1f} ms" if r["fever_ms"] else ""))
                results.append(r)
    return {"rounds": rounds, "results": results, "miss_timeout_s": MISS_TIMEOUT, "settle_s": SETTLE}


def _cell(r: dict | None) -> str:
    if r is None:
        return "not run"
    if r["error"]:
        return "error"
    lat = r["latencies_ms"]
    if r["missed"]:
        return "**missed**" if not lat else f"missed in round {r['missed_round']}"
    return f"{median(lat):.1f} / {max(lat):.1f}"


def _find(res, tool, n, mode):
    for r in res["results"]:
        if r["tool"] == tool and r["n"] == n and r["mode"] == mode:
            return r
    return None


def _ok(r):
    return r is not None and not r["error"] and not r["missed"] and r["latencies_ms"]


def render(res: dict) -> str:
    sizes = sorted({r["n"] for r in res["results"]})
    modes = [m for m in MODES if any(r["mode"] == m for r in res["results"])]
    rows = []
    for mode in modes:
        for n in sizes:
            f = _find(res, "fever", n, mode)
            j = _find(res, "jurigged", n, mode)
            own = median(f["fever_ms"]) if f and f["fever_ms"] else None
            if _ok(f) and _ok(j):
                x = median(j['latencies_ms']) / median(f['latencies_ms'])
                ratio = f"{x:.1f}×" if x < 10 else f"{x:.0f}×"
            elif _ok(f) and j is not None and j["missed"]:
                ratio = "jurigged missed it"
            elif j is None:
                ratio = "jurigged not run"
            else:
                ratio = "–"
            rows.append([MODE_LABEL[mode], n, _cell(f), fmt_ms(own), _cell(j), ratio])
    out = [md_table(["save", "functions in file", "fever median / max (ms)", "fever's own figure (median)",
                     "jurigged median / max (ms)", "jurigged / fever"], rows)]
    out.append("")
    out.append(
        f"{res['rounds']} saves per cell, each changing only `target()`'s return value in a generated "
        f"`big.py`; time from just before the write until the new value is read from the child's stdout "
        f"(the script prints it in a loop with a 0.2 ms sleep, so the figure includes up to ~0.3 ms of "
        f"polling and pipe time). {res['settle_s']:.0f} s settle after the first line, "
        f"{PAUSE:.1f} s between saves. **missed** = the new value did not appear within "
        f"{res['miss_timeout_s']:.0f} s of the save. \"fever's own figure\" is the `(X.X ms)` fever "
        f"prints (save noticed → new code installed). Goals for fever (both kinds of save): "
        + ", ".join(f"≤{ms:.0f} ms at {n:,} functions" for n, ms in GOAL_MS.items())
        + ". Only the top-level definitions a save touches are indexed again (`fever_core::reindex`).")
    problems = [r for r in res["results"] if r["error"] or (r["missed"] and r["tool"] == "fever")]
    if problems:
        out.append("")
        out.append("Problems seen in this run:")
        for r in problems:
            what = r["error"] or (f"missed in round {r['missed_round']}; fever's stderr after the save: "
                                  + (" | ".join(r.get("stderr_after_miss") or []) or "(nothing)"))
            out.append(f"- {r['tool']}, {r['n']} functions, {MODE_LABEL[r['mode']]}: {what[:400]}")
    samples = [r for r in res["results"] if r["tool"] == "fever" and r["reload_lines"]]
    if samples:
        s = max(samples, key=lambda r: r["n"])
        out.append("")
        out.append(f"What fever printed for one save ({s['n']} functions, {MODE_LABEL[s['mode']]}):")
        out.append("")
        out.append("```")
        out.extend(s["reload_lines"][-1] or ["(nothing)"])
        out.append("```")
    return "\n".join(out)


def summary(res: dict) -> list[list[str]]:
    out = []
    for n, goal in GOAL_MS.items():
        for mode in MODES:
            f = _find(res, "fever", n, mode)
            if f is None:
                continue
            if _ok(f):
                m = median(f["latencies_ms"])
                own = median(f["fever_ms"]) if f["fever_ms"] else None
                val = f"{m:.1f} ms median, {max(f['latencies_ms']):.1f} ms max (fever's own figure {fmt_ms(own)})"
                met = "yes" if m <= goal else "no"
            else:
                val, met = ("missed" if f["missed"] else "error"), "no"
            out.append([f"reload, 1 function changed in a {n}-function file, {MODE_LABEL[mode]}",
                        f"≤{goal:.0f} ms", val, met])
    return out
