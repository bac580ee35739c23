"""`fever watch`: cached results that hold the script's own classes. Each run executes the script
afresh, so its classes are new objects every run; a cached result must come back as instances of
the classes of the run that receives it (`isinstance` and `type(x) is C` hold, methods are the
current ones), never as leftovers of an earlier run."""

from __future__ import annotations

from conftest import edit
from watch_support import CACHE_OPTS, next_run, project, rerun, watch

APP = """
import collections
import time
from dataclasses import dataclass


@dataclass
class Point:
    x: int
    y: float

    def norm(self):
        return abs(self.x) + abs(self.y)


def load(n):
    time.sleep(0.25)
    print("ran load", n, flush=True)
    return {"points": [Point(i, i / 2) for i in range(n)], "kind": Point}


def load_with_queue(n):
    time.sleep(0.25)
    print("ran load_with_queue", n, flush=True)
    return [Point(n, 0.0), collections.deque([n])]


data = load(3)
print("types:", all(type(p) is Point for p in data["points"]), data["kind"] is Point)
print("norms:", [p.norm() for p in data["points"]])
queued = load_with_queue(1)
print("queued:", type(queued[0]) is Point)
print("end")
"""


def test_results_holding_the_scripts_classes_use_the_current_run_s_classes(fever, tmp_path):
    project(tmp_path, {"app.py": APP})
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    first = next_run(p)
    assert first.value("types") == "True True", first.report
    assert first.value("norms") == "[0.0, 1.5, 3.0]", first.report

    # A method of the script's class changed: the cached points are instances of the new class.
    edit(tmp_path / "app.py", "return abs(self.x) + abs(self.y)", "return abs(self.x) * 10")
    run = rerun(p)
    assert run.ran("load") == 0, run.report
    assert run.value("types") == "True True", run.report
    assert run.value("norms") == "[0, 10, 20]", run.report
    # A deque (recorded by its reduction) of the script's instances comes back with the
    # current run's classes too.
    assert run.ran("load_with_queue") == 0, run.report
    assert run.value("queued") == "True", run.report

    edit(tmp_path / "app.py", 'print("end")', 'print("end", flush=True)')
    run = rerun(p)
    assert run.ran("load") == 0, run.report
    assert run.value("types") == "True True", run.report
