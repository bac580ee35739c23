#!/usr/bin/env python3
"""fever's Python-level benchmarks: `make bench`, or `.venv/bin/python benches/run.py [--quick] [--only NAME]`.

Creates (or reuses) `.bench-venv/` with the same Python as `.venv/` and jurigged pip-installed in
it, runs the benchmarks, stores each one's raw result in `benches/out/NAME.json` and rewrites
`benches/RESULTS.md` from those results. Progress goes to stderr. Nothing here asserts a timing.

Benchmarks (run in this order):
  overhead        `fever run` / `--no-watch` vs python and cProfile on a CPU-bound script
  dormant         `fever run` / `--no-watch` vs python beside 0, 1,000 and 10,000 empty directories
  startup         hello-world start-up of `fever run` / `--no-watch` vs python
  reload_latency  save -> new output, fever vs jurigged, 10/100/1000 functions, in-place and rename saves
  crosscheck      the shared measuring scripts (../shared/tools) on the same machine, compared
  tracing         `fever record` vs python and cProfile: ns per traced call, a dict walker, library-heavy code
  ring            the Rust ring buffer's writer throughput (`cargo bench -p fever-core --bench ring`)
  callcost        per-call costs in the tracer (Rust): reading a frame's arguments, snapshotting them
  watch           `fever watch`: save -> re-run result on examples/slow_boot with/without the call cache; cost of a hit
  check           `fever check`: recorded calls re-invoked and compared per second, loading a 100 MB trace
  persist         `fever watch --persist-cache`: start-up by --cache-size, empty and with slow_boot's entry
  check_suites    `fever check` on real test suites (toolz, more-itertools, inflection sdists): false
                  failures, calls checked, skip reasons, trace size, single-line mutations caught
  trace_size      trace bytes per call on real test suites (more-itertools, toolz), bytes per event timing only
  versions        overhead, reload latency, tracing and watch on each Python with a venv (.venv, .venv-3.X) side by side
  replay          `fever replay`: warm replay latency (slow_boot, ~1 GB), UI frame on 1 M calls, recording overhead
  show_stream     `fever show` of a big trace (300,000 calls, distinct arguments): time and peak memory per view
  attach          `fever attach`: slowdown while attached and after, control thread idle wake-ups, attach latency

A section that has no stored result in benches/out/ (e.g. after `--only tracing` in a fresh clone)
keeps its text and its Goals rows from the current RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import attach  # noqa: E402
import callcost  # noqa: E402
import check  # noqa: E402
import check_suites  # noqa: E402
import children  # noqa: E402
import crosscheck  # noqa: E402
import dormant  # noqa: E402
import overhead  # noqa: E402
import persist  # noqa: E402
import reload_latency  # noqa: E402
import replay  # noqa: E402
import show_stream  # noqa: E402
import startup  # noqa: E402
import trace_size  # noqa: E402
import tracing  # noqa: E402
import versions  # noqa: E402
import watch  # noqa: E402
from common import (BENCH_VENV, MAIN_VENV, REPO, RESULTS_MD, Ctx, ensure_bench_venv, load_result,  # noqa: E402
                    log, machine_info, md_table, now_iso, python_info, save_result)

BENCHMARKS = {m.NAME: m for m in (overhead, dormant, startup, reload_latency, crosscheck, tracing, tracing.RING,
                                   callcost, watch, persist, check, check_suites, trace_size, replay, show_stream, versions,
                                   children, attach)}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer rounds (3 instead of 5; 10 start-ups instead of 20)")
    ap.add_argument("--only", action="append", metavar="NAME",
                    help=f"run only this benchmark (repeatable, or comma-separated): {', '.join(BENCHMARKS)}")
    ap.add_argument("--python", type=Path, default=MAIN_VENV / "bin" / "python",
                    help="plain python to compare with (default: .venv/bin/python)")
    ap.add_argument("--fever", type=Path, default=MAIN_VENV / "bin" / "fever",
                    help="the fever command to measure (default: .venv/bin/fever)")
    ap.add_argument("--no-jurigged", action="store_true", help="skip jurigged (no .bench-venv, no PyPI)")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="trace_size: also record with the `fever` package in DIR (another build) for comparison")
    ap.add_argument("--no-write", action="store_true", help="do not rewrite benches/RESULTS.md")
    ap.add_argument("--render-only", action="store_true",
                    help="measure nothing: rebuild benches/RESULTS.md from the stored benches/out/*.json")
    a = ap.parse_args(argv)
    names = []
    for item in a.only or []:
        names += [s.strip() for s in item.split(",") if s.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    a.names = [n for n in BENCHMARKS if n in names] if names else list(BENCHMARKS)
    # Absolute (not resolved: a venv's python is a symlink), since benchmarks run in temp dirs.
    a.python, a.fever = a.python.absolute(), a.fever.absolute()
    a.baseline = a.baseline.absolute() if a.baseline else None
    return a


def reproduce_command(a) -> str:
    cmd = ".venv/bin/python benches/run.py"
    if a.quick:
        cmd += " --quick"
    for n in (a.names if len(a.names) < len(BENCHMARKS) else []):
        cmd += f" --only {n}"
    if a.no_jurigged:
        cmd += " --no-jurigged"
    if a.baseline:
        cmd += " --baseline DIR"
    return cmd


def previous_results_md() -> tuple[dict[str, str], list[list[str]]]:
    """The current RESULTS.md: each section's text by its heading, and the rows of its Goals table."""
    try:
        text = RESULTS_MD.read_text()
    except OSError:
        return {}, []
    sections: dict[str, str] = {}
    heading, body = None, []
    for line in text.splitlines() + ["## "]:
        if line.startswith("## "):
            if heading is not None:
                sections[heading] = "\n".join(body).strip("\n")
            heading, body = line[3:].strip(), []
        elif heading is not None:
            body.append(line)
    goals = []
    for heading, body in sections.items():
        if heading.startswith("Goals"):
            for line in body.splitlines():
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if line.startswith("|") and len(cells) == 4 and cells[0] not in ("what", "---") \
                        and not set(cells[0]) <= {"-"}:
                    goals.append(cells)
    return sections, goals


