"""`fever check` on the test suites of real pure-Python libraries, as a new user would use it.

For each library (its sdist, fetched with `pip download --no-binary :all:` into
benches/out/sdists/): record `python -m pytest` under `fever record` with default settings, change
nothing, run `fever check TRACE -v`. Reported: calls recorded, calls checked (passed + failed),
false failures (failed on unchanged code; the goal is 0), skipped calls with their most common
reasons, trace bytes per recorded call, and the wall time of `fever check`.

Then single-line mutations: lines of the library's own modules (not its tests) are mutated one at
a time (an operator, comparison, boolean constant or small integer changed), in a fixed
pseudo-random order, until MUTANTS mutations that the library's suite catches (pytest fails) are
found; for each, `fever check` against the unmutated recording either fails more calls than it
did on the unchanged code (caught) or not.
"""

from __future__ import annotations

import random
import re
import shutil
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

from common import OUT, Ctx, fmt_s, log, md_table, run_capture, time_process

NAME = "check_suites"
TITLE = "`fever check` on real test suites: false failures, what is checked, mutations caught"

MUTANTS = 10
MAX_TRIES = 40
SUITES = [
    # (sdist, its modules to mutate, pytest arguments)
    ("toolz==1.0.0", ["toolz/itertoolz.py", "toolz/dicttoolz.py", "toolz/functoolz.py"],
     ["toolz/tests"]),
    ("more-itertools==10.5.0", ["more_itertools/more.py", "more_itertools/recipes.py"], ["tests"]),
    ("inflection==0.5.1", ["inflection/__init__.py"], ["test_inflection.py"]),
    # test_iter_find_files strips the checkout's path with str.lstrip (a set of characters): it
    # fails wherever that path holds an "f", as this bench's temporary directory does.
    ("boltons==24.1.0", ["boltons/iterutils.py", "boltons/strutils.py", "boltons/dictutils.py"],
     ["tests", "--deselect", "tests/test_fileutils.py::test_iter_find_files"]),
]
# Edits a suite needs to run under today's pytest: (sdist, file, old text, new text).
PATCHES = [
    # pytest 8 removed the `path` argument of pytest_ignore_collect.
    ("boltons==24.1.0", "tests/conftest.py", "pytest_ignore_collect(path, config)",
     "pytest_ignore_collect(collection_path, config)"),
    ("boltons==24.1.0", "tests/conftest.py", "path.basename", "collection_path.name"),
]
PYTEST = ["-q", "-x", "-p", "no:cacheprovider"]

# (pattern, replacement) on one line: each occurrence is one candidate mutation.
OPERATORS = [
    (r" \+ ", " - "), (r" - ", " + "), (r" \* ", " // "), (r" == ", " != "), (r" != ", " == "),
    (r" < ", " <= "), (r" <= ", " < "), (r" > ", " >= "), (r" >= ", " > "), (r" and ", " or "),
    (r" or ", " and "), (r"\bTrue\b", "False"), (r"\bFalse\b", "True"), (r"(?<![\w.])1(?![\w.])", "2"),
    (r"(?<![\w.])0(?![\w.])", "1"), (r"\bis not\b", "is"), (r"\bnot in\b", "in"),
]


def _sdist(ctx: Ctx, spec: str) -> Path:
    """The unpacked sdist of `spec`, downloaded once."""
    cache = OUT / "sdists"
    cache.mkdir(parents=True, exist_ok=True)
    name, version = spec.split("==")
    stem = f"{name.replace('-', '_')}-{version}"
    for candidate in (cache / f"{name}-{version}", cache / stem):
        if candidate.is_dir():
            return candidate
    pip = ctx.python.parent / "pip"
    r = run_capture([str(pip), "download", "-q", "--no-deps", "--no-binary", ":all:", "-d",
                     str(cache), spec], timeout=300)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    archive = next(p for p in cache.glob("*.tar.gz") if p.name.lower().replace("_", "-")
                   .startswith(f"{name}-{version}".lower()))
    with tarfile.open(archive) as tar:
        tar.extractall(cache, filter="data")
    return next(c for c in (cache / f"{name}-{version}", cache / stem) if c.is_dir())


