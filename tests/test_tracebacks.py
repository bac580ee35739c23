"""Tracebacks through reloaded (and moved) code name the real file and the right lines."""

from pathlib import Path

import pytest

from conftest import line_of, looping, write

DEFS = '''
import traceback

def fail(i):
    raise ValueError(f"boom{i}")

def compute(i):
    try:
        fail(i)
    except ValueError as e:
        tb = traceback.extract_tb(e.__traceback__)
        return f"{e} {tb[0].lineno} {tb[-1].lineno} {tb[-1].filename}"
'''

INSERTED = '''
# Three lines inserted above the function
# move it down.
def padding():
    return None

'''


@pytest.mark.parametrize("changed", [True, False], ids=["changed-and-moved", "moved-only"])
def test_traceback_lines_after_lines_inserted_above(fever, tmp_path, save, changed):
    app = write(tmp_path / "app.py", looping(DEFS, "compute(i)"))
    text = app.read_text()
    p = fever.run("app.py", cwd=tmp_path)
    first = p.wait_stdout(r"^(\d+) boom\1 (\d+) (\d+) (.+)$")
    assert (int(first[2]), int(first[3])) == (line_of(text, "        fail(i)"), line_of(text, "raise "))
    assert Path(first[4]).resolve() == app.resolve()

    new_text = text.replace("def fail(i):", INSERTED.lstrip("\n") + "def fail(i):")
    word = "boom"
    if changed:
        new_text = new_text.replace('f"boom{i}"', 'f"bang{i}"')
        word = "bang"
    save(app, new_text)
    call_line, raise_line = line_of(new_text, "        fail(i)"), line_of(new_text, "raise ")
    assert raise_line > int(first[3])
    new = p.wait_stdout(rf"^(\d+) {word}\1 (\d+) (\d+) (.+)$",
                        where=lambda m: int(m[3]) != int(first[3]))
    assert (int(new[2]), int(new[3])) == (call_line, raise_line), p.report()
    assert Path(new[4]).resolve() == app.resolve()
    if changed:
        p.wait_stderr(r"^fever: reloaded __main__\.fail\b", from_start=True)
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_uncaught_exception_from_reloaded_code(fever, tmp_path):
    """A reloaded function that raises out of the program: the traceback shows the new line."""
    app = write(tmp_path / "app.py", looping('''
        def compute(i):
            return i
        ''', "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ \d+$")
    text = app.read_text().replace("def compute(i):\n    return i", (
        "def compute(i):\n"
        "    # moved down\n"
        "    # by three lines\n"
        "    # of comments\n"
        "    raise RuntimeError(f'stop at {i}')"))
    app.write_text(text)
    p.wait_stderr(r"^RuntimeError: stop at \d+$")
    assert p.wait_exit() == 1
    assert f'  File "{app}", line {line_of(text, "raise RuntimeError")}, in compute' in p.stderr, p.report()
    assert "Traceback (most recent call last):" in p.stderr


def test_function_deep_in_a_big_module_changed_moved_and_changed_again(fever, tmp_path, save):
    """The last of 2,000 functions of an imported module: its traceback lines stay right through a
    change, lines inserted above it (a move), and another change."""
    filler = "".join(f"def f{n}(x):\n    return x + {n}\n\n" for n in range(2000))
    tail = "def fail(i):\n    raise ValueError(f'boom{i}')\n"
    big = write(tmp_path / "big.py", filler + tail)
    write(tmp_path / "app.py", looping('''
        import traceback
        import big

        def compute(i):
            try:
                big.fail(i)
            except ValueError as e:
                last = traceback.extract_tb(e.__traceback__)[-1]
                return f"{e} {last.lineno} {last.name}"
        ''', "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    text = big.read_text()
    p.wait_stdout(rf"^(\d+) boom\1 {line_of(text, 'raise ')} fail$")

    steps = [
        ("boom", "bang", "fever: reloaded big.fail"),
        ("def f0(x):", "# two lines\n# inserted\ndef f0(x):", None),
        ("bang", "bust", "fever: reloaded big.fail"),
    ]
    for old, new, reloaded in steps:
        text = text.replace(old, new)
        save(big, text)
        word = text.split("ValueError(f'")[1][:4]
        p.wait_stdout(rf"^(\d+) {word}\1 {line_of(text, 'raise ')} fail$")
        if reloaded:
            p.wait_stderr(rf"^{reloaded}\b")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_method_and_warning_lines_deep_in_a_module(fever, tmp_path, save):
    """Definitions far down a file are compiled on their own and moved to their lines: a changed
    method's traceback and the SyntaxWarning Python gives for a changed function both name the
    lines the file has."""
    filler = "".join(f"def f{n}(x):\n    return x + {n}\n\n" for n in range(300))
    tail = '''
import re


class Shapes:
    def area(self, i):
        return i


def find():
    return "none"
'''
    big = write(tmp_path / "big.py", filler + tail)
    write(tmp_path / "app.py", looping('''
        import traceback
        import big

        def compute(i):
            try:
                big.Shapes().area(i)
            except ValueError as e:
                last = traceback.extract_tb(e.__traceback__)[-1]
                return f"{big.find()} {e} {last.lineno} {last.name}"
            return f"{big.find()} fine"
        ''', "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ none fine$")
    text = (big.read_text()
            .replace("        return i\n", "        # a line more\n        raise ValueError(f'bad{i}')\n")
            .replace('return "none"', r'return re.findall("\d", "a1")[0]'))
    save(big, text)
    p.wait_stdout(rf"^(\d+) 1 bad\1 {line_of(text, 'raise ')} area$")
    warning = p.wait_stderr(r"big\.py:(\d+): SyntaxWarning: ", from_start=True)
    assert int(warning[1]) == line_of(text, "re.findall"), p.report()
    p.wait_stderr(r"^fever: reloaded big\.Shapes\.area\b", from_start=True)
    p.assert_not_restarted()
    p.assert_no_fever_errors()
