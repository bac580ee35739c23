"""A child forked while its parent is in the middle of importing a module: a `multiprocessing`
worker forked by the importing thread never goes back to that import (its process ends when its
work is done), nor does a child forked by another thread (the importing thread is not copied),
so a save of the module applies in the child at once. A child of `os.fork()` at a module's top
level does run the rest of that import: a save during it waits for it to end."""

from __future__ import annotations

import time

from conftest import edit
from watch_support import project

# Pre-fork workers started inside the import of their module (a launcher imports it): they are
# forked in the middle of that import, which never ends in the top while they run.
PREFORK_AT_IMPORT = """
import multiprocessing as mp
import os
import sys
import time


def work(x):
    return x * 1


def serve():
    for i in range(3000):
        sys.stdout.write(f"{i} worker {os.getpid()} {work(2)}\\n")
        sys.stdout.flush()
        time.sleep(0.02)


workers = [mp.get_context("fork").Process(target=serve) for _ in range(2)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
"""

LAUNCHER = """
import work
"""


def test_workers_forked_during_the_import_of_their_module_get_its_saves(fever, tmp_path):
    project(tmp_path, {"work.py": PREFORK_AT_IMPORT, "app.py": LAUNCHER})
    p = fever.run("app.py", cwd=tmp_path)
    first = p.wait_stdout(r"^\d+ worker (\d+) 2$", timeout=30)[1]
    second = p.wait_stdout(rf"^\d+ worker (?!{first} )(\d+) 2$", timeout=30)[1]
    edit(tmp_path / "work.py", "x * 1", "x * 100")
    for pid in (first, second):
        p.wait_stdout(rf"^\d+ worker {pid} 200$", timeout=30)
    p.wait_iterations(3)
    # Only the top is still importing the file (the workers are not said to be).
    assert not p.fever_lines(r"^fever: process \d+: work\.py is still being imported"), p.report()
    p.assert_no_fever_errors()


# Another thread forks while the main thread is in the middle of importing the worker's module;
# the child calls the module's function (the module's own import never ends in the top).
THREAD_FORKS = """
import os
import sys
import threading
import time
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # fork() in a multi-threaded process


def child():
    work = sys.modules["work"]
    for i in range(3000):
        sys.stdout.write(f"{i} child {work.work(2)}\\n")
        sys.stdout.flush()
        time.sleep(0.02)
    os._exit(0)


def forker():
    while not hasattr(sys.modules.get("work"), "work"):
        time.sleep(0.01)
    if os.fork() == 0:
        child()


threading.Thread(target=forker, daemon=True).start()
import work
"""

SLOW_WORK = """
import time


def work(x):
    return x * 1


time.sleep(3000)
"""


def test_a_child_forked_by_another_thread_during_an_import_gets_its_saves(fever, tmp_path):
    project(tmp_path, {"work.py": SLOW_WORK, "app.py": THREAD_FORKS})
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ child 2$", timeout=30)
    edit(tmp_path / "work.py", "x * 1", "x * 100")
    p.wait_stdout(r"^\d+ child 200$", timeout=30)
    p.wait_iterations(3)
    assert not p.fever_lines(r"^fever: process \d+: work\.py is still being imported"), p.report()
    p.assert_no_fever_errors()


# Forks at its top level; both processes go on with the import, until the test lets them end it.
FORKS_AT_TOP = """
import os
import sys
import time

if os.fork() == 0:
    sys.stdout.write(f"forked {os.getpid()}\\n")  # one write: the processes share the pipe
    sys.stdout.flush()
deadline = time.monotonic() + 30
while not os.path.exists("go") and time.monotonic() < deadline:
    time.sleep(0.02)


def work(x):
    return x * 1
"""

LOOP = """
import os
import sys
import time

import work

for _ in range(3000):
    sys.stdout.write(f"{os.getpid()} {work.work(2)}\\n")
    sys.stdout.flush()
    time.sleep(0.01)
"""


def test_a_child_of_a_fork_at_a_module_s_top_level_applies_a_save_once_its_import_ends(
    fever, tmp_path
):
    project(tmp_path, {"work.py": FORKS_AT_TOP, "app.py": LOOP})
    p = fever.run("app.py", cwd=tmp_path)
    child = p.wait_stdout(r"^forked (\d+)$", timeout=30)[1]
    edit(tmp_path / "work.py", "x * 1", "x * 100")
    # Both go on with the import, which would run the old definitions over the save: said once
    # for every process.
    p.wait_stderr(r"^fever: work\.py is still being imported; "
                  r"the save applies once the import ends$", timeout=30)
    assert not p.fever_lines(r"^fever: (reloaded|process)"), p.report()
    (tmp_path / "go").write_text("")
    p.wait_stdout(rf"^{child} 200$", timeout=30)
    p.wait_stdout(rf"^(?!{child} )\d+ 200$", timeout=30)
    p.assert_no_fever_errors()


# Starts its workers inside its import once the test says so (a save may come before).
PREFORK_ON_GO = PREFORK_AT_IMPORT.replace(
    "workers = [",
    """print("importing", flush=True)
deadline = time.monotonic() + 30
while not os.path.exists("go") and time.monotonic() < deadline:
    time.sleep(0.02)
workers = [""",
)


def test_workers_forked_during_an_import_a_save_waits_for_get_that_save(fever, tmp_path):
    project(tmp_path, {"work.py": PREFORK_ON_GO, "app.py": LAUNCHER})
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^importing$", timeout=30)
    edit(tmp_path / "work.py", "x * 1", "x * 100")
    # The top waits for its import to end (it tells nothing): given time to notice the save.
    time.sleep(1.5)
    (tmp_path / "go").write_text("")
    first = p.wait_stdout(r"^\d+ worker (\d+) 200$", timeout=30)[1]
    # (A worker the save reaches before its target started may still say it waits: it could yet
    # go on with the import; its later reload follows at once.)
    p.wait_stdout(rf"^\d+ worker (?!{first} )\d+ 200$", timeout=30)
    p.assert_no_fever_errors()
