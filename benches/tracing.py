"""Overhead of `fever record` (tracing the project's code) against plain python and cProfile, and
the Rust ring buffer's writer throughput.

Three workloads (scripts in `benches/workloads/`, each ~0.5-1 s under plain python):
  fib     call-heavy recursion: the cost of tracing per call, in ns, = (time - python's) / calls
  walk    a recursive walker over nested dicts: project calls with container arguments
  stdlib  project functions whose time goes to json, re and sorted (with a project key function)
Each runs under python, `python -m cProfile`, and `fever record` five ways: timing only
(`--snapshots none --max-calls-per-function 0`), default snapshots with no cap
(`--max-calls-per-function 0`), counting only (`--snapshots none`, default cap), all defaults, and
`--profile-only` (counts and times in the callbacks, no events). Commands alternate within a round; the best
whole-process wall time and the best in-script time (perf_counter around the workload, printed by
the script) of N rounds are compared with python's and cProfile's of the same run. Traces go to a
temporary directory and are deleted after each run.

The `ring` section runs `cargo bench -p fever-core --bench ring` (divan) and reports records/s.
"""

from __future__ import annotations

import os
import re
import tempfile
import types
from pathlib import Path

from common import (BENCHES, REPO, Ctx, bench_env, fmt_ratio, fmt_s, log, md_table, median, run_capture,
                    short_cmd, time_process)

NAME = "tracing"
TITLE = "Overhead of `fever record` (tracing the project's code)"
WORKLOADS_DIR = BENCHES / "workloads"

# name -> (script, arguments for a full run, what it is, goal)
WORKLOADS = {
    "fib": ("tracing_fib.py", [], "recursive `fib(34)`: 18.5 M calls of one small function"),
    "walk": ("tracing_walk.py", [], "40 walks of a nested dict (6 levels × 6 keys, 56 k nodes): "
             "4.5 M calls with dict/list/str arguments"),
    "stdlib": ("tracing_stdlib.py", [], "800 rounds of json.dumps/json.loads of a 200-record document, "
               "re.findall over its text and sorted() with a project key function (206 project calls per round)"),
}
GOAL_NS_PER_CALL = 70.0  # timing only (fib), DESIGN.md: "goal ≤70 ns per call; cProfile costs ~125 ns"
GOAL_WALK = 2.0  # `fever record` (defaults) on the walker, × plain python
GOAL_STDLIB = 1.2  # `fever record` (defaults) where library code dominates, × plain python
GOAL_RING = 100e6  # records/s, one writer alone

TIMING_ONLY = "fever record --snapshots none --max-calls-per-function 0"
COUNT_ONLY = "fever record --snapshots none"
NO_CAP = "fever record --max-calls-per-function 0"
DEFAULTS = "fever record"
PROFILE_ONLY = "fever record --profile-only"


def commands(ctx: Ctx, script: str, args: list[str], trace_dir: str) -> dict[str, list[str]]:
    py, fever = str(ctx.python), str(ctx.fever)

    def trace(tag: str) -> str:
        return os.path.join(trace_dir, f"{tag}.trace")

    return {
        "python": [py, script, *args],
        "python -m cProfile": [py, "-m", "cProfile", "-o", os.devnull, script, *args],
        TIMING_ONLY: [fever, "record", "-o", trace("timing"), "--snapshots", "none",
                      "--max-calls-per-function", "0", script, *args],
        NO_CAP: [fever, "record", "-o", trace("nocap"), "--max-calls-per-function", "0", script, *args],
        COUNT_ONLY: [fever, "record", "-o", trace("counted"), "--snapshots", "none", script, *args],
        DEFAULTS: [fever, "record", "-o", trace("defaults"), script, *args],
        PROFILE_ONLY: [fever, "record", "-o", trace("profile"), "--profile-only", script, *args],
    }


RECORDED = re.compile(r"fever: recorded ([\d,_]+) calls? of ([\d,_]+) functions? to .+ \(([^)]*)\)")


def _trace_of(argv: list[str]) -> Path | None:
    return Path(argv[argv.index("-o") + 1]) if "-o" in argv and argv[1] == "record" else None


