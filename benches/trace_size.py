"""Trace size and recording time on real test suites, and the size of timing-only traces.

Suites: the test suites of more-itertools 10.5.0 and toolz 1.0.0, as sdists from PyPI
(`pip download --no-binary :all:`, kept in `benches/out/sdists/`), each run as
`python -m pytest -q -p no:cacheprovider` under plain python and under `fever record` with default
snapshots; the suites also under `python -m cProfile` and `fever record --snapshots none`, the
anchors of the goals "≤1.4× python (≤1.15× with `--snapshots none`)". Timing only: `benches/workloads/tracing_fib.py 27` (635,621 calls of `fib`) under
`fever record --snapshots none --max-calls-per-function 0`.

Size per call = trace file size / the calls in fever's `fever: recorded N calls` line (as the
issue that set the goal counted them); size per event = trace size / (2 × calls) for fib (each call is a call and a return event).
With `--baseline DIR` (a directory holding a `fever` package built from another commit, e.g. a copy
of `python/fever/` with its `_native` module), the same recordings run with that fever too
(`python -m fever` with DIR first on PYTHONPATH), in the same rounds, so "before" and "after" are
measured under the same load. Commands alternate within a round; best wall time of N rounds.
"""

from __future__ import annotations

import os
import re
import tarfile
import tempfile
from pathlib import Path

from common import BENCHES, OUT, Ctx, fmt_ratio, fmt_s, log, md_table, run_capture, time_process

NAME = "trace_size"
TITLE = "Trace size and recording time on real test suites"
GOAL_PER_CALL = 200  # bytes per recorded call on a test suite, default snapshots
GOAL_PER_EVENT = 8  # bytes per event, timing only
SUITES = {"more-itertools": "10.5.0", "toolz": "1.0.0"}
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
RECORDED = re.compile(r"fever: recorded ([\d,_]+) calls? of ([\d,_]+) functions? to .+ \(([^)]*)\)")
NO_SNAPSHOTS = "fever record --snapshots none"
# `fever record` on more-itertools' suite, as a multiple of python's time (issue 15).
GOAL_SUITE = 1.4
GOAL_SUITE_NO_SNAPSHOTS = 1.15
FIB = BENCHES / "workloads" / "tracing_fib.py"
FIB_N = "27"


def _is(path: Path, name: str, version: str) -> bool:
    """Whether `path` is (the sdist or the unpacked directory of) name==version."""
    def norm(s: str) -> str:
        return s.lower().replace("-", "_")
    return norm(path.name).startswith(norm(f"{name}-{version}"))


def _sdist(name: str, version: str) -> Path:
    """The unpacked sdist of name==version (downloaded once into benches/out/sdists/)."""
    cache = OUT / "sdists"
    cache.mkdir(parents=True, exist_ok=True)
    found = [p for p in cache.glob("*.tar.gz") if _is(p, name, version)]
    if not found:
        import sys
        r = run_capture([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                         f"{name}=={version}", "-d", str(cache)], timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"pip download {name}=={version} failed: {r.stderr[-500:]}")
        found = [p for p in cache.glob("*.tar.gz") if _is(p, name, version)]
    return found[0]


