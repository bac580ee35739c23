"""The monitoring engine: what each consumer costs per project call, and the choice between its
two ways of enabling events, measured in one run.

  (a) global events: every event enabled for all code; library code gets `DISABLE` from the local
      events (`PY_START`, `PY_RESUME`, `PY_RETURN`, `PY_YIELD`) at their first firing, but
      `RAISE`, `PY_UNWIND` and `PY_THROW` cannot be disabled and keep firing in library code.
  (b) local events: `PY_START` enabled globally, the other events set with `set_local_events` on
      each project code at its first call (the engine built with the `local-events` feature).

Workloads (copied into a temporary project directory, timed in-script with `perf_counter`, best of
N interleaved rounds): `fib` (recursive calls of one small function), `walk` (a recursive walker
over nested dicts) and `exceptions` (`workloads/engine_exceptions.py`: project functions whose time
goes to library code that raises and catches exceptions inside itself); `fib batches`
(`workloads/engine_batches.py`: the fastest of 300 batches of `fib(20)`, the per-call cost with
the noise of a loaded machine taken out).

Each runs under plain python, `python -m cProfile`, and two consumers of each fever build:
  record   the tracer: `fever record --snapshots none --max-calls-per-function 0` (timing only);
  watch    the call cache's bookkeeping: the first run under `fever watch` (the copy ends itself
           with SIGTERM once timed).
Builds: `--before` (e.g. main's `.venv/bin/fever`), `--global` (this tree, (a)) and `--local`
(this tree built with `--features local-events`, (b)); any may be left out.

Usage: python benches/engine.py --global .venv/bin/fever [--before /work/main/.venv/bin/fever]
       [--local .venv-local/bin/fever] [--rounds 5] [--only fib --args 30] [--consumers watch]
Prints a Markdown table: in-script seconds (best of the rounds), × plain python, ns added per
project call, and the whole process's CPU time (best) with the difference per project call
against the same consumer of the `--before` build (both pay fever's start-up; CPU time is less
disturbed than wall time on a loaded machine).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

from common import BENCHES, md_table, time_process

WORKLOADS = {
    "fib": ("tracing_fib.py", ["27"]),
    "walk": ("tracing_walk.py", ["8"]),
    "exceptions": ("engine_exceptions.py", ["2500"]),
    "fib batches": ("engine_batches.py", ["300"]),
}
CONSUMERS = ["record", "watch"]
SELF_TERM = "\nimport os, signal\nsys.stdout.flush()\nos.kill(os.getpid(), signal.SIGTERM)\n"
SECONDS = re.compile(r"in-script seconds: ([\d.]+)")
CALLS = re.compile(r"calls: (\d+)")


def commands(python: str, builds: dict[str, str], d: Path, name: str) -> dict[str, list[str]]:
    script, args = WORKLOADS[name]
    stem = name.replace(" ", "_")
    plain, watched = str(d / f"{stem}.py"), str(d / f"{stem}_watch.py")
    cmds = {
        "python": [python, plain, *args],
        "python -m cProfile": [python, "-m", "cProfile", "-o", "/dev/null", plain, *args],
    }
    for build, fever in builds.items():
        if "record" in CONSUMERS:
            cmds[f"record ({build})"] = [fever, "record", "-o", str(d / f"{stem}-{build}.trace"), "--snapshots",
                                         "none", "--max-calls-per-function", "0", plain, *args]
        if "watch" in CONSUMERS:
            cmds[f"watch ({build})"] = [fever, "watch", watched, *args]
    return cmds


def measure(python: str, builds: dict[str, str], rounds: int) -> dict:
    results = {}
    d = Path(tempfile.mkdtemp(prefix="fever-bench-engine-"))
    try:
        for name, (script, _) in WORKLOADS.items():
            text = (BENCHES / "workloads" / script).read_text()
            stem = name.replace(" ", "_")
            (d / f"{stem}.py").write_text(text)
            # The watched copy ends `fever watch` once its first run is timed.
            (d / f"{stem}_watch.py").write_text(re.sub(
                r'( *)(print\(f"in-script seconds: [^\n]*)',
                lambda m: m[1] + m[2] + SELF_TERM.replace("\n", "\n" + m[1]), text))
            cmds = commands(python, builds, d, name)
            best: dict[str, float] = {}
            cpu: dict[str, float] = {}
            calls = 0
            for r in range(rounds):
                for label, argv in cmds.items():
                    t = time_process(argv, cwd=d, timeout=600, capture=True)
                    m = SECONDS.search(t.stdout)
                    if not m:
                        raise RuntimeError(f"{label}: no timing (exit {t.rc}): {t.stderr[-500:]}")
                    calls = int(CALLS.search(t.stdout)[1])
                    best[label] = min(best.get(label, float("inf")), float(m[1]))
                    cpu[label] = min(cpu.get(label, float("inf")), t.cpu)
                print(f"{name}: round {r + 1}/{rounds} done", file=sys.stderr)
            # A batched workload times one batch: the process's CPU covers all of them.
            results[name] = {"calls": calls, "best": best, "cpu": cpu, "batched": "batches" in name}
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return results


def render(results: dict) -> str:
    out = []
    for name, res in results.items():
        base, cpu = res["best"]["python"], res["cpu"]
        rows = []
        for label, s in res["best"].items():
            added = (s - base) / res["calls"] * 1e9
            # The same consumer of another build, by whole-process CPU time (start-up alike).
            build = re.search(r"\((\w+)\)$", label)
            before = label.replace(build[0], "(before)") if build else None
            vs = (f"{(cpu[label] - cpu[before]) / res['calls'] * 1e9:+.0f} ns"
                  if before in cpu and before != label and not res.get("batched") else "–")
            rows.append([label, f"{s * 1e3:.2f} ms", f"{s / base:.2f}×", "–" if label == "python" else f"{added:+.0f} ns",
                         f"{cpu[label]:.3f} s", vs])
        out += [f"**{name}** ({res['calls']:,} project calls in the timed part)", "",
                md_table(["command", "in-script", "× python", "per project call", "process CPU",
                          "CPU per call vs before"], rows), ""]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default=sys.executable, help="plain python (the baseline)")
    ap.add_argument("--before", help="fever command of the build to compare with (e.g. main's)")
    ap.add_argument("--global", dest="global_", help="fever command of this tree (global events)")
    ap.add_argument("--local", help="fever command of this tree built with --features local-events")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", action="append", choices=list(WORKLOADS), help="run only this workload (repeatable)")
    ap.add_argument("--args", nargs="*", help="the workload's arguments instead of the default (with one --only)")
    ap.add_argument("--consumers", default="record,watch", help="which consumers to run (record, watch)")
    a = ap.parse_args()
    for name in list(WORKLOADS):
        if a.only and name not in a.only:
            del WORKLOADS[name]
        elif a.args is not None:
            WORKLOADS[name] = (WORKLOADS[name][0], a.args)
    CONSUMERS[:] = a.consumers.split(",")
    builds = {k: str(Path(v).absolute()) for k, v in (("before", a.before), ("global", a.global_),
                                                       ("local", a.local)) if v}
    print(render(measure(a.python, builds, a.rounds)))


if __name__ == "__main__":
    main()
