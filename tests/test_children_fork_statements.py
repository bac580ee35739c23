"""A save that changes a module-level statement, under `fever run`, in a program that called
`os.fork()`: each process runs the new statement once (its module is its own), so a changed
top-level `print` shows once per process, never twice in one."""

from __future__ import annotations

import re
from collections import Counter

from conftest import edit
from watch_support import project

CONF = """
import os
os.write(1, f"conf v1 in {os.getpid()}\\n".encode())   # one write: the processes share stdout
RATE = 1
"""

APP = """
import os
import time

import conf

pid = os.fork()
role = "child" if pid == 0 else "parent"
while True:
    os.write(1, f"{role} {os.getpid()} rate {conf.RATE}\\n".encode())
    time.sleep(0.05)
"""


def test_a_changed_top_level_statement_runs_once_in_each_forked_process(fever, tmp_path):
    project(tmp_path, {"conf.py": CONF, "app.py": APP})
    p = fever.run("app.py", cwd=tmp_path)
    parent = p.wait_stdout(r"^parent (\d+) rate 1$", timeout=30)[1]
    child = p.wait_stdout(r"^child (\d+) rate 1$", timeout=30)[1]
    edit(tmp_path / "conf.py", "RATE = 1", "RATE = 2")
    edit(tmp_path / "conf.py", "conf v1", "conf v2")
    p.wait_stdout(r"^parent \d+ rate 2$")
    p.wait_stdout(r"^child \d+ rate 2$")
    # A few more lines of each: a late second run of the statement would show by now.
    for _ in range(6):
        p.wait_stdout(r"^(parent|child) \d+ rate 2$")
    printed = Counter(re.sub(r"^conf v2 in ", "", line) for line in p.stdout
                      if line.startswith("conf v2 in "))
    assert printed == {parent: 1, child: 1}, p.report()
    p.assert_no_fever_errors()