def run_workload(ctx: Ctx, name: str, rounds: int) -> dict:
    script_name, args, what = WORKLOADS[name]
    script = str(WORKLOADS_DIR / script_name)
    with tempfile.TemporaryDirectory(prefix=f"fever-bench-tracing-{name}-") as d:
        cmds = commands(ctx, script, args, d)
        walls = {k: [] for k in cmds}
        inner = {k: [] for k in cmds}
        sizes: dict[str, int] = {}
        recorded: dict[str, str] = {}
        errors: dict[str, str] = {}
        calls = None

        def once(label: str, measured: bool) -> None:
            nonlocal calls
            argv = cmds[label]
            trace = _trace_of(argv)
            t = time_process(argv, d, capture=True, timeout=600)
            try:
                if t.rc != 0:
                    errors[label] = f"exit {t.rc}: {t.stderr.strip()[-500:]}"
                    return
                m = re.search(r"^calls: (\d+)$", t.stdout, re.M)
                if m:
                    calls = int(m.group(1))
                if trace is not None:
                    if trace.exists():
                        sizes[label] = trace.stat().st_size
                    r = RECORDED.search(t.stderr)
                    if r:
                        recorded[label] = r.group(0)
                if not measured:
                    return
                walls[label].append(t.wall)
                m = re.search(r"in-script seconds: ([\d.]+)", t.stdout)
                if m:
                    inner[label].append(float(m.group(1)))
            finally:
                if trace is not None:
                    for leftover in Path(d).glob(trace.name + "*"):
                        leftover.unlink()

        for label in cmds:  # warm-up: page cache, .pyc files
            once(label, measured=False)
        for r in range(rounds):
            order = list(cmds) if r % 2 == 0 else list(reversed(cmds))
            for label in order:
                if label not in errors:
                    once(label, measured=True)
            log(f"tracing/{name}: round {r + 1}/{rounds}: " + ", ".join(
                f"{k} {walls[k][-1]:.3f}s" for k in order if walls[k]))
        left = list(Path(d).iterdir())
        if left:
            log(f"warning: files left in the trace directory: {[p.name for p in left]}")
    base_w = min(walls["python"]) if walls["python"] else None
    base_i = min(inner["python"]) if inner["python"] else None
    cp_w = min(walls["python -m cProfile"]) if walls["python -m cProfile"] else None
    cp_i = min(inner["python -m cProfile"]) if inner["python -m cProfile"] else None
    rows = []
    for label, argv in cmds.items():
        w, i = walls[label], inner[label]
        bw, bi = (min(w) if w else None), (min(i) if i else None)
        rows.append({
            "name": label,
            "argv": short_cmd(argv).replace(script, f"benches/workloads/{script_name}").replace(
                str(Path(d)), "$TMP"),
            "runs": len(w),
            "best_wall": bw,
            "median_wall": median(w),
            "best_inner": bi,
            "median_inner": median(i),
            "ratio_wall": bw / base_w if bw and base_w else None,
            "ratio_inner": bi / base_i if bi and base_i else None,
            "vs_cprofile_wall": bw / cp_w if bw and cp_w else None,
            "vs_cprofile_inner": bi / cp_i if bi and cp_i else None,
            "ns_per_call_wall": (bw - base_w) / calls * 1e9 if bw and base_w and calls else None,
            "ns_per_call_inner": (bi - base_i) / calls * 1e9 if bi and base_i and calls else None,
            "trace_bytes": sizes.get(label),
            "recorded": recorded.get(label),
            "error": errors.get(label),
        })
    return {"workload": name, "script": f"benches/workloads/{script_name}", "what": what,
            "calls": calls, "runs": rounds, "rows": rows}


def run(ctx: Ctx) -> dict:
    rounds = ctx.rounds(5, 3)
    out = {"rounds": rounds, "workloads": []}
    for name in WORKLOADS:
        log(f"tracing: workload {name}")
        out["workloads"].append(run_workload(ctx, name, rounds))
    return out


