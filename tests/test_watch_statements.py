"""`fever watch`: which edits of top-level statements invalidate cached calls.

A cached call stays valid while the code it reached is unchanged; a changed statement matters
only when it rebinds a name that code reads (a constant, an import). Editing the script's own
`print(...)` lines or its `__main__` block must keep the slow loader cached, even when the loader
is defined in the script itself.
"""

from __future__ import annotations

from conftest import edit
from watch_support import CACHE_OPTS, next_run, project, rerun, watch

SCRIPT = """
import time

SCALE = 2
LABEL = "first"


def load(n):
    time.sleep(0.25)
    print("ran load", n, flush=True)
    return [i * SCALE for i in range(n)]


if __name__ == "__main__":
    data = load(3)
    print("result:", data)
    print("label:", LABEL)
    print("end")
"""


def test_statement_edits_drop_only_what_reads_the_name(fever, tmp_path):
    project(tmp_path, {"app.py": SCRIPT})
    p = watch(fever, tmp_path, *CACHE_OPTS, "-v", "app.py")
    first = next_run(p)
    assert first.ran("load") == 1, first.report
    assert first.value("result") == "[0, 2, 4]", first.report

    # The __main__ block changed: load() reads nothing it binds differently.
    edit(tmp_path / "app.py", 'print("label:", LABEL)', 'print("label:", LABEL.upper())')
    run = rerun(p)
    assert run.ran("load") == 0, run.report
    assert run.value("label") == "FIRST", run.report

    # A constant load() does not read.
    edit(tmp_path / "app.py", 'LABEL = "first"', 'LABEL = "second"')
    run = rerun(p)
    assert run.ran("load") == 0, run.report
    assert run.value("label") == "SECOND", run.report

    # A constant load() reads: its cached result is stale.
    edit(tmp_path / "app.py", "SCALE = 2", "SCALE = 10")
    run = rerun(p)
    assert run.ran("load") == 1, run.report
    assert run.value("result") == "[0, 10, 20]", run.report

    # And the new result is cached in turn.
    edit(tmp_path / "app.py", 'LABEL = "second"', 'LABEL = "third"')
    run = rerun(p)
    assert run.ran("load") == 0, run.report
    assert run.value("result") == "[0, 10, 20]", run.report


def test_a_constant_in_an_imported_module(fever, tmp_path):
    project(
        tmp_path,
        {
            "config.py": "RATE = 3\nNAME = 'x'\n",
            "loader.py": (
                "import time\nimport config\n\n\ndef load(n):\n    time.sleep(0.25)\n"
                "    print('ran load', n, flush=True)\n    return n * config.RATE\n"
            ),
            "app.py": "from loader import load\nprint('result:', load(2))\nprint('end')\n",
        },
    )
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    first = next_run(p)
    assert first.value("result") == "6", first.report
    edit(tmp_path / "config.py", "NAME = 'x'", "NAME = 'y'")
    run = rerun(p)
    assert run.ran("load") == 0, run.report
    edit(tmp_path / "config.py", "RATE = 3", "RATE = 5")
    run = rerun(p)
    assert run.ran("load") == 1, run.report
    assert run.value("result") == "10", run.report