def _candidates(source: str) -> list[tuple[int, str]]:
    """(line index, mutated line) for every single-line mutation of code lines."""
    out = []
    in_doc = False
    for i, line in enumerate(source.splitlines()):
        stripped = line.strip()
        quotes = stripped.count('"""') + stripped.count("'''")
        if in_doc or quotes:
            if quotes % 2 == 1:
                in_doc = not in_doc
            continue
        if not stripped or stripped.startswith(("#", "@", "def ", "class ", "import ", "from ")):
            continue
        code = line.split("#", 1)[0]
        for pattern, replacement in OPERATORS:
            for m in re.finditer(pattern, code):
                out.append((i, line[:m.start()] + replacement + line[m.end():]))
    return out


def _suite_fails(ctx: Ctx, work: Path, args: list[str]) -> bool:
    r = time_process([str(ctx.python), "-m", "pytest", *PYTEST, *args], cwd=work, timeout=600)
    return r.rc != 0


def _check(ctx: Ctx, work: Path, trace: Path) -> tuple[tuple[int, int, int], str, float, str]:
    """(passed, failed, skipped), stderr, wall time and the first failure's first line (the call)
    of `fever check TRACE -v`."""
    t = time_process([str(ctx.fever), "check", str(trace), "-v", "--timeout", "30"], cwd=work,
                     timeout=1800, capture=True)
    summary = re.search(r"^fever: (\d+) passed, (\d+) failed, (\d+) skipped", t.stderr, re.M)
    if summary is None:
        raise RuntimeError(f"fever check said\n{t.stderr[-2000:]}")
    passed, failed, skipped = map(int, summary.groups())
    return (passed, failed, skipped), t.stderr, t.wall, next(iter(t.stdout.splitlines()), "")


def run(ctx: Ctx) -> dict:
    # Outside this repository: pytest would take fever's own pyproject.toml for the suite's.
    with tempfile.TemporaryDirectory(prefix="fever-bench-suites-") as tmp:
        return {"suites": [_suite(ctx, Path(tmp), *suite) for suite in SUITES]}


def _suite(ctx: Ctx, tmp: Path, spec: str, modules: list[str], args: list[str]) -> dict:
    src = _sdist(ctx, spec)
    work = tmp / src.name
    shutil.copytree(src, work)
    for patched, file, old, new in PATCHES:
        if patched == spec:
            text = (work / file).read_text()
            (work / file).write_text(text.replace(old, new))
    trace = work / "run.trace"
    rec = time_process([str(ctx.fever), "record", "-o", str(trace), "-m", "pytest",
                        "-q", "-p", "no:cacheprovider", *args], cwd=work, timeout=1800)
    m = re.search(r"^fever: recorded ([\d,]+) calls", rec.stderr, re.M)
    if not m:
        raise RuntimeError(f"{spec}: no recording\n{rec.stderr[-2000:]}")
    calls = int(m[1].replace(",", ""))
    (passed, failed, skipped), stderr, wall, _ = _check(ctx, work, trace)
    reasons = Counter()
    for reason in re.findall(r"^fever: skipped \S+: (.*)$", stderr, re.M):
        reason = re.sub(r"argument \w+: ", "argument X: ", reason)
        reason = re.sub(r"\b[\w.]+(\.<locals>)?\.<\w+>|[\w.]+<locals>[\w.<>]*", "…", reason)
        reasons[re.sub(r"\d+", "N", reason)[:80]] += 1
    log(f"{spec}: {calls} calls recorded, {passed} passed, {failed} failed, {skipped} skipped "
        f"in {wall:.1f} s")

    rng = random.Random(14)
    candidates = [(mod, i, line) for mod in modules
                  for i, line in _candidates((work / mod).read_text())]
    rng.shuffle(candidates)
    by_suite = by_fever = tried = 0
    missed = []
    caught = []
    for mod, i, mutated in candidates:
        if by_suite == MUTANTS or tried == MAX_TRIES:
            break
        tried += 1
        path = work / mod
        original = path.read_text()
        lines = original.splitlines(keepends=True)
        lines[i] = mutated + ("\n" if lines[i].endswith("\n") else "")
        path.write_text("".join(lines))
        try:
            if not _suite_fails(ctx, work, args):
                continue
            by_suite += 1
            # Failing calls that failed on unchanged code too do not count as catching it.
            counts, _, _, first = _check(ctx, work, trace)
            if counts[1] > failed:
                by_fever += 1
                caught.append(f"{mod}:{i + 1}: `{mutated.strip()}` → `{first[:160]}`")
            else:
                missed.append(f"{mod}:{i + 1}: {mutated.strip()}")
        finally:
            path.write_text(original)
    log(f"{spec}: mutations caught by the suite {by_suite}/{tried}, by fever check "
        f"{by_fever}/{by_suite}")
    return {
        "spec": spec, "calls": calls, "passed": passed, "failed": failed,
        "skipped": skipped, "bytes": trace.stat().st_size, "check_s": wall,
        "record_s": rec.wall, "reasons": reasons.most_common(3), "tried": tried,
        "by_suite": by_suite, "by_fever": by_fever, "missed": missed, "caught": caught,
    }


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} KB"