def fmt_size(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def fmt_ns(x: float | None) -> str:
    return "–" if x is None else f"{x:.0f} ns"


def render(res: dict) -> str:
    out = []
    for wl in res["workloads"]:
        out.append(f"**{wl['workload']}** (`{wl['script']}`): {wl['what']}"
                   + (f"; {wl['calls']:,} project calls counted by the script." if wl.get("calls") else "."))
        out.append("")
        per_call = wl["workload"] == "fib"
        header = ["command", "runs", "best wall", "median wall", "wall / python", "wall / cProfile",
                  "best in-script", "in-script / python", "in-script / cProfile"]
        if per_call:
            header += ["ns per call (wall)", "ns per call (in-script)"]
        header += ["trace", "note"]
        rows = []
        for r in wl["rows"]:
            bold = r["name"].startswith("fever")
            row = [f"`{r['name']}`", r["runs"], fmt_s(r["best_wall"]), fmt_s(r["median_wall"]),
                   f"**{fmt_ratio(r['ratio_wall'])}**" if bold and not per_call else fmt_ratio(r["ratio_wall"]),
                   fmt_ratio(r["vs_cprofile_wall"]), fmt_s(r["best_inner"]),
                   f"**{fmt_ratio(r['ratio_inner'])}**" if bold and not per_call else fmt_ratio(r["ratio_inner"]),
                   fmt_ratio(r["vs_cprofile_inner"])]
            if per_call:
                row += [fmt_ns(r["ns_per_call_wall"]),
                        f"**{fmt_ns(r['ns_per_call_inner'])}**" if bold else fmt_ns(r["ns_per_call_inner"])]
            note = ("error: " + r["error"].replace("\n", " ").replace("|", "\\|")[:300]) if r["error"] else ""
            row += [fmt_size(r["trace_bytes"]), note]
            rows.append(row)
        out.append(md_table(header, rows))
        out.append("")
        recorded = [f"`{r['name']}`: `{r['recorded']}`" for r in wl["rows"] if r.get("recorded")]
        if recorded:
            out.append("What fever printed: " + "; ".join(
                re.sub(r" to \S+ ", " to TRACE ", x) for x in recorded) + ".")
            out.append("")
    out.append(
        f"Best of {res['rounds']} alternating runs per command after one warm-up run each. \"wall\" is the whole "
        "process (start-up, writing the trace's end and exit included); \"in-script\" is the workload "
        "timed with `perf_counter` inside the script, i.e. the cost while the program runs. ns per call = "
        "(time − python's time) / calls of the workload. The commands: timing only = `fever record "
        "--snapshots none --max-calls-per-function 0` (every call recorded, no argument or return "
        "snapshots); `fever record --max-calls-per-function 0` = every call recorded with argument and "
        "return snapshots; `fever record --snapshots none` = no snapshots, and past the first 10000 calls of a "
        "function only counted (the cost of the callbacks themselves, nearly without writing); `fever record` = defaults (snapshots, and only the first 10000 calls of each "
        "function recorded, later ones just counted). Traces are written to a temporary directory and "
        "deleted after each run; \"trace\" is the size of the last one. Goals: timing only ≤"
        f"{GOAL_NS_PER_CALL:.0f} ns per call on `fib`; `fever record` ≤{GOAL_WALK:g}× plain python on `walk` "
        f"and ≤{GOAL_STDLIB:g}× on `stdlib`.")
    return "\n".join(out)


def _rows(res: dict, workload: str) -> dict:
    for wl in res["workloads"]:
        if wl["workload"] == workload:
            return {r["name"]: r for r in wl["rows"]}
    return {}


def _met(ok: bool | None) -> str:
    return "–" if ok is None else ("yes" if ok else "no")


def summary(res: dict) -> list[list[str]]:
    out = []
    fib = _rows(res, "fib")
    r = fib.get(TIMING_ONLY)
    if r:
        ns_i, ns_w = r["ns_per_call_inner"], r["ns_per_call_wall"]
        cp = fib.get("python -m cProfile", {}).get("ns_per_call_inner")
        val = "error" if r["error"] else f"{fmt_ns(ns_i)} in-script ({fmt_ns(ns_w)} whole process)"
        if cp and not r["error"]:
            val += f"; cProfile {fmt_ns(cp)}"
        out.append([f"`{TIMING_ONLY}`: cost per traced call (recursive fib)", f"≤{GOAL_NS_PER_CALL:.0f} ns",
                    val, _met(None if ns_i is None else ns_i <= GOAL_NS_PER_CALL)])
    for workload, goal, what in (("walk", GOAL_WALK, "recursive walker over nested dicts"),
                                 ("stdlib", GOAL_STDLIB, "project code calling json/re/sorted")):
        r = _rows(res, workload).get(DEFAULTS)
        if not r:
            continue
        ratio = r["ratio_wall"]
        val = "error" if r["error"] else f"{fmt_ratio(ratio)} whole process ({fmt_ratio(r['ratio_inner'])} in-script)"
        out.append([f"`fever record` overhead, {what}", f"≤{goal:g}×", val,
                    _met(None if ratio is None else ratio <= goal)])
    return out


# ---------------------------------------------------------------------------------------------
# The Rust ring buffer (divan), a section of its own: `--only ring`

RING_NAME = "ring"
RING_TITLE = "Ring buffer throughput (Rust, `cargo bench -p fever-core --bench ring`)"
RING_TARGET = REPO / "target" / "bench"  # its own target dir: the bench profile does not disturb others'


def _throughput(text: str) -> float | None:
    m = re.match(r"([\d.]+)\s*([KMG]?)item/s", text.strip())
    if not m:
        return None
    return float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]


