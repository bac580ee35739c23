"""joblib's loky backend (joblib's default, and so scikit-learn's) starts its workers with a spawn
of its own: a save reaches them like any pool's, and `fever record` records their calls."""

from __future__ import annotations

import re

import pytest

from conftest import edit
from record_support import describe, make_cli, profile_row, record, show_profile
from watch_support import project

pytest.importorskip("joblib")

WORK = """
def work(x):
    return x * 1
"""

LOOP = """
import time

from joblib import Parallel, delayed

import work

if __name__ == "__main__":
    i = 0
    while True:
        print(i, Parallel(n_jobs=2)(delayed(work.work)(x) for x in [1, 2, 3, 4, 5, 6]), flush=True)
        i += 1
        time.sleep(0.05)
"""

ONCE = """
from joblib import Parallel, delayed

import work

if __name__ == "__main__":
    print(sum(Parallel(n_jobs=2)(delayed(work.work)(x) for x in range(20))))
"""

OLD = re.escape("[1, 2, 3, 4, 5, 6]")
NEW = re.escape("[100, 200, 300, 400, 500, 600]")


def test_a_save_reaches_the_loky_workers(fever, tmp_path):
    project(tmp_path, {"work.py": WORK, "app.py": LOOP})
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(rf"^\d+ {OLD}$", timeout=60)
    p.wait_iterations(2)
    edit(tmp_path / "work.py", "x * 1", "x * 100")
    m = p.wait_stderr(r"^fever: reloaded work\.work \(\d+\.\d ms, (\d+) processes\)$")
    assert int(m[1]) >= 2, p.report()
    p.wait_stdout(rf"^\d+ {NEW}$")
    for _ in range(4):
        p.wait_stdout(r"^\d+ ")
        assert re.search(NEW, p.stdout[p.cursor["stdout"] - 1]), p.report()
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_record_counts_the_loky_workers_calls(tmp_path):
    project(tmp_path, {"work.py": WORK, "app.py": ONCE})
    cli = make_cli("venv")
    rec = record(cli, "app.py", cwd=tmp_path)
    assert rec.result.stdout.strip() == "190", describe(rec.result)
    assert profile_row(show_profile(cli, rec.trace), "work.work").calls == 20
