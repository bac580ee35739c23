"""Bad saves never hurt the program: it keeps running the old code, fever prints one clear
`fever: error:` line, and the next good save applies."""

import os
import re
import time

import pytest

from conftest import ERROR_LINE, edit, line_of, looping, save_in_place, write

COMPUTE = '''
FACTOR = 2

def compute(i):
    return f"v1:{i * FACTOR}"
'''


def start(fever, tmp_path):
    app = write(tmp_path / "app.py", looping(COMPUTE, "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ v1:\d+$")
    return app, p


def assert_old_code_keeps_running(p):
    line = p.wait_iterations(5, r"^(\d+) ")
    assert re.search(r"^(\d+) v1:(\d+)$", line.string), p.report()
    p.assert_running()


def assert_good_save_applies(p, app, good_text):
    save_in_place(app, good_text)
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    new = p.wait_stdout(r"^(\d+) v2:(\d+)$")
    assert int(new[2]) == 3 * int(new[1])
    p.assert_not_restarted()


def good(text):
    return text.replace('return f"v1:{i * FACTOR}"', 'return f"v2:{i * 3}"')


def the_one_error(p, pattern=r""):
    errors = p.fever_lines(ERROR_LINE)
    assert len(errors) == 1, p.report()
    assert re.search(pattern, errors[0]), p.report()
    assert not any("Traceback" in line for line in p.stderr), p.report()
    return errors[0]


def test_syntax_error(fever, tmp_path, save):
    app, p = start(fever, tmp_path)
    original = app.read_text()
    bad = edit(app, "def compute(i):", "def compute(i)", save)
    error = p.wait_stderr(r"^fever: error: (.*app\.py):(\d+): (.+)$")
    assert int(error[2]) == line_of(bad, "def compute(i)")
    assert "expected ':'" in error[3]
    assert_old_code_keeps_running(p)
    assert_good_save_applies(p, app, good(original))
    the_one_error(p)


def test_syntax_error_in_imported_module(fever, tmp_path):
    write(tmp_path / "pkg" / "__init__.py", "")
    sub = write(tmp_path / "pkg" / "sub.py", 'def func(i):\n    return f"s1:{i}"\n')
    write(tmp_path / "main.py", looping("from pkg.sub import func\n", "func(i)"))
    p = fever.run("main.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ s1:\d+$")
    edit(sub, 'return f"s1:{i}"', 'return f"s2:{i}" +')
    error = p.wait_stderr(r"^fever: error: (.*sub\.py):(\d+): ")
    assert error[1].endswith(os.path.join("pkg", "sub.py"))
    assert int(error[2]) == 2
    line = p.wait_iterations(5)
    assert " s1:" in line.string, p.report()
    edit(sub, 'return f"s2:{i}" +', 'return f"s2:{i}"')
    p.wait_stderr(r"^fever: reloaded pkg\.sub\.func\b")
    p.wait_stdout(r"^(\d+) s2:\1$")
    p.assert_not_restarted()
    the_one_error(p, r"sub\.py")


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00garbage\n", "def compute(i):\n    return 'caf\xe9'\n".encode("latin-1")],
    ids=["garbage", "latin-1-without-coding-cookie"],
)
def test_undecodable_bytes(fever, tmp_path, save, content):
    app, p = start(fever, tmp_path)
    original = app.read_text()
    save(app, content)
    p.wait_stderr(r"^fever: error: .*app\.py")
    assert_old_code_keeps_running(p)
    assert_good_save_applies(p, app, good(original))
    the_one_error(p, r"app\.py")


def test_half_written_file_then_the_complete_one(fever, tmp_path):
    """The editor (or a crash) saved only the first half; then the whole file is saved."""
    app, p = start(fever, tmp_path)
    complete = good(app.read_text())
    save_in_place(app, complete[: complete.index("v2:") + 2])
    p.wait_stderr(r"^fever: error: .*app\.py:\d+: ")
    assert_old_code_keeps_running(p)
    assert_good_save_applies(p, app, complete)
    the_one_error(p, r"app\.py")


def test_slow_writer(fever, tmp_path):
    """A file written in two chunks by a slow writer: whatever fever sees in between, the end
    state is the new code, and the program never stops."""
    app, p = start(fever, tmp_path)
    complete = good(app.read_text())
    middle = complete.index("v2:") + 2
    with open(app, "w") as f:
        f.write(complete[:middle])
        f.flush()
        os.fsync(f.fileno())
        time.sleep(0.3)  # the writer is slow (this does not wait for fever)
        f.write(complete[middle:])
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    new = p.wait_stdout(r"^(\d+) v2:(\d+)$")
    assert int(new[2]) == 3 * int(new[1])
    p.wait_iterations(3)
    assert p.stdout[-1].split()[1].startswith("v2:"), p.report()
    assert len(p.fever_lines(ERROR_LINE)) <= 1, p.report()
    p.assert_not_restarted()


def test_exception_while_re_executing_a_statement(fever, tmp_path, save):
    app, p = start(fever, tmp_path)
    bad = edit(app, "FACTOR = 2", "FACTOR = 1 / 0", save)
    error = p.wait_stderr(r"^fever: error: .*app\.py:(\d+): (.+)$")
    assert int(error[1]) == line_of(bad, "FACTOR = 1 / 0")
    assert "ZeroDivisionError" in error[2] or "division by zero" in error[2]
    assert_old_code_keeps_running(p)
    edit(app, "FACTOR = 1 / 0", "FACTOR = 7", save)
    p.wait_stderr(r"^fever: re-executed __main__ line \d+")
    p.wait_stdout(r"^(\d+) v1:(\d+)$", where=lambda m: int(m[2]) == 7 * int(m[1]) > 0)
    p.assert_not_restarted()
    the_one_error(p, r"app\.py")


@pytest.mark.parametrize("how", ["deleted", "renamed"])
def test_deleted_or_renamed_file(fever, tmp_path, how):
    app, p = start(fever, tmp_path)
    original = app.read_text()
    if how == "deleted":
        app.unlink()
    else:
        app.rename(tmp_path / "renamed.py")
    assert_old_code_keeps_running(p)
    p.wait_iterations(20)
    assert not any("Traceback" in line or "panicked" in line for line in p.stderr), p.report()
    assert len(p.fever_lines(ERROR_LINE)) <= 1, p.report()
    # The file comes back with a change: it applies.
    assert_good_save_applies(p, app, good(original))