def parse_divan(text: str) -> list[dict]:
    """Rows of divan's tree table: path (e.g. `writer_alone/1048576`), fastest/slowest/median/mean
    time as printed, and the item throughputs of the line below each timing line."""
    rows: list[dict] = []
    stack: list[str] = []
    cols = ("fastest", "slowest", "median", "mean")
    for line in text.splitlines():
        if "│" not in line:
            continue
        branch = re.search(r"[├╰]─ ", line)
        if branch or not line[:1].isspace() and line[:1] != "│":
            start = branch.end() if branch else 0
            depth = start // 3
            name, _, rest = line[start:].partition(" ")
            del stack[depth:]
            stack.append(name)
            cells = [c.strip() for c in rest.split("│")]
            if depth and len(cells) >= 4 and cells[0]:
                rows.append({"path": "/".join(stack[1:]), **dict(zip(cols, cells[:4])),
                             "samples": cells[4] if len(cells) > 4 else "", "throughput": {}})
            continue
        # A throughput line: item rates under the previous timing line.
        cells = [c.strip() for c in re.sub(r"^[│ ]*", "", line).split("│")]
        if rows and _throughput(cells[0]) is not None and not rows[-1]["throughput"]:
            rows[-1]["throughput"] = {c: _throughput(v) for c, v in zip(cols, cells[:4]) if _throughput(v)}
    return rows


def ring_run(ctx: Ctx) -> dict:
    env = bench_env()
    env["CARGO_TARGET_DIR"] = str(RING_TARGET)
    argv = ["cargo", "bench", "-p", "fever-core", "--bench", "ring"]
    log(f"ring: {' '.join(argv)} (CARGO_TARGET_DIR={RING_TARGET.relative_to(REPO)})")
    r = run_capture(argv, timeout=1200, cwd=REPO, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"cargo bench failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    rows = parse_divan(r.stdout)
    if not rows:
        raise RuntimeError(f"no divan rows in the output:\n{r.stdout[-2000:]}")
    for row in rows:
        log(f"ring: {row['path']}: median {row['median']}, "
            f"{(row['throughput'].get('median') or 0) / 1e6:.1f} M records/s")
    return {"command": " ".join(argv), "rows": rows, "raw": r.stdout}


def _mrec(x: float | None) -> str:
    return "–" if x is None else f"{x / 1e6:.1f} M/s"


def ring_render(res: dict) -> str:
    rows = [[f"`{r['path']}`", r["fastest"], r["median"], r["samples"],
             _mrec(r["throughput"].get("fastest")), f"**{_mrec(r['throughput'].get('median'))}**"
             if r["path"].startswith("writer_alone") else _mrec(r["throughput"].get("median"))]
            for r in res["rows"]]
    out = [md_table(["benchmark / argument", "fastest", "median", "samples", "records/s (fastest)",
                     "records/s (median)"], rows), ""]
    out.append("Each sample pushes a batch of 4096 records of 32 bytes (48 framed) into a file-backed ring "
               "(`/dev/shm`); `writer_alone/N`: one writer, no reader, ring of N bytes; "
               "`writer_with_reader/K`: a reader thread copying out records while the writer publishes its "
               "head every K records; `writer_first_lap`: a fresh 64 MiB ring, page faults included; "
               "`reader_alone`: copying out records already in the ring. Goal: ≥100 M records/s for one "
               "writer alone (median).")
    out += ["", "Raw divan output:", "", "```", res["raw"].rstrip(), "```"]
    return "\n".join(out)


def ring_summary(res: dict) -> list[list[str]]:
    alone = [r for r in res["rows"] if r["path"].startswith("writer_alone/")]
    if not alone:
        return []
    worst = min(alone, key=lambda r: r["throughput"].get("median") or 0)
    m = worst["throughput"].get("median")
    return [["ring buffer, one writer alone (median, worse ring size)", "≥100 M records/s",
             f"{_mrec(m)} (`{worst['path']}`)", _met(None if m is None else m >= GOAL_RING)]]


RING = types.SimpleNamespace(NAME=RING_NAME, TITLE=RING_TITLE, run=ring_run, render=ring_render,
                             summary=ring_summary)
