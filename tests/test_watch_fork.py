"""`fever watch --persist-cache` and `os.fork()`: a forked child keeps its cache in memory and
never writes the parent's cache file, so the file stays intact for the next start."""

from __future__ import annotations

import signal

from watch_support import CACHE_OPTS, next_run, project, watch

APP = """
import os
import time


def load(n):
    time.sleep(0.25)
    print("ran load", n, flush=True)
    return list(range(n))


print("result:", load(3), flush=True)
pid = os.fork()
if pid == 0:
    load(4)  # a slow call in the child: cached in the child's memory only
    os._exit(0)
os.waitpid(pid, 0)
print("end")
"""


def test_a_forked_child_leaves_the_cache_file_alone(fever, tmp_path):
    project(tmp_path, {"app.py": APP})
    p = watch(fever, tmp_path, *CACHE_OPTS, "--persist-cache", "app.py")
    first = next_run(p)
    assert first.ran("load") == 2, first.report  # parent (3) and child (4)
    p.signal(signal.SIGTERM)
    assert p.wait_exit() == 0, p.report()
    # A new process: the parent's entry is there, the file is intact (not discarded).
    p = watch(fever, tmp_path, *CACHE_OPTS, "--persist-cache", "app.py")
    run = next_run(p)
    assert not run.fever(r"^fever: warning: .*(damaged|discarded|cannot write)"), run.report
    assert run.value("result") == "[0, 1, 2]", run.report
    assert [line for line in run.out if line.startswith("ran load")] == ["ran load 4"], run.report
    p.signal(signal.SIGTERM)
    assert p.wait_exit() == 0, p.report()
