"""Changes beyond a function body: deleted functions, module-level constants, decorator lists,
default argument values."""

from conftest import edit, line_of, looping, write


def test_deleted_function(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        def compute(i):
            return f"c{i}"

        def extra():
            return "x"
        ''', 'compute(i), "extra" in globals()'))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) c\1 True$")
    edit(app, '''
        def extra():
            return "x"
        ''', "", save)
    p.wait_stderr(r"^fever: deleted __main__\.extra\b")
    p.wait_stdout(r"^(\d+) c\1 False$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_deleted_method(fever, tmp_path):
    app = write(tmp_path / "app.py", looping('''
        class Thing:
            def keep(self):
                return "k"

            def drop(self):
                return "d"

        thing = Thing()
        ''', 'thing.keep(), hasattr(thing, "drop")'))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ k True$")
    edit(app, '''
            def drop(self):
                return "d"
        ''', "")
    p.wait_stderr(r"^fever: deleted __main__\.Thing\.drop\b")
    p.wait_stdout(r"^\d+ k False$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_changed_module_level_constant(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        FACTOR = 2

        def compute(i):
            return f"f:{i * FACTOR}"
        ''', "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) f:(\d+)$", where=lambda m: int(m[2]) == 2 * int(m[1]) > 0)
    text = edit(app, "FACTOR = 2", "FACTOR = 5", save)
    reexecuted = p.wait_stderr(r"^fever: re-executed __main__ line (\d+)")
    assert int(reexecuted[1]) == line_of(text, "FACTOR = 5")
    p.wait_stdout(r"^(\d+) f:(\d+)$", where=lambda m: int(m[2]) == 5 * int(m[1]) > 0)
    # The function itself did not change: it is not reported.
    assert not p.fever_lines(r"^fever: reloaded __main__\.compute\b"), p.report()
    p.assert_not_restarted()
    p.assert_no_fever_errors()


# A new decorator list means the definition statement is executed again.
DECORATORS_CHANGED = r"^fever: redefined __main__\.compute \(decorators changed"


def test_decorator_added(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        import functools

        def doubled(fn):
            @functools.wraps(fn)
            def wrapper(*args):
                return 2 * fn(*args)
            return wrapper

        def compute(i):
            return i + 1000
        ''', "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) (\d+)$", where=lambda m: int(m[2]) == int(m[1]) + 1000)
    edit(app, "def compute(i):", "@doubled\ndef compute(i):", save)
    p.wait_stdout(r"^(\d+) (\d+)$", where=lambda m: int(m[2]) == 2 * (int(m[1]) + 1000))
    p.wait_stderr(DECORATORS_CHANGED, from_start=True)
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_decorator_removed(fever, tmp_path):
    app = write(tmp_path / "app.py", looping('''
        import functools

        def doubled(fn):
            @functools.wraps(fn)
            def wrapper(*args):
                return 2 * fn(*args)
            return wrapper

        @doubled
        def compute(i):
            return i + 1000
        ''', "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) (\d+)$", where=lambda m: int(m[2]) == 2 * (int(m[1]) + 1000))
    edit(app, "@doubled\ndef compute(i):", "def compute(i):")
    p.wait_stdout(r"^(\d+) (\d+)$", where=lambda m: int(m[2]) == int(m[1]) + 1000)
    p.wait_stderr(DECORATORS_CHANGED, from_start=True)
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_changed_default_arguments(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        def scale(x, k=1):
            return x * k

        def shift(x, *, by=0):
            return x + by
        ''', "scale(i), shift(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) \1 \1$")
    edit(app, "def scale(x, k=1):", "def scale(x, k=10):", save)
    p.wait_stderr(r"^fever: (reloaded|re-executed) __main__")
    p.wait_stdout(r"^(\d+) (\d+) \1$", where=lambda m: int(m[2]) == 10 * int(m[1]) > 0)
    edit(app, "def shift(x, *, by=0):", "def shift(x, *, by=7):", save)
    p.wait_stdout(r"^(\d+) (\d+) (\d+)$",
                  where=lambda m: int(m[2]) == 10 * int(m[1]) > 0 and int(m[3]) == int(m[1]) + 7)
    p.assert_not_restarted()
    p.assert_no_fever_errors()
