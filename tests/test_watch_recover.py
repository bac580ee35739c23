"""`fever watch`: a save that makes the text valid again re-runs; a cached result whose objects'
class changed (a dataclass field added) is not answered from the cache."""

from __future__ import annotations

import pytest

from conftest import edit
from test_watch import CACHE_OPTS, start_basic
from watch_support import next_run, project, rerun, watch


def test_undoing_a_syntax_error_in_a_module_reruns(fever, tmp_path, save):
    p, _ = start_basic(fever, tmp_path)
    parsing = tmp_path / "parsing.py"
    good = parsing.read_text()
    edit(parsing, "return (name, int(value))", "return (name, int(value)", save)
    p.wait_stderr(r"^fever: error: .*parsing\.py:\d+: ")
    save(parsing, good)
    run = rerun(p)
    assert run.value("result") == "6", run.report
    assert not run.fever(r"^fever: error"), run.report


def test_undoing_a_syntax_error_in_the_script_reruns(fever, tmp_path, save):
    p, _ = start_basic(fever, tmp_path)
    app = tmp_path / "app.py"
    good = app.read_text()
    edit(app, "def summarize(rows):", "def summarize(rows)", save)
    run = next_run(p, end=None)
    assert any("SyntaxError" in line for line in run.err), run.report
    save(app, good)
    run = rerun(p)
    assert run.value("result") == "6", run.report
    assert not any("SyntaxError" in line for line in run.err), run.report


MODELS = """
from dataclasses import dataclass, field


@dataclass
class Rec:
    name: str
"""

LOADER = """
import time

from models import Rec


def slow_load():
    time.sleep(0.25)
    print("ran slow_load", flush=True)
    return [Rec("a"), Rec("b")]
"""

APP = """
from loader import slow_load

recs = slow_load()
print("fields:", [sorted(vars(r)) for r in recs])
print("end")
"""

NEW_FIELDS = "[['name', 'tags'], ['name', 'tags']]"


def add_field(path, save):
    save(path, path.read_text().replace(
        "    name: str\n", "    name: str\n    tags: list = field(default_factory=list)\n"))


@pytest.mark.parametrize("where", ["module", "script"])
def test_a_cached_result_of_a_changed_dataclass_runs_again(fever, tmp_path, save, where):
    if where == "module":
        project(tmp_path, {"models.py": MODELS, "loader.py": LOADER, "app.py": APP})
        changed = tmp_path / "models.py"
    else:
        script = MODELS + LOADER.replace("from models import Rec\n", "") + APP.replace(
            "from loader import slow_load\n", "")
        project(tmp_path, {"app.py": script})
        changed = tmp_path / "app.py"
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    first = next_run(p)
    assert first.ran("slow_load") == 1, first.report
    edit(tmp_path / "app.py", 'print("end")', 'print("end") if recs else None', save)
    second = rerun(p)
    assert second.ran("slow_load") == 0, second.report  # the cache works for this result
    add_field(changed, save)
    third = rerun(p)
    assert third.value("fields") == NEW_FIELDS, third.report
    assert third.ran("slow_load") == 1, third.report


def test_a_persisted_result_of_a_changed_dataclass_runs_again(fever, tmp_path):
    project(tmp_path, {"models.py": MODELS, "loader.py": LOADER, "app.py": APP})
    p = watch(fever, tmp_path, *CACHE_OPTS, "--persist-cache", "app.py")
    assert next_run(p).ran("slow_load") == 1
    p.kill()
    p = watch(fever, tmp_path, *CACHE_OPTS, "--persist-cache", "app.py")
    assert next_run(p).ran("slow_load") == 0, p.report()  # answered from the file
    p.kill()
    add_field(tmp_path / "models.py", lambda path, text: path.write_text(text))
    p = watch(fever, tmp_path, *CACHE_OPTS, "--persist-cache", "app.py")
    run = next_run(p)
    assert run.value("fields") == NEW_FIELDS, run.report
    assert run.ran("slow_load") == 1, run.report
