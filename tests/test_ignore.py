"""Files fever must not react to: in .venv, site-packages, __pycache__, hidden directories,
outside the root, and files that are not Python source.

Each test proves the negative the same way: after the ignored edit it makes one watched edit and
checks that exactly that one reload happened, and that the ignored module still runs its old code.
"""

import pytest

from conftest import CHANGE_LINE, ERROR_LINE, edit, looping, write

IGNORED_DIRS = {
    "venv": "proj/.venv/lib/python3.12/site-packages",
    "site-packages": "proj/env/lib/python3.12/site-packages",
    "pycache": "proj/__pycache__",
    "hidden-dir": "proj/.hidden",
    "outside-root": "outside",
}


@pytest.mark.parametrize("where", sorted(IGNORED_DIRS))
def test_ignored_module_is_not_reloaded(fever, tmp_path, save, where):
    proj = tmp_path / "proj"
    extra = tmp_path / IGNORED_DIRS[where]
    ignored = write(extra / "ignoredmod.py", 'def value():\n    return "ig1"\n')
    app = write(proj / "app.py", looping(f'''
        import sys
        sys.path.insert(0, {str(extra)!r})
        import ignoredmod

        def compute(i):
            return f"v1:{{i}}"
        ''', "compute(i), ignoredmod.value()"))
    p = fever.run("app.py", cwd=proj)
    p.wait_stdout(r"^\d+ v1:\d+ ig1$")

    edit(ignored, 'return "ig1"', 'return "ig2"', save)
    write(proj / "notes.txt", "not python\n")
    if where == "pycache":
        (extra / "ignoredmod.cpython-312.pyc").write_bytes(b"\x00not a pyc")
    edit(app, 'return f"v1:{i}"', 'return f"v2:{i}"', save)

    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    p.wait_stdout(r"^\d+ v2:\d+ ig1$")
    p.wait_iterations(5)
    assert p.stdout[-1].endswith(" ig1"), p.report()
    assert len(p.fever_lines(CHANGE_LINE)) == 1, p.report()
    assert not p.fever_lines(ERROR_LINE), p.report()
    assert not p.fever_lines("ignoredmod"), p.report()
    p.assert_not_restarted()


def test_root_option_selects_what_is_watched(fever, tmp_path):
    app = write(tmp_path / "app.py", looping('''
        from lib.helpers import value

        def compute(i):
            return "app1"
        ''', "compute(i), value(i)"))
    helpers = write(tmp_path / "lib" / "helpers.py", 'def value(i):\n    return f"lib1:{i}"\n')
    p = fever.run("--root", "lib", "app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) app1 lib1:\1$")

    # The script is outside the root now: ignored.
    edit(app, 'return "app1"', 'return "app2"')
    edit(helpers, 'return f"lib1:{i}"', 'return f"lib2:{i}"')
    p.wait_stderr(r"^fever: reloaded lib\.helpers\.value\b")
    p.wait_stdout(r"^(\d+) app1 lib2:\1$")
    p.wait_iterations(5)
    assert " app1 " in p.stdout[-1], p.report()
    assert len(p.fever_lines(CHANGE_LINE)) == 1, p.report()
    assert not p.fever_lines("__main__"), p.report()
    p.assert_not_restarted()
