"""Saves in progress are not edits: a file that is empty or suddenly much shorter for a moment
(an editor truncating before it writes, a formatter saving right after the editor) is read
again; the module's state survives, and a file that stays empty changes nothing."""

import re
import time

from conftest import CHANGE_LINE, write

APP = '''
import time

CALLBACKS = []


def handler(i):
    return f"v1:{i}"


def main():
    CALLBACKS.append(handler)
    deadline = time.monotonic() + 60
    i = 0
    while time.monotonic() < deadline:
        print(i, CALLBACKS[0](i), len(CALLBACKS), flush=True)
        i += 1
        time.sleep(0.02)


if __name__ == "__main__":
    main()
'''

LINE = r"^(\d+) v(\d+):\1 (\d+)$"


def start(fever, tmp_path):
    app = write(tmp_path / "app.py", APP)
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(LINE)
    return app, p


def version(n):
    return APP.replace('f"v1:{i}"', f'f"v{n}:{{i}}"').lstrip("\n")


def assert_state_kept(p):
    """The program ran on in the same process, with its module-level list untouched."""
    p.assert_not_restarted()
    lengths = {m[3] for line in p.stdout if (m := re.match(LINE, line))}
    assert lengths == {"1"}, f"CALLBACKS was reset or grew: {lengths}\n{p.report()}"
    unwanted = [line for line in p.fever_lines(CHANGE_LINE)
                if not re.match(r"^fever: reloaded __main__\.handler\b", line)]
    assert not unwanted, f"a save in progress was applied: {unwanted}\n{p.report()}"
    p.assert_no_fever_errors()


def test_emptied_then_written(fever, tmp_path, save):
    """`: > app.py; sleep 0.03; cat app.good > app.py`."""
    app, p = start(fever, tmp_path)
    save(app, "")
    time.sleep(0.03)
    save(app, version(2))
    p.wait_stderr(r"^fever: reloaded __main__\.handler\b")
    p.wait_stdout(r"^\d+ v2:")
    p.wait_iterations(5)
    assert_state_kept(p)


def test_editor_then_formatter_saves(fever, tmp_path, save):
    """Two back-to-back writes of each save (the editor's, then the formatter's), many times."""
    app, p = start(fever, tmp_path)
    for n in range(2, 17):
        save(app, version(n))
        save(app, version(n).replace("    return", "    return  "))
        p.wait_stdout(rf"^\d+ v{n}:", timeout=15)
    p.wait_iterations(5)
    assert_state_kept(p)


def test_a_file_that_stays_empty_changes_nothing(fever, tmp_path, save):
    app, p = start(fever, tmp_path)
    save(app, "")
    p.wait_stderr(r"^fever: app\.py is empty; the running code stays as it is$")
    line = p.wait_iterations(10)
    assert " v1:" in line.string, p.report()
    save(app, version(2))
    p.wait_stderr(r"^fever: reloaded __main__\.handler\b")
    p.wait_stdout(r"^\d+ v2:")
    assert_state_kept(p)


def test_a_deleted_function_still_used_stays(fever, tmp_path, save):
    app, p = start(fever, tmp_path)
    without = version(1).replace('def handler(i):\n    return f"v1:{i}"\n', "")
    save(app, without)
    p.wait_stderr(r"^fever: skipped __main__ line \d+: handler is gone from the file, "
                  r"but main\(\) still uses it; it stays")
    p.wait_iterations(5)
    p.assert_not_restarted()
    assert not p.fever_lines(r"^fever: deleted"), p.report()
    p.assert_no_fever_errors()