def _failure(round_: int, rc: int, stdout: str, stderr: str) -> str:
    """What a failed round printed: pytest's `FAILED ...` lines (the suites print them on stdout;
    they can fail on their own, e.g. more-itertools' `CallbackIterTests.test_exception` races a
    worker thread), else the tail of stderr."""
    failed = [line for line in stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    tail = "; ".join(failed) if failed else stderr.strip()[-300:]
    return f"round {round_ + 1}: exit {rc}: {tail}"


def _commands(ctx: Ctx, trace_dir: str, target: list[str], settings: list[str],
              suite: bool) -> dict[str, tuple[list[str], dict]]:
    py, fever = str(ctx.python), str(ctx.fever)
    cmds = {
        "python": ([py, *target], {}),
        "fever record": ([fever, "record", "-o", os.path.join(trace_dir, "new.trace"), *settings, *target], {}),
    }
    if suite:
        # The anchors of the suite goals: cProfile, and fever without argument snapshots.
        cmds["python -m cProfile"] = ([py, "-m", "cProfile", "-o", os.devnull, *target], {})
        cmds[NO_SNAPSHOTS] = ([fever, "record", "-o", os.path.join(trace_dir, "plain.trace"),
                               "--snapshots", "none", *target], {})
    if ctx.baseline:
        cmds["fever record (baseline)"] = (
            [py, "-m", "fever", "record", "-o", os.path.join(trace_dir, "base.trace"), *settings, *target],
            {"PYTHONPATH": str(ctx.baseline)})
    return cmds


def _measure(ctx: Ctx, label: str, cwd: Path, target: list[str], settings: list[str], rounds: int,
             suite: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="fever-bench-size-") as d:
        cmds = _commands(ctx, d, target, settings, suite)
        walls: dict[str, list[float]] = {k: [] for k in cmds}
        sizes: dict[str, int] = {}
        calls: dict[str, int] = {}
        errors: dict[str, str] = {}
        for r in range(rounds):
            order = list(cmds) if r % 2 == 0 else list(reversed(cmds))
            for name in order:
                argv, env = cmds[name]
                t = time_process(argv, cwd, timeout=900, capture=True, env_extra=env)
                trace = Path(argv[argv.index("-o") + 1]) if "-o" in argv else None
                if t.rc != 0:
                    errors[name] = _failure(r, t.rc, t.stdout, t.stderr)
                walls[name].append(t.wall)
                if trace is not None:
                    if trace.exists():
                        sizes[name] = trace.stat().st_size
                    m = RECORDED.search(t.stderr)
                    if m:
                        calls[name] = int(m.group(1).replace(",", "").replace("_", ""))
                    for leftover in Path(d).glob(trace.name + "*"):
                        leftover.unlink()
            log(f"trace_size/{label}: round {r + 1}/{rounds}: "
                + ", ".join(f"{k} {walls[k][-1]:.2f}s" for k in order))
    base = min(walls["python"])
    rows = []
    for name in cmds:
        best = min(walls[name])
        n, size = calls.get(name), sizes.get(name)
        rows.append({"name": name, "best_wall": best, "ratio": best / base if base else None,
                     "calls": n, "bytes": size,
                     "per_call": size / n if size and n else None, "error": errors.get(name)})
    return {"label": label, "rounds": rounds, "rows": rows}


def run(ctx: Ctx) -> dict:
    rounds = ctx.rounds(2, 1)
    out = {"rounds": rounds, "suites": [], "baseline": bool(ctx.baseline)}
    with tempfile.TemporaryDirectory(prefix="fever-bench-suites-") as d:
        for name, version in SUITES.items():
            with tarfile.open(_sdist(name, version)) as tar:
                tar.extractall(d, filter="data")
            root = next(p for p in Path(d).iterdir() if _is(p, name, version))
            log(f"trace_size: {name} {version}")
            res = _measure(ctx, f"{name} {version}", root, PYTEST, [], rounds, suite=True)
            res["what"] = f"`python -m pytest` of {name} {version}'s sdist"
            out["suites"].append(res)
    log("trace_size: fib, timing only")
    fib = _measure(ctx, "fib", FIB.parent, [str(FIB), FIB_N],
                   ["--snapshots", "none", "--max-calls-per-function", "0"], rounds)
    for row in fib["rows"]:
        row["per_event"] = row["per_call"] / 2 if row["per_call"] else None
    out["fib"] = fib
    return out


def _size(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _per(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f} B"


def render(res: dict) -> str:
    out = []
    header = ["suite", "command", "best wall", "wall / python", "calls", "trace", "bytes per call", "note"]
    rows = []
    for s in res["suites"]:
        for r in s["rows"]:
            bold = r["name"] == "fever record"
            rows.append([s["label"], f"`{r['name']}`", fmt_s(r["best_wall"]), fmt_ratio(r["ratio"]),
                         f"{r['calls']:,}" if r["calls"] else "–", _size(r["bytes"]),
                         f"**{_per(r['per_call'])}**" if bold else _per(r["per_call"]),
                         (r["error"] or "").replace("|", "\\|").replace("\n", " ")[:200]])
    out += [md_table(header, rows), ""]
    fib = res["fib"]
    header = ["command", "best wall", "wall / python", "calls", "trace", "bytes per event", "note"]
    rows = []
    for r in fib["rows"]:
        bold = r["name"] == "fever record"
        rows.append([f"`{r['name']}`", fmt_s(r["best_wall"]), fmt_ratio(r["ratio"]),
                     f"{r['calls']:,}" if r["calls"] else "–", _size(r["bytes"]),
                     f"**{_per(r.get('per_event'))}**" if bold else _per(r.get("per_event")),
                     (r["error"] or "").replace("|", "\\|").replace("\n", " ")[:200]])
    out += [f"Timing only (`fever record --snapshots none --max-calls-per-function 0`), "
            f"`benches/workloads/tracing_fib.py {FIB_N}`:", "", md_table(header, rows), ""]
    out.append(
        f"Best of {res['rounds']} alternating runs. Suites: `python -m pytest -q -p no:cacheprovider` in the "
        "unpacked sdist; `fever record` with default snapshots (and the default cap of 10000 recorded calls "
        "per function); `python -m cProfile -o /dev/null` and `fever record --snapshots none` for the goals' ratios. Calls = the count of fever's `recorded N calls` line (every call of the project's "
        "code, including those past a function's 10000th that are only counted); bytes per call = trace "
        "size / calls; bytes per event = trace size / (2 × calls), a call and a return per call. "
        + ("`fever record (baseline)` is the fever given with `--baseline`, run in the same rounds. "
           if res.get("baseline") else "")
        + f"Goals: ≤{GOAL_PER_CALL} bytes per call on a test suite, ≤{GOAL_PER_EVENT} bytes per event timing only.")
    return "\n".join(out)


def summary(res: dict) -> list[list[str]]:
    out = []
    per = [(s["label"], r["per_call"]) for s in res["suites"] for r in s["rows"]
           if r["name"] == "fever record" and r["per_call"]]
    if per:
        worst = max(p for _, p in per)
        out.append(["trace size per call, test suites, default snapshots", f"≤{GOAL_PER_CALL} B",
                    ", ".join(f"{label}: {p:.0f} B" for label, p in per), "yes" if worst <= GOAL_PER_CALL else "no"])
    for s in res["suites"]:
        if not s["label"].startswith("more-itertools"):
            continue
        rows = {r["name"]: r for r in s["rows"]}
        cprofile = rows.get("python -m cProfile", {}).get("ratio")
        anchor = f" (cProfile {cprofile:.2f}×)" if cprofile else ""
        for name, goal, what in (("fever record", GOAL_SUITE, "default options"),
                                  (NO_SNAPSHOTS, GOAL_SUITE_NO_SNAPSHOTS, "`--snapshots none`")):
            ratio = rows.get(name, {}).get("ratio")
            if ratio:
                out.append([f"`fever record`, {what}, {s['label']}'s test suite", f"≤{goal}× python",
                            f"{ratio:.2f}×{anchor}", "yes" if ratio <= goal else "no"])
    fib = {r["name"]: r for r in res["fib"]["rows"]}.get("fever record")
    if fib and fib.get("per_event"):
        out.append(["trace size per event, timing only (recursive fib)", f"≤{GOAL_PER_EVENT} B",
                    f"{fib['per_event']:.1f} B", "yes" if fib["per_event"] <= GOAL_PER_EVENT else "no"])
    return out
