"""A save that comes while every module running the file is still being imported (a worker
starting as the file is saved, a slow module-level statement) is applied once the import is
over (applied at once, the rest of the import would run the old definitions over it): the save's
line names the process that waits, its later reload is told through the top process once, and
`fever watch` hears of it like of any save (re-runs, drops what its call cache knew)."""

from __future__ import annotations

import re

from conftest import edit
from watch_support import CACHE_OPTS, next_run, project, watch

# Slow to import in the workers only: the top imported it before the variable was set.
WORK = """
import os
import time

if os.environ.get("FEVER_TEST_SLOW_IMPORT"):
    print("importing", os.getpid(), flush=True)
    time.sleep(4)


def work(x):
    return x * 1
"""

POOL = """
import multiprocessing as mp
import os
import time

import work


def main():
    os.environ["FEVER_TEST_SLOW_IMPORT"] = "1"
    with mp.get_context("spawn").Pool(1) as pool:
        i = 0
        while True:
            print(i, pool.map(work.work, [1, 2, 3]), flush=True)
            i += 1
            time.sleep(0.05)


if __name__ == "__main__":
    main()
"""

RELOADED = r"^fever: reloaded work\.work \("


def test_a_worker_still_importing_the_saved_file_is_named_and_its_later_reload_told_once(
    fever, tmp_path
):
    project(tmp_path, {"work.py": WORK, "app.py": POOL})
    p = fever.run("app.py", cwd=tmp_path)
    pid = p.wait_stdout(r"^importing (\d+)$", timeout=30)[1]
    edit(tmp_path / "work.py", "x * 1", "x * 100")
    p.wait_stderr(RELOADED)
    p.wait_stderr(rf"^fever: process {pid}: work\.py is still being imported; "
                  r"the save applies once the import ends$")
    # The worker runs the new code once its import ended, and the top said so once.
    p.wait_stdout(r"^\d+ \[100, 200, 300\]$", timeout=30)
    p.wait_stderr(RELOADED)
    p.wait_iterations(3)
    assert len(p.fever_lines(RELOADED)) == 2, p.report()
    assert not p.fever_lines(r"^fever: reloaded work\.work \([^,]*\)$")[1:], p.report()
    p.assert_no_fever_errors()


def test_an_error_in_a_worker_s_later_reload_names_it(fever, tmp_path):
    project(tmp_path, {"work.py": WORK, "app.py": POOL})
    p = fever.run("app.py", cwd=tmp_path)
    pid = p.wait_stdout(r"^importing (\d+)$", timeout=30)[1]
    # Rejected at once in the top, and in the worker once its import ended.
    edit(tmp_path / "work.py", "return x * 1", "return x *")
    p.wait_stderr(rf"^fever: process {pid}: work\.py is still being imported; ")
    p.wait_stderr(rf"^fever: error: process {pid}: work\.py:\d+: ", timeout=30)
    p.wait_iterations(2)


# Slow to import in the top process of `fever watch`: a save during its import is deferred.
SLOW_MODULE = """
import time

print("importing", flush=True)
time.sleep(3)
FACTOR = 2


def slow(x):
    f = FACTOR
    print("ran slow", flush=True)
    time.sleep(0.25)
    return x * f
"""

APP = """
import work

try:
    print("value:", work.slow(5))
finally:
    print("end", flush=True)
"""


def test_watch_hears_of_a_save_applied_once_its_import_ended(fever, tmp_path):
    project(tmp_path, {"work.py": SLOW_MODULE, "app.py": APP})
    p = watch(fever, tmp_path, *CACHE_OPTS, "app.py")
    p.wait_stdout(r"^importing$", timeout=30)
    edit(tmp_path / "work.py", "FACTOR = 2", "FACTOR = 3")
    p.wait_stdout(r"^end$", timeout=30)
    # Run again (as after any save during a run), with the new FACTOR, not the cached value.
    p.wait_stderr(r"^fever: re-running app\.py$", timeout=30)
    run = next_run(p)
    assert run.value("value") == "15", run.report
    assert run.ran("slow") == 1, run.report
    assert not re.search("importing", "\n".join(run.out)), run.report


# Forks in the middle of its own import, once the test says so: the child's copy of the import
# goes on with the text it read before a save that came meanwhile.
FORKING = """
import os
import sys
import time

print("importing", os.getpid(), flush=True)
deadline = time.monotonic() + 30
while not os.path.exists("go") and time.monotonic() < deadline:
    time.sleep(0.02)
if os.fork() == 0:
    sys.stdout.write(f"forked {os.getpid()}\\n")  # one write: the processes share the pipe
    sys.stdout.flush()


def work(x):
    return x * 1
"""

# The spawned worker imports the forking module itself (the top never does).
SPAWN_IMPORTER = """
import multiprocessing as mp
import os
import sys
import time


def member():
    import work

    for _ in range(3000):
        sys.stdout.write(f"{os.getpid()} {work.work(2)}\\n")
        sys.stdout.flush()
        time.sleep(0.01)


if __name__ == "__main__":
    p = mp.get_context("spawn").Process(target=member)
    p.start()
    p.join()
"""

# The top process imports the forking module.
TOP_IMPORTER = """
import os
import sys
import time

import work

for _ in range(3000):
    sys.stdout.write(f"{os.getpid()} {work.work(2)}\\n")
    sys.stdout.flush()
    time.sleep(0.01)
"""


def _both_get_the_save(p, tmp_path, pid):
    """Lets the import fork; both the parent and the child run the saved code once it ended."""
    (tmp_path / "go").write_text("")
    child = p.wait_stdout(r"^forked (\d+)$", timeout=30)[1]
    p.wait_stdout(rf"^{pid} 200$", timeout=30, from_start=True)
    p.wait_stdout(rf"^{child} 200$", timeout=30, from_start=True)
    p.assert_no_fever_errors()


def test_a_child_forked_by_a_member_during_an_import_gets_the_save_waiting_for_it(fever, tmp_path):
    project(tmp_path, {"work.py": FORKING, "app.py": SPAWN_IMPORTER})
    p = fever.run("app.py", cwd=tmp_path)
    pid = p.wait_stdout(r"^importing (\d+)$", timeout=30)[1]
    edit(tmp_path / "work.py", "x * 1", "x * 100")
    p.wait_stderr(rf"^fever: process {pid}: work\.py is still being imported; ")
    _both_get_the_save(p, tmp_path, pid)


def test_a_child_forked_by_the_top_during_an_import_gets_the_save_waiting_for_it(fever, tmp_path):
    project(tmp_path, {"work.py": FORKING, "app.py": TOP_IMPORTER})
    # -v: the top tells of its own deferred save, so the fork waits until it was noticed.
    p = fever.run("-v", "app.py", cwd=tmp_path)
    pid = p.wait_stdout(r"^importing (\d+)$", timeout=30)[1]
    edit(tmp_path / "work.py", "x * 1", "x * 100")
    p.wait_stderr(r"^fever: work\.py is still being imported; the save applies once the import "
                  r"ends$", timeout=30)
    _both_get_the_save(p, tmp_path, pid)