def render(res: dict) -> str:
    rows = []
    for s in res["suites"]:
        reasons = "; ".join(f"{n}× {r}" for r, n in s["reasons"])
        rows.append([s["spec"], f"{s['calls']:,}", f"{s['passed']:,}", f"**{s['failed']}**",
                     f"{s['skipped']:,}: {reasons}",
                     f"{_size(s['bytes'])}, {s['bytes'] / max(s['calls'], 1):,.0f} B",
                     fmt_s(s["record_s"]), fmt_s(s["check_s"])])
    mutations = []
    for s in res["suites"]:
        mutations.append([s["spec"], f"{s['by_suite']} of {s['tried']} tried",
                          f"**{s['by_fever']} of {s['by_suite']}**",
                          "; ".join(s["missed"][:3]) or "–",
                          (s.get("caught") or ["–"])[0].replace("|", "\\|")])
    return "\n".join([
        md_table(["suite (sdist)", "calls recorded", "passed", "failed (false failures)",
                  "skipped (top reasons)", "trace, per call", "record time", "check time"], rows), "",
        "`fever record -m pytest` with default settings, nothing changed, then `fever check TRACE -v`. "
        "Checked = passed + failed; by default the outermost calls the tests made into the library "
        "(not the tests, not calls made while a module was imported). Times are wall clock, on a "
        "shared machine (see the load average above).", "",
        md_table(["suite", "single-line mutations the suite catches", "caught by `fever check`",
                  "missed (first 3)", "a caught one → the first failing call"], mutations), "",
        "Mutations: one line of the library's modules changed (an operator, a comparison, a boolean "
        "or a small integer), in a fixed pseudo-random order; the suite's verdict is `pytest -x`'s, "
        "fever's is `fever check` against the recording of the unmutated code (caught: more calls fail "
        "than on the unchanged code).",
    ])


def summary(res: dict) -> list[list[str]]:
    failures = sum(s["failed"] for s in res["suites"])
    caught = sum(s["by_fever"] for s in res["suites"])
    total = sum(s["by_suite"] for s in res["suites"])
    return [["`fever check` false failures on unchanged real suites", "0", str(failures),
             "met" if failures == 0 else "not met"],
            ["single-line mutations the suites catch, caught by `fever check`", "all",
             f"{caught} of {total}", "met" if caught == total else "not met"]]


if __name__ == "__main__":
    import sys
    sys.exit("run through benches/run.py --only check_suites")