def build_results_md(machine: dict) -> str:
    loaded = {name: load_result(name) for name in BENCHMARKS}
    old_sections, old_goals = previous_results_md()
    lines = [
        "# fever benchmark results",
        "",
        "Generated by `benches/run.py`; do not edit by hand. Every number below was measured by the run",
        "named in its section (nothing is typed in), and every ratio compares commands measured in that same",
        "run. Timings are never asserted by tests.",
        "",
        "Reproduce: `make bench` (full run) or `.venv/bin/python benches/run.py --quick` (fewer rounds);",
        "`--only NAME` reruns one section (" + ", ".join(f"`{n}`" for n in BENCHMARKS) + ").",
        "",
        "## Machine",
        "",
        md_table(["", ""], [
            ["date", machine.get("date", "?")],
            ["CPUs (nproc)", f"{machine.get('nproc')} ({machine.get('usable_cpus')} usable)"],
            ["CPU", machine.get("cpu", "?")],
            ["memory", machine.get("memory", "?")],
            ["OS", machine.get("os", "?")],
            ["load average when the run started (1/5/15 min)", machine.get("loadavg_at_start", "?")],
            ["Python", f"{machine.get('python')} (`{machine.get('python_base')}`)"],
            ["fever", f"{machine.get('fever')} (commit {machine.get('commit')})"],
            ["jurigged", machine.get("jurigged")],
        ]),
        "",
    ]
    kept = [f"`{name}`" for name, mod in BENCHMARKS.items() if not loaded.get(name) and old_sections.get(mod.TITLE)]
    if kept:
        lines += [f"Kept from an earlier run, not measured by this one (their own line says when, and with "
                  f"what): {', '.join(kept)}.", ""]
    summary_rows = []
    for name, mod in BENCHMARKS.items():
        r = loaded.get(name)
        if r and r.get("data") is not None:
            try:
                summary_rows += mod.summary(r["data"])
            except Exception as e:  # a stale result from an older format: say so, do not crash
                summary_rows.append([f"{name}: cannot summarize ({e})", "", "", ""])
    if any(not loaded.get(name) for name in BENCHMARKS) and old_goals:
        # Sections measured in an earlier run whose raw results are not stored here keep their
        # Goals rows; a row this run produced again replaces the old one in place.
        # A row whose "what" came twice (two branches each kept theirs) is kept once.
        new = {row[0]: row for row in summary_rows}
        first = {}
        for row in old_goals:
            first.setdefault(row[0], row)
        merged = [new.pop(what, row) for what, row in first.items()]
        summary_rows = merged + [row for row in summary_rows if row[0] in new]
    if summary_rows:
        lines += ["## Goals (DESIGN.md, \"Bars every change keeps\")", "",
                  md_table(["what", "goal", "measured", "met?"], summary_rows), ""]
    for name, mod in BENCHMARKS.items():
        lines.append(f"## {mod.TITLE}")
        lines.append("")
        r = loaded.get(name)
        if not r:
            lines += [old_sections.get(mod.TITLE) or "Not measured yet.", ""]
            continue
        other_machine = r.get("machine", {}).get("python") != machine.get("python") or \
            r.get("machine", {}).get("nproc") != machine.get("nproc")
        lines.append(f"_Measured {r['measured']} ({'quick' if r['quick'] else 'full'} run, "
                     f"{r['duration_s']:.0f} s): `{r['command']}`"
                     + (f"; Python {r['machine'].get('python')}, {r['machine'].get('nproc')} CPUs" if other_machine else "")
                     + "_")
        lines.append("")
        if r.get("error"):
            lines += [f"**The benchmark failed:** `{r['error']}`", ""]
        if r.get("data") is not None:
            try:
                lines.append(mod.render(r["data"]))
            except Exception as e:
                lines.append(f"(cannot render this stored result: {e}; rerun `--only {name}`)")
            lines.append("")
    # Sections written by hand (e.g. a benchmark run by hand, not by this script) stay.
    titles = {mod.TITLE for mod in BENCHMARKS.values()}
    for heading, body in old_sections.items():
        if heading not in titles and heading != "Machine" and not heading.startswith("Goals"):
            lines += [f"## {heading}", "", body, ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    a = parse_args(argv)
    if not a.python.exists() or not a.fever.exists():
        log(f"error: {a.python if not a.python.exists() else a.fever} not found; run `make venv` first")
        return 2
    if a.render_only:
        stored = [r for r in (load_result(n) for n in BENCHMARKS) if r]
        if not stored:
            log("error: nothing stored in benches/out/; run the benchmarks first")
            return 2
        machine = max(stored, key=lambda r: r["measured"])["machine"]
        RESULTS_MD.write_text(build_results_md(machine))
        log(f"wrote {RESULTS_MD.relative_to(REPO)} from stored results")
        return 0
    info = python_info(a.python)
    bench_python = None
    if not a.no_jurigged and any(n in ("reload_latency", "startup", "crosscheck", "watch") for n in a.names):
        try:
            bench_python = ensure_bench_venv(Path(info["base"]), info["version"])
        except Exception as e:
            log(f"warning: no jurigged ({e}); jurigged columns will be missing")
    elif (BENCH_VENV / "bin" / "python").exists() and not a.no_jurigged:
        bench_python = BENCH_VENV / "bin" / "python"
    machine = machine_info(a.python, a.fever, bench_python)
    ctx = Ctx(quick=a.quick, python=a.python, fever=a.fever, bench_python=bench_python, machine=machine,
              baseline=a.baseline)
    try:
        load1 = os.getloadavg()[0]
        if load1 > 0.5 * (machine["nproc"] or 1):
            log(f"warning: the machine is busy (load average {load1:.2f} on {machine['nproc']} CPUs); "
                "timings will be noisy")
    except OSError:
        pass
    log(f"Python {info['version']}, {machine['nproc']} CPUs, fever {machine['fever']}, "
        f"jurigged {machine['jurigged']}; {'quick' if a.quick else 'full'} run of {', '.join(a.names)}")
    failed = []
    for name in a.names:
        mod = BENCHMARKS[name]
        log(f"== {name}: {mod.TITLE}")
        t0 = time.monotonic()
        record = {"measured": now_iso(), "quick": a.quick, "command": reproduce_command(a),
                  "machine": machine, "data": None, "error": None}
        try:
            record["data"] = mod.run(ctx)
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        except Exception as e:
            import traceback
            traceback.print_exc()
            record["error"] = f"{type(e).__name__}: {e}"
            failed.append(name)
        record["duration_s"] = time.monotonic() - t0
        save_result(name, record)
        log(f"== {name}: done in {record['duration_s']:.0f} s")
    if not a.no_write:
        RESULTS_MD.write_text(build_results_md(machine))
        log(f"wrote {RESULTS_MD.relative_to(REPO)}")
    if failed:
        log(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        common._kill_all()
        sys.exit(130)
