"""Scopes: closures made before the save, nested functions, closures whose free variables change,
module globals written by reloaded code."""

from conftest import edit, looping, write


def test_closure_made_before_the_save_runs_new_code(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        def make_multiplier(n):
            def multiply(x):
                return f"m1:{x * n}"
            return multiply

        times3 = make_multiplier(3)
        ''', "times3(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ m1:\d+$")
    edit(app, 'return f"m1:{x * n}"', 'return f"m2:{x * n + 1}"', save)
    p.wait_stderr(r"^fever: reloaded __main__\.make_multiplier\b")
    # `times3` was created before the save; it keeps its cell (n == 3) and runs the new code.
    new = p.wait_stdout(r"^(\d+) m2:(\d+)$")
    assert int(new[2]) == 3 * int(new[1]) + 1
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_nested_function(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        def outer(i):
            def inner(x):
                return f"n1:{x + 1}"
            return inner(i)
        ''', "outer(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ n1:\d+$")
    edit(app, 'return f"n1:{x + 1}"', 'return f"n2:{x * 4}"', save)
    p.wait_stderr(r"^fever: reloaded __main__\.outer\b")
    new = p.wait_stdout(r"^(\d+) n2:(\d+)$")
    assert int(new[2]) == 4 * int(new[1])
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_closure_whose_free_variables_changed(fever, tmp_path, save):
    """`inner` switches from reading `a` to reading `b`: same number of free variables, different
    names. A new closure must read `b`; the one made before the save must never read `a`'s cell
    as if it were `b` (it may keep running its old code)."""
    app = write(tmp_path / "app.py", looping('''
        def make(a, b):
            def inner(x):
                return f"a:{x + a}"
            return inner

        kept = make(100, 2000)
        ''', "kept(i), make(100, 2000)(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) a:(\d+) a:\2$")
    edit(app, 'return f"a:{x + a}"', 'return f"b:{x + b}"', save)
    p.wait_stderr(r"^fever: reloaded __main__\.make\b")
    new = p.wait_stdout(r"^(\d+) (\S+) b:(\d+)$")
    assert int(new[3]) == int(new[1]) + 2000
    p.wait_iterations(3)
    for line in p.stdout:
        n, kept, fresh = line.split()
        assert kept in (f"a:{int(n) + 100}", f"b:{int(n) + 2000}"), p.report()
    p.assert_not_restarted()


def test_global_written_by_reloaded_code_is_seen_everywhere(fever, tmp_path, save):
    app = write(tmp_path / "app.py", '''
        import time

        COUNT = 0

        def bump():
            global COUNT
            COUNT += 1

        def read():
            return COUNT

        def main():
            deadline = time.monotonic() + 60
            i = 0
            while time.monotonic() < deadline:
                bump()
                print(i, read(), COUNT, flush=True)
                i += 1
                time.sleep(0.02)

        if __name__ == "__main__":
            main()
        ''')
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) (\d+) \2$", where=lambda m: int(m[2]) == int(m[1]) + 1)
    edit(app, "COUNT += 1", "COUNT += 1000", save)
    p.wait_stderr(r"^fever: reloaded __main__\.bump\b")
    # From now on each iteration adds 1000, as the unchanged read() and main() both see.
    first = p.wait_stdout(r"^(\d+) (\d+) (\d+)$", where=lambda m: int(m[2]) >= 1000)
    following = p.wait_stdout(r"^(\d+) (\d+) (\d+)$")
    assert int(following[1]) == int(first[1]) + 1
    assert int(following[2]) == int(first[2]) + 1000
    assert following[2] == following[3] and first[2] == first[3]
    p.assert_not_restarted()
    p.assert_no_fever_errors()
