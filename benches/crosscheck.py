"""Second opinion: the shared measuring scripts (../shared/tools/) on the same machine.

Runs `reload_latency.py` and `overhead.py` from the shared tools with the main venv's python and
compares what they report with this run's own benchmarks (benches/out/*.json). The tools use a
fixed, independent method (their own workload, their own polling), so the figures are not
expected to be identical, only to agree within noise; the criteria are stated in the table.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile

from common import TOOLS, Ctx, load_result, log, md_table, median, run_capture, short_cmd

NAME = "crosscheck"
TITLE = "Cross-check with the shared measuring scripts"

RE_RELOAD = re.compile(r"^'(?P<cmd>.*)' n=(?P<n>\d+): median (?P<med>[\d.]+) ms, max (?P<max>[\d.]+) ms")
RE_RELOAD_FAIL = re.compile(r"^'(?P<cmd>.*)' n=(?P<n>\d+): FAILED \((?P<why>.*?)\)")
RE_OVER = re.compile(r"^(?P<wl>\w+): '(?P<cmd>.*)' best (?P<best>[\d.]+) ms, ratio (?P<ratio>[\d.]+)")
RE_EXTRA = re.compile(r"^(?P<wl>\w+): worst ratio [\d.]+, extra (?P<extra>-?[\d.]+) ms")


def _q(argv):
    return " ".join(shlex.quote(str(a)) for a in argv)


def run(ctx: Ctx) -> dict:
    rounds = ctx.rounds(5, 3)
    tool_py = str(ctx.python)
    fever_run = _q([ctx.fever, "run"])
    fever_nw = _q([ctx.fever, "run", "--no-watch"])
    jur = _q([ctx.bench_python, "-m", "jurigged"]) if ctx.bench_python else None
    cprof = _q([ctx.python, "-m", "cProfile", "-o", "/dev/null"])
    rl, ov = str(TOOLS / "reload_latency.py"), str(TOOLS / "overhead.py")
    jobs = [
        ("reload_inplace", [tool_py, rl, "--cmd", fever_run] + (["--cmd", jur] if jur else [])
         + ["--sizes", "1000", "--rounds", str(rounds), "--write", "inplace"], 600),
        # jurigged is left out of the rename-into-place run: the tool waits 30 s for a change that
        # jurigged never sees; benches/reload_latency.py already shows that with a 5 s limit.
        ("reload_atomic", [tool_py, rl, "--cmd", fever_run, "--sizes", "1000", "--rounds", str(rounds),
                           "--write", "atomic"], 300),
        ("overhead_fib", [tool_py, ov, "--base", _q([ctx.python]), "--cmd", fever_nw, "--cmd", fever_run,
                          "--cmd", cprof, "--workload", "fib", "--runs", str(rounds)], 600),
        ("overhead_hello", [tool_py, ov, "--base", _q([ctx.python]), "--cmd", fever_nw, "--cmd", fever_run,
                            "--workload", "hello", "--runs", str(ctx.rounds(20, 10))], 300),
    ]
    out = {"jobs": []}
    if not (TOOLS / "reload_latency.py").exists():
        out["error"] = f"shared tools not found in {TOOLS}"
        return out
    # The tools leave their generated files in temp dirs: give them one that is removed afterwards.
    with tempfile.TemporaryDirectory(prefix="fever-bench-crosscheck-") as tmp:
        for name, argv, timeout in jobs:
            _run_job(out, name, argv, timeout, dict(os.environ, TMPDIR=tmp), ctx)
    return out


def _run_job(out, name, argv, timeout, env, ctx):
    log(f"crosscheck: {name}: {short_cmd(argv)}")
    try:
        r = run_capture(argv, timeout=timeout, env=env)
        text, rc = r.stdout + (("\n" + r.stderr.strip()) if r.stderr.strip() else ""), r.returncode
    except RuntimeError as e:
        text, rc = str(e), -1
    for line in text.strip().splitlines():
        log(f"crosscheck:   {line}")
    out["jobs"].append({"name": name, "argv": short_cmd(argv), "rc": rc, "output": text.strip(),
                        "fever_path": str(ctx.fever), "python_path": str(ctx.python)})


def _reload_numbers(text: str) -> dict:
    found = {}
    for line in text.splitlines():
        m = RE_RELOAD.match(line)
        if m:
            who = "jurigged" if "jurigged" in m["cmd"] else "fever"
            found[(who, int(m["n"]))] = float(m["med"])
            continue
        m = RE_RELOAD_FAIL.match(line)
        if m:
            who = "jurigged" if "jurigged" in m["cmd"] else "fever"
            found[(who, int(m["n"]))] = m["why"]
    return found


def _over_numbers(text: str, fever_path: str, python_path: str) -> dict:
    found = {}
    for line in text.splitlines():
        m = RE_OVER.match(line)
        if m:
            cmd = m["cmd"]
            if "cProfile" in cmd:
                key = "python -m cProfile"
            elif "--no-watch" in cmd:
                key = "fever run --no-watch"
            elif cmd.startswith(shlex.quote(fever_path)) or "fever" in cmd.split()[0]:
                key = "fever run"
            else:
                key = "python"
            found[key] = {"best_ms": float(m["best"]), "ratio": float(m["ratio"])}
        m = RE_EXTRA.match(line)
        if m:
            found["extra_ms"] = float(m["extra"])
    return found


def _agree_ms(a, b, rel=0.5, floor=2.0):
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return "–"
    return "yes" if abs(a - b) <= max(floor, rel * max(a, b)) else "no"


def render(res: dict) -> str:
    if res.get("error"):
        return f"Not run: {res['error']}."
    jobs = {j["name"]: j for j in res["jobs"]}
    rows = []
    ours_rl = load_result("reload_latency") or {}
    ours_ov = load_result("overhead") or {}
    ours_su = load_result("startup") or {}

    def ours_reload(tool, mode, n=1000):
        for r in (ours_rl.get("data") or {}).get("results", []):
            if r["tool"] == tool and r["mode"] == mode and r["n"] == n:
                if r["error"]:
                    return "error"
                if r["missed"]:
                    return "missed"
                return median(r["latencies_ms"])
        return None

    def fmt(x, unit=" ms", digits=1):
        if x is None:
            return "–"
        if isinstance(x, str):
            return x
        return f"{x:.{digits}f}{unit}"

    for job, mode in (("reload_inplace", "inplace"), ("reload_atomic", "rename")):
        j = jobs.get(job)
        if not j:
            continue
        nums = _reload_numbers(j["output"])
        label = "in-place" if mode == "inplace" else "rename-into-place"
        for tool in ("fever", "jurigged"):
            if (tool, 1000) not in nums:
                continue
            a, b = ours_reload(tool, mode), nums[(tool, 1000)]
            if isinstance(b, str) and "never appeared" in b:
                b = "missed"
            if a == "missed" or b == "missed":
                agree = "yes (both missed)" if a == b else "no (only one missed)"
            else:
                agree = _agree_ms(a, b) + " (within 50 % or 2 ms)"
            rows.append([f"reload, 1000 functions, {label}: {tool} median", fmt(a), fmt(b), agree])
    j = jobs.get("overhead_fib")
    if j:
        nums = _over_numbers(j["output"], j["fever_path"], j["python_path"])
        ours = {r["name"]: r for r in (ours_ov.get("data") or {}).get("rows", [])}
        base_ours = ours.get("python", {}).get("best_wall")
        base_tool = nums.get("python", {}).get("best_ms")
        for key in ("fever run --no-watch", "fever run", "python -m cProfile"):
            r_ours = ours.get(key, {})
            a = (r_ours["best_wall"] - base_ours) * 1000 if (r_ours.get("best_wall") and base_ours) else None
            b = (nums[key]["best_ms"] - base_tool) if (key in nums and base_tool) else None
            ratios = f"{fmt(r_ours.get('ratio_wall'), '×', 3)} vs {fmt(nums.get(key, {}).get('ratio'), '×', 3)}"
            if key == "python -m cProfile":
                agree = "not compared: its cost grows with the workload, and the workloads differ"
            elif a is None or b is None:
                agree = "–"
            else:
                tol = max(10.0, 0.02 * base_ours * 1000)  # the noise of a best-of-N, or the 2 % goal
                agree = ("yes" if abs(a - b) <= tol else "no") + f" (within {tol:.0f} ms)"
            rows.append([f"extra time over python on a CPU-bound script: `{key}` (ratios: {ratios})",
                         fmt(a), fmt(b), agree])
    j = jobs.get("overhead_hello")
    if j:
        nums = _over_numbers(j["output"], j["fever_path"], j["python_path"])
        ours = [r["delta_best_ms"] for r in (ours_su.get("data") or {}).get("rows", [])
                if r["name"].startswith("fever") and r["delta_best_ms"] is not None]
        a = max(ours) if ours else None
        b = nums.get("extra_ms")
        tol = None if a is None or b is None else max(5.0, 0.2 * max(a, b))
        agree = "–" if tol is None else ("yes" if abs(a - b) <= tol else "no") + f" (within {tol:.0f} ms)"
        rows.append(["start-up, worse of the two `fever run` rows, best − python", fmt(a), fmt(b), agree])
    verdicts = [r[3].split()[0] for r in rows if r[3].split()[0] in ("yes", "no")]
    if not verdicts:
        head = "Nothing to compare (one side is missing)."
    elif all(v == "yes" for v in verdicts):
        head = "The shared scripts agree with `benches/` on every compared figure."
    else:
        head = (f"The shared scripts disagree with `benches/` on {verdicts.count('no')} of {len(verdicts)} "
                "compared figures (see the rows marked no; latency figures of a few ms are noisy).")
    note = ("Dormant fever should cost a fixed start-up time and nothing per call, so the overhead rows "
            "compare the extra time over python (the shared tool's `fib` workload is much shorter than "
            "`benches/overhead.py`'s, so its ratios are not comparable; they are shown for reference).")
    out = [head, "", md_table(["figure", "benches/", "shared tool", "agree?"], rows), "", note, "",
           "Raw output of the shared scripts (run with `.venv/bin/python`):", ""]
    for j in res["jobs"]:
        out.append(f"`{j['argv']}`" + (f" (exit {j['rc']})" if j["rc"] else ""))
        out.append("")
        out.append("```")
        out.append(j["output"] or "(no output)")
        out.append("```")
        out.append("")
    return "\n".join(out).rstrip()


def summary(res: dict) -> list[list[str]]:
    return []
