"""Modules of a package (relative imports) and programs started with `-m`."""

import pytest

from conftest import edit, looping, write


def make_package(root):
    write(root / "pkg" / "__init__.py", "")
    write(root / "pkg" / "helpers.py", 'PREFIX = "h"\nSUFFIX = "s"\n')
    return write(root / "pkg" / "sub.py", '''
        from .helpers import PREFIX


        def func(i):
            return f"{PREFIX}1:{i}"
        ''')


def test_module_inside_a_package(fever, tmp_path, save):
    sub = make_package(tmp_path)
    write(tmp_path / "main.py", looping('''
        from pkg import sub
        from pkg.sub import func
        ''', "sub.func(i), func(i)"))
    p = fever.run("main.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) h1:\1 h1:\1$")
    edit(sub, '''
        def func(i):
            return f"{PREFIX}1:{i}"
        ''', '''
        def func(i):
            from .helpers import SUFFIX
            return f"{PREFIX}2:{i}{SUFFIX}"
        ''', save)
    p.wait_stderr(r"^fever: reloaded pkg\.sub\.func\b")
    # Both the module attribute and the name imported into __main__ run the new code.
    p.wait_stdout(r"^(\d+) h2:\1s h2:\1s$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


@pytest.mark.parametrize("module", ["app", "pkg.app"])
def test_module_run_with_dash_m(fever, tmp_path, save, module):
    make_package(tmp_path)
    path = tmp_path / (module.replace(".", "/") + ".py")
    write(path, looping('''
        from pkg.helpers import PREFIX

        def compute(i):
            return f"{PREFIX}1:{i}"
        ''', "compute(i)"))
    p = fever.run("-m", module, cwd=tmp_path)
    p.wait_stdout(r"^(\d+) h1:\1$")
    edit(path, 'return f"{PREFIX}1:{i}"', 'return f"{PREFIX}2:{i * 2}"', save)
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    new = p.wait_stdout(r"^(\d+) h2:(\d+)$")
    assert int(new[2]) == 2 * int(new[1])
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_relative_import_in_module_run_with_dash_m(fever, tmp_path):
    make_package(tmp_path)
    tool = write(tmp_path / "pkg" / "tool.py", looping('''
        from .helpers import PREFIX

        def compute(i):
            return f"{PREFIX}1:{i}"
        ''', "compute(i)"))
    p = fever.run("-m", "pkg.tool", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) h1:\1$")
    edit(tool, '''
        def compute(i):
            return f"{PREFIX}1:{i}"
        ''', '''
        def compute(i):
            from .helpers import SUFFIX
            return f"{PREFIX}2:{i}{SUFFIX}"
        ''')
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    p.wait_stdout(r"^(\d+) h2:\1s$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()
