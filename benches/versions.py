"""The same benchmarks on each Python version fever supports, side by side, in one run.

For every venv with fever built for another version (`make test` makes `.venv-3.14`,
`.venv-3.15`, ...), and for `.venv/` itself, this runs the overhead, reload-latency (1000
functions), tracing and watch benchmarks against that venv's own plain python, and puts their
"Goals" rows next to each other: each ratio compares commands of one version measured in this
run, so the columns show where a newer Python makes fever slower or faster relative to that
Python, not only where the Python itself got faster. jurigged is left out here (its own columns
are in the reload section, on `.venv/`'s version).
"""

from __future__ import annotations

import re
from pathlib import Path

import overhead
import reload_latency
import tracing
import watch
from common import REPO, Ctx, log, md_table, python_info

NAME = "versions"
TITLE = "Python versions side by side: overhead, reload latency, tracing, watch"
SECTIONS = (overhead, reload_latency, tracing, watch)
# From the version `.venv/` uses on; 3.12 (also supported, and tested by `make test`) is left out
# to keep the run short.
OLDEST = (3, 13)


def venvs(main_python: Path) -> list[tuple[str, Path]]:
    """(version, venv) of `.venv/` and each `.venv-3.X/` with fever, from OLDEST on, oldest first."""
    found = {}
    for venv in [main_python.parent.parent.resolve(), *sorted(REPO.glob(".venv-3.*"))]:
        if (venv / "bin" / "fever").exists() and (venv / "bin" / "python").exists():
            version = python_info(venv / "bin" / "python")["version"]
            if tuple(int(x) for x in version.split(".")[:2]) >= OLDEST:
                found.setdefault(".".join(version.split(".")[:2]), (version, venv))
    key = lambda minor: tuple(int(x) for x in minor.split("."))  # noqa: E731
    return [found[minor] for minor in sorted(found, key=key)]


def run(ctx: Ctx) -> dict:
    out = {"versions": []}
    for version, venv in venvs(ctx.python):
        sub = Ctx(quick=ctx.quick, python=(venv / "bin" / "python").absolute(),
                  fever=(venv / "bin" / "fever").absolute(), bench_python=None, machine=ctx.machine)
        entry = {"version": version, "venv": venv.name, "sections": {}}
        for mod in SECTIONS:
            log(f"versions: Python {version} ({venv.name}): {mod.NAME}")
            try:
                data = _run(mod, sub)
                entry["sections"][mod.NAME] = {"data": data, "error": None}
            except Exception as e:  # one version's failure must not hide the others' numbers
                entry["sections"][mod.NAME] = {"data": None, "error": f"{type(e).__name__}: {e}"}
        out["versions"].append(entry)
    return out


def _run(mod, ctx: Ctx) -> dict:
    """One section for one version, trimmed to keep three versions within a few minutes each:
    reload latency on the 1000-function file only, tracing's workloads once each."""
    if mod is reload_latency:
        return mod.run(ctx, sizes=(1000,))
    if mod is tracing:
        return {"rounds": 1, "workloads": [tracing.run_workload(ctx, name, 1) for name in tracing.WORKLOADS]}
    return mod.run(ctx)


def _rows(entry: dict) -> dict[str, list[str]]:
    """`what` -> [goal, measured] from each section's Goals rows."""
    rows = {}
    for mod in SECTIONS:
        s = entry["sections"].get(mod.NAME, {})
        if s.get("data") is None:
            rows[f"{mod.NAME}: error"] = ["", s.get("error") or "not measured"]
            continue
        for what, goal, measured, _met in mod.summary(s["data"]):
            rows[what] = [goal, measured]
    return rows


def _lead_number(text: str) -> float | None:
    m = re.match(r"\s*([\d.]+)", text)
    return float(m.group(1)) if m else None


def render(res: dict) -> str:
    versions = res["versions"]
    if not versions:
        return "No venv with fever found (run `make test`, which builds one per Python version)."
    per = [_rows(v) for v in versions]
    order = []
    for rows in per:
        order += [what for what in rows if what not in order]
    header = ["what", "goal"] + [f"Python {v['version']}" for v in versions]
    table = []
    for what in order:
        goal = next((rows[what][0] for rows in per if what in rows), "")
        table.append([what, goal] + [rows.get(what, ["", "–"])[1] for rows in per])
    out = [md_table(header, table), ""]
    # The lead number of each row (a ratio, ns or ms) relative to the oldest version's.
    base = versions[0]["version"]
    changes = []
    for what in order:
        first = _lead_number(per[0].get(what, ["", ""])[1])
        if not first:
            continue
        for v, rows in zip(versions[1:], per[1:]):
            now = _lead_number(rows.get(what, ["", ""])[1])
            if now:
                changes.append(f"{what}: {now / first:.2f}× on {v['version']}")
    if changes:
        out.append(f"Lead number of each row relative to Python {base} (below 1 is better for fever): "
                   + "; ".join(changes) + ".")
        out.append("")
    out.append("Each column ran the four benchmarks against its own venv (`"
               + "`, `".join(v["venv"] for v in versions)
               + "`), with that version's plain python as the baseline; reload latency on the 1000-function "
               "file only, tracing's workloads once each, no jurigged. The sections above give the details for `.venv/`'s version.")
    return "\n".join(out)


def summary(res: dict) -> list[list[str]]:
    return []  # the Goals table stays about `.venv/`'s version; this section compares versions
