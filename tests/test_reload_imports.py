"""Modules however they were imported: first by code fever re-executed (`import extra` added
while the program runs), or through a `sys.path` entry spelled with `..` under `--root`; and
`from m import NAME` copies of a module-level value that changed; a module saved while it is
being imported (in this process, or in a worker starting) ends up running the saved code."""

import os

import pytest

from conftest import edit, looping, write


def test_module_first_imported_by_a_reloaded_import(fever, tmp_path, save):
    write(tmp_path / "extra.py", 'def compute(i):\n    return f"e1:{i}"\n')
    app = write(tmp_path / "main.py", looping('''
        def value(i):
            return f"a:{i}"
        ''', "value(i)"))
    p = fever.run("main.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ a:\d+$")
    text = app.read_text().replace("import time\n", "import time\nimport extra\n", 1)
    save(app, text.replace('return f"a:{i}"', "return extra.compute(i)"))
    p.wait_stderr(r"^fever: re-executed __main__ line 2: import extra")
    p.wait_stdout(r"^(\d+) e1:\1$")
    edit(tmp_path / "extra.py", 'f"e1:{i}"', 'f"e2:{i}"', save)
    p.wait_stderr(r"^fever: reloaded extra\.compute\b")
    p.wait_stdout(r"^(\d+) e2:\1$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_root_with_a_dot_dot_path(fever, tmp_path, save):
    """`fever run --root src tools/job.py`, where job.py puts `tools/../src` on sys.path."""
    lib = write(tmp_path / "src" / "lib.py", 'def f(i):\n    return f"l1:{i}"\n')
    write(tmp_path / "tools" / "job.py", looping('''
        import os
        import sys

        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
        import lib
        ''', "lib.f(i)"))
    p = fever.run("--root", "src", os.path.join("tools", "job.py"), cwd=tmp_path)
    p.wait_stdout(r"^\d+ l1:\d+$")
    edit(lib, 'f"l1:{i}"', 'f"l2:{i}"', save)
    p.wait_stderr(r"^fever: reloaded lib\.f\b")
    p.wait_stdout(r"^(\d+) l2:\1$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_from_import_copies(fever, tmp_path, save):
    config = write(tmp_path / "config.py", "RATE = 2\nLIMIT = 5\n")
    write(tmp_path / "other.py", '''
        from config import RATE, LIMIT as CAP

        RATE = RATE * 10


        def values():
            return f"{RATE}/{CAP}"
        ''')
    write(tmp_path / "app.py", looping('''
        from config import RATE
        import other


        def values():
            return f"{RATE} {other.values()}"
        ''', "values()"))
    p = fever.run("-v", "app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ 2 20/5$")
    edit(config, "RATE = 2\nLIMIT = 5", "RATE = 3\nLIMIT = 6", save)
    p.wait_stderr(r"^fever: updated __main__\.RATE \(imported from config\.RATE\)")
    p.wait_stderr(r"^fever: left other\.RATE alone \(imported from config\.RATE, but rebound since\)",
                  from_start=True)
    p.wait_stderr(r"^fever: updated other\.CAP \(imported from config\.LIMIT\)", from_start=True)
    p.wait_stdout(r"^\d+ 3 20/6$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_rebound_copies_are_noted_only_with_v(fever, tmp_path):
    config = write(tmp_path / "config.py", "RATE = 2\n")
    write(tmp_path / "app.py", looping('''
        from config import RATE

        RATE = RATE + 100
        ''', "RATE"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ 102$")
    edit(config, "RATE = 2", "RATE = 3")
    p.wait_stderr(r"^fever: re-executed config line 1: RATE = 3")
    p.wait_iterations(5)
    assert not p.fever_lines(r"left|updated"), p.report()
    assert p.stdout[-1].endswith(" 102"), p.report()


SLOW_IMPORT = '''
import importlib.machinery
import importlib.util
import os
import sys
import time


class SlowLoader(importlib.machinery.SourceFileLoader):
    """Takes its time before it reads the module's code (a worker starting on a busy machine)."""

    def exec_module(self, module):
        print("importing", flush=True)
        time.sleep(3)
        super().exec_module(module)


class SlowFinder:
    def find_spec(self, name, path=None, target=None):
        if name != "slow":
            return None
        file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slow.py")
        return importlib.util.spec_from_file_location(name, file, loader=SlowLoader(name, file))


sys.meta_path.insert(0, SlowFinder())
import slow

for i in range(600):
    print(i, slow.value(), flush=True)
    time.sleep(0.05)
'''


def test_a_save_while_the_module_is_being_imported(fever, tmp_path, save):
    """The module is in `sys.modules` but its code has not run yet: fever says the save waits
    for the import's end, and the import runs the saved file."""
    write(tmp_path / "slow.py", 'def value():\n    return "v1"\n')
    write(tmp_path / "app.py", SLOW_IMPORT)
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^importing$")
    edit(tmp_path / "slow.py", '"v1"', '"v2"', save)
    p.wait_stderr(r"^fever: slow\.py is still being imported; the save applies once the import ends$")
    p.wait_stdout(r"^\d+ v2$")
    edit(tmp_path / "slow.py", '"v2"', '"v3"', save)
    p.wait_stderr(r"^fever: reloaded slow\.value\b")
    p.wait_stdout(r"^\d+ v3$")
    assert not [line for line in p.stdout if line.endswith(" v1")], p.report()
    p.assert_not_restarted()
    p.assert_no_fever_errors()


READ_THEN_SAVED = '''
import importlib.machinery
import importlib.util
import multiprocessing
import os
import py_compile
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class ReadThenWait(importlib.machinery.SourceFileLoader):
    """Reads the module's code, then waits (the file is saved meanwhile), then runs what it read:
    a worker starting on a busy machine while its module is saved."""

    def exec_module(self, module):
        if sys.argv[1] == "cached":
            code = self.get_code(self.name)
        else:
            code = compile(self.get_data(self.path), self.path, "exec", dont_inherit=True)
        print("read", flush=True)
        while not os.path.exists(os.path.join(HERE, "go")):
            time.sleep(0.02)
        exec(code, module.__dict__)


class Finder:
    def find_spec(self, name, path=None, target=None):
        if name != "work":
            return None
        file = os.path.join(HERE, "work.py")
        return importlib.util.spec_from_file_location(name, file, loader=ReadThenWait(name, file))


def start():
    sys.meta_path.insert(0, Finder())
    import work


def value(i):
    import work
    return work.value()


if __name__ == "__main__":
    if sys.argv[1] == "cached":
        py_compile.compile(os.path.join(HERE, "work.py"))
    import work
    with multiprocessing.get_context("spawn").Pool(1, initializer=start) as pool:
        for i in range(600):
            print(i, pool.apply(value, (i,)), flush=True)
            time.sleep(0.05)
'''


@pytest.mark.parametrize("read", ["source", "cached"])
def test_a_worker_that_read_its_module_before_a_save_runs_it_after(fever, tmp_path, read):
    """A spawned worker's import reads `work.py` (its source, or its code cached in
    `__pycache__`), the file is saved, then the import runs the code it read: the worker ends up
    running the saved code all the same."""
    write(tmp_path / "work.py", 'def value():\n    return "v1"\n')
    write(tmp_path / "app.py", READ_THEN_SAVED)
    p = fever.run("app.py", read, cwd=tmp_path)
    p.wait_stdout(r"^read$")
    edit(tmp_path / "work.py", '"v1"', '"v2"')
    p.wait_stderr(r"^fever: reloaded work\.value\b")
    (tmp_path / "go").touch()
    p.wait_stdout(r"^\d+ v2$")
    p.assert_no_fever_errors()
