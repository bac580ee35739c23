"""What fever watches: the directories of the project's modules as they are imported, not the
tree under the root. A module imported late, from a package directory created after start-up,
reloads like one imported at start; a big tree of unrelated directories costs no inotify watch.
"""

import os
from pathlib import Path

import pytest

from conftest import edit, looping, write

LATE_IMPORT = '''
    import importlib
    import sys

    def late_value(i):
        importlib.invalidate_caches()
        try:
            from later.deep import mod
        except ImportError:
            return "none"
        return mod.value(i)
    '''


def inotify_watches(pid: int) -> int:
    """How many inotify watches the process `pid` holds (`/proc/PID/fdinfo`)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:  # closed meanwhile
            continue
        count += sum(1 for line in info.splitlines() if line.startswith("inotify wd:"))
    return count


def test_module_imported_late_from_a_new_directory_reloads(fever, tmp_path, save):
    write(tmp_path / "app.py", looping(LATE_IMPORT, "late_value(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ none$")

    # A new package directory, two deep, with its files, appears while the program runs.
    staged = tmp_path / "staging" / "later"
    write(staged / "__init__.py", "")
    write(staged / "deep" / "__init__.py", "")
    write(staged / "deep" / "mod.py", 'def value(i):\n    return f"m1:{i}"\n')
    os.rename(staged, tmp_path / "later")
    mod = tmp_path / "later" / "deep" / "mod.py"
    p.wait_stdout(r"^(\d+) m1:\1$")

    edit(mod, 'f"m1:{i}"', 'f"m2:{i}"', save)
    p.wait_stderr(r"^fever: reloaded later\.deep\.mod\.value\b")
    p.wait_stdout(r"^(\d+) m2:\1$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


@pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="needs Linux's /proc")
def test_a_big_tree_beside_the_script_is_not_watched(fever, tmp_path, save):
    for i in range(300):
        (tmp_path / "tree" / f"d{i // 30}" / f"e{i % 30}").mkdir(parents=True)
    write(tmp_path / "pkg" / "__init__.py", "")
    helper = write(tmp_path / "pkg" / "helper.py", 'def value(i):\n    return f"h1:{i}"\n')
    write(tmp_path / "app.py", looping("from pkg.helper import value", "value(i)"))
    p = fever.run("-v", "app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ h1:\d+$")
    p.wait_stderr(r"^fever: watching the directories of .*'s modules as they are imported$",
                  from_start=True)

    # The script's directory and pkg/: not the 310 others.
    watches = inotify_watches(p.proc.pid)
    assert 1 <= watches <= 2, f"{watches} inotify watches\n{p.report()}"

    edit(helper, 'f"h1:{i}"', 'f"h2:{i}"', save)
    p.wait_stderr(r"^fever: reloaded pkg\.helper\.value\b")
    p.wait_stdout(r"^(\d+) h2:\1$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()
