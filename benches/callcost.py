"""What one traced call costs inside the tracer, measured in Rust against an embedded CPython, on
every Python >= 3.12 found (`scripts/find-python.sh`):

  - reading the called frame's arguments from a PY_START callback, each way the C API offers
    (`fever-monitor/benches/arg_cost.rs`, `cargo bench --bench arg_cost`): the tracer uses the
    cheapest;
  - snapshotting small arguments (`fever-monitor/benches/snapshot_cost.rs`,
    `cargo bench --bench snapshot_cost`).

Their printed lines are parsed here.
"""

from __future__ import annotations

import re
import subprocess
import sys

from common import REPO, Ctx, bench_env, log, md_table, run_capture

NAME = "callcost"
TITLE = "Per-call costs inside the tracer: reading a frame's arguments, snapshotting them"

PLAIN = re.compile(r"^plain call: ([\d.]+) ns$")
METHOD = re.compile(r"^(.+): \+(-?[\d.]+) ns per call$")
SNAPSHOT = re.compile(r"^snapshot_args (.+): ([\d.]+) ns \((\d+) bytes\)$")


def pythons() -> list[str]:
    out = subprocess.run([str(REPO / "scripts/find-python.sh")], capture_output=True, text=True,
                         cwd=REPO, check=False).stdout
    return [line for line in out.split() if line]


def measure(python: str) -> dict:
    info = subprocess.run([python, "-c", "import sys, sysconfig; print('%d.%d' % sys.version_info[:2]); "
                                         "print(sys.version.split()[0]); print(sysconfig.get_config_var('LIBDIR'))"],
                          capture_output=True, text=True, check=True).stdout.split("\n")
    short, version, libdir = info[0], info[1], info[2]
    env = bench_env()
    env.update(PYO3_PYTHON=python, LD_LIBRARY_PATH=libdir,
               CARGO_TARGET_DIR=str(REPO / "target" / f"bench-py{short}"))
    stdout = ""
    for argv in (["cargo", "bench", "-p", "fever-monitor", "--bench", "arg_cost"],
                 ["cargo", "bench", "-p", "fever-monitor", "--bench", "snapshot_cost"]):
        log(f"callcost: Python {version}: {' '.join(argv)}")
        r = run_capture(argv, timeout=1800, cwd=REPO, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
        stdout += r.stdout
    res = {"python": version, "plain_ns": None, "methods": [], "snapshots": []}
    for line in stdout.splitlines():
        # With --nocapture a test's first line follows its name: `test NAME ... LINE`.
        line = re.sub(r"^test \S+ \.\.\. ", "", line.strip())
        if m := PLAIN.match(line):
            res["plain_ns"] = float(m[1])
        elif m := SNAPSHOT.match(line):
            res["snapshots"].append({"args": m[1], "ns": float(m[2]), "bytes": int(m[3])})
        elif m := METHOD.match(line):
            res["methods"].append({"method": m[1], "ns": float(m[2])})
    if not res["methods"] or not res["snapshots"]:
        raise RuntimeError(f"no measurements in the output:\n{r.stdout[-2000:]}")
    return res


def run(ctx: Ctx) -> dict:
    return {"runs": [measure(p) for p in pythons()]}


def render(res: dict) -> str:
    runs = res["runs"]
    out = []
    methods = [m["method"] for m in runs[0]["methods"]]
    rows = [[f"`{name}`" if name.startswith("Py") else name]
            + [next((f"+{m['ns']:.1f} ns" for m in run["methods"] if m["method"] == name), "–") for run in runs]
            for name in methods]
    rows.insert(0, ["the call itself, no callback"] + [f"{run['plain_ns']:.1f} ns" for run in runs])
    out += [md_table(["reading the arguments `(a, b)` in a PY_START callback"]
                     + [f"Python {run['python']}" for run in runs], rows), ""]
    out.append("Added time per call of `f(i, 'x')` with a `METH_FASTCALL` PY_START callback on `f` only "
               "(`set_local_events`), best of 7 interleaved rounds of 10⁶ calls. Materializing the frame "
               "object (`PyEval_GetFrame`) is most of the cost; `PyFrame_GetVar` with names interned once per "
               "code object is the cheapest way to read arguments, and is what the tracer does. "
               "`PyFrame_GetLocals` builds a dict (3.12) or a proxy (3.13) and is several times dearer.")
    out.append("")
    labels = [s["args"] for s in runs[0]["snapshots"]]
    rows = [[f"`{label}`"] + [next((f"{s['ns']:.1f} ns ({s['bytes']} B)" for s in run["snapshots"]
                                    if s["args"] == label), "–") for run in runs] for label in labels]
    out += [md_table(["snapshot of the arguments"] + [f"Python {run['python']}" for run in runs], rows), ""]
    out.append("`snapshot_args` with the default limits, best of 7 runs of 300,000 snapshots into a reused "
               "buffer: encoding plus the structural hash, with no user code run.")
    return "\n".join(out)


def summary(res: dict) -> list[list[str]]:
    return []


if __name__ == "__main__":
    sys.exit("run through benches/run.py --only callcost")
