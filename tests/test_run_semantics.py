"""`fever run` behaves like `python SCRIPT ARGS`: argv, __main__, sys.path[0], stdio, exit codes."""

import json
import signal

import pytest

from conftest import edit, looping, run_fever, run_python, write

SHOW = """
import json, sys
print(json.dumps({"argv": sys.argv, "name": __name__, "path0": sys.path[0]}))
"""

# Arguments after the script that look like fever's own options belong to the script.
ARGS = ["a b", "-v", "--root", "x", "-m", "y", "--no-watch", "--", "-q"]


def shown(result):
    assert result.returncode == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("where", ["same-dir", "sub-dir", "absolute"])
def test_argv_name_and_path_like_python(tmp_path, where):
    script = write(tmp_path / "sub" / "show.py", SHOW)
    cwd, path = {
        "same-dir": (script.parent, "show.py"),
        "sub-dir": (tmp_path, "sub/show.py"),
        "absolute": (tmp_path, str(script)),
    }[where]
    expected = shown(run_python(path, *ARGS, cwd=cwd))
    got = shown(run_fever("run", path, *ARGS, cwd=cwd))
    assert got == expected
    assert got["argv"] == [path, *ARGS]
    assert got["name"] == "__main__"


@pytest.mark.parametrize("module", ["show", "pkg.show"])
def test_module_argv_like_python_m(tmp_path, module):
    write(tmp_path / "show.py", SHOW)
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "show.py", SHOW)
    expected = shown(run_python("-m", module, *ARGS, cwd=tmp_path))
    got = shown(run_fever("run", "-m", module, *ARGS, cwd=tmp_path))
    assert got == expected
    assert got["argv"][1:] == ARGS
    assert got["name"] == "__main__"


def test_python_m_fever_is_the_same(tmp_path):
    write(tmp_path / "show.py", SHOW)
    expected = shown(run_python("show.py", *ARGS, cwd=tmp_path))
    assert shown(run_fever("run", "show.py", *ARGS, cwd=tmp_path, python_m=True)) == expected


def test_stdin_is_the_programs(fever, tmp_path):
    write(tmp_path / "ask.py", """
        import sys
        print("ready", flush=True)
        name = input()
        print("hello", name.upper(), flush=True)
        rest = sys.stdin.read()
        print("rest", len(rest.splitlines()), flush=True)
    """)
    p = fever.run("ask.py", cwd=tmp_path)
    p.wait_stdout("^ready$")
    p.send_stdin("world\n")
    p.wait_stdout("^hello WORLD$")
    p.send_stdin("one\ntwo\nthree\n", close=True)
    p.wait_stdout("^rest 3$")
    assert p.wait_exit() == 0


@pytest.mark.parametrize(
    "body, code, message",
    [
        ("print('done')", 0, None),
        ("sys.exit(3)", 3, None),
        ("sys.exit('bye now')", 1, "bye now"),
        ("raise SystemExit(0)", 0, None),
    ],
    ids=["falls-off-the-end", "exit-3", "exit-message", "exit-0"],
)
def test_exit_codes(tmp_path, body, code, message):
    write(tmp_path / "app.py", f"import sys\n{body}\n")
    assert run_python("app.py", cwd=tmp_path).returncode == code
    result = run_fever("run", "app.py", cwd=tmp_path)
    assert result.returncode == code, result.stderr
    if message:
        assert message in result.stderr.splitlines()


BOOM = """
def fail(n):
    raise ValueError(f"boom {n}")

print("started", flush=True)
fail(7)
"""


def program_stderr(text):
    return [line for line in text.splitlines() if not line.startswith("fever: ")]


def test_uncaught_exception_exits_1_with_traceback(tmp_path):
    script = write(tmp_path / "boom.py", BOOM)
    result = run_fever("run", "boom.py", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == "started\n"
    lines = program_stderr(result.stderr)
    assert lines[0] == "Traceback (most recent call last):", result.stderr
    assert f'  File "{script}", line 2, in fail' in lines, result.stderr
    assert lines[-1] == "ValueError: boom 7"


def test_uncaught_exception_traceback_is_pythons(tmp_path):
    write(tmp_path / "boom.py", BOOM)
    expected = run_python("boom.py", cwd=tmp_path)
    result = run_fever("run", "boom.py", cwd=tmp_path)
    assert program_stderr(result.stderr) == expected.stderr.splitlines()


def test_sigint_exits_130(fever, tmp_path):
    write(tmp_path / "app.py", looping("def compute(i):\n    return i\n", "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^3 3$")
    p.signal(signal.SIGINT)
    code = p.wait_exit()
    # Like python: KeyboardInterrupt ends the process by SIGINT, which a shell shows as 130.
    assert code in (130, -signal.SIGINT), p.report()
    assert any("KeyboardInterrupt" in line for line in p.stderr), p.report()


def test_program_can_handle_sigint_itself(fever, tmp_path):
    # Short sleeps: a signal that lands between Python's check for pending signals and the sleep's
    # system call is handled only when the sleep ends (CPython's own race; with 3.14 and 3.15 a
    # single 60 s sleep missed about one SIGINT in three, with or without fever).
    write(tmp_path / "app.py", """
        import sys, time
        try:
            print("waiting", flush=True)
            for _ in range(600):
                time.sleep(0.1)
        except KeyboardInterrupt:
            print("caught", flush=True)
            sys.exit(0)
    """)
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout("^waiting$")
    p.signal(signal.SIGINT)
    p.wait_stdout("^caught$")
    assert p.wait_exit() == 0


def test_no_watch_does_not_reload(fever, tmp_path):
    app = write(tmp_path / "app.py", looping("def compute(i):\n    return 'old'\n", "compute(i)"))
    p = fever.run("--no-watch", "app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ old$")
    edit(app, "return 'old'", "return 'new'")
    # Many iterations later the program still runs the code it started with.
    p.wait_iterations(30)
    assert all(line.endswith(" old") for line in p.stdout), p.report()
    assert p.fever_lines() == [], p.report()
    p.assert_not_restarted()


def test_python_m_fever_reloads(fever, tmp_path):
    app = write(tmp_path / "app.py", looping("def compute(i):\n    return 'old'\n", "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path, python_m=True)
    p.wait_stdout(r"^\d+ old$")
    edit(app, "return 'old'", "return 'new'")
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    p.wait_stdout(r"^\d+ new$")
    p.assert_not_restarted()


def test_quiet_prints_only_errors(fever, tmp_path):
    app = write(tmp_path / "app.py", looping("def compute(i):\n    return 'old'\n", "compute(i)"))
    p = fever.run("-q", "app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ old$")
    edit(app, "return 'old'", "return 'new'")
    p.wait_stdout(r"^\d+ new$")
    edit(app, "def compute(i):", "def compute(i)")
    p.wait_stderr(r"^fever: error: .*app\.py:\d+")
    assert p.fever_lines(r"^fever: (?!error:)") == [], p.report()
    p.assert_not_restarted()


def test_verbose_still_reloads(fever, tmp_path):
    app = write(tmp_path / "app.py", looping("def compute(i):\n    return 'old'\n", "compute(i)"))
    p = fever.run("-v", "app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ old$")
    edit(app, "return 'old'", "return 'new'")
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    p.wait_stdout(r"^\d+ new$")
    p.assert_not_restarted()


def zipapp_of(directory, target):
    import zipapp
    zipapp.create_archive(directory, target)
    return target


@pytest.mark.parametrize("kind", ["directory", "zipapp"])
def test_a_directory_or_zipapp_runs_its_main_like_python(tmp_path, kind):
    write(tmp_path / "app" / "__main__.py", "from helper import shown\n" + SHOW)
    write(tmp_path / "app" / "helper.py", "shown = True\n")
    path = "app" if kind == "directory" else zipapp_of(tmp_path / "app", tmp_path / "app.pyz").name
    expected = shown(run_python(path, *ARGS, cwd=tmp_path))
    got = shown(run_fever("run", path, *ARGS, cwd=tmp_path))
    assert got == expected
    assert got["argv"] == [path, *ARGS]
    assert got["name"] == "__main__"
    assert got["path0"] == str(tmp_path / path)


def test_a_directory_without_main_fails_like_python(tmp_path):
    (tmp_path / "empty").mkdir()
    expected = run_python("empty", cwd=tmp_path)
    result = run_fever("run", "--no-watch", "empty", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (expected.returncode, expected.stdout) == (1, "")
    message = f"can't find '__main__' module in '{tmp_path / 'empty'}'"
    assert result.stderr.strip().endswith(message), result.stderr
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr


def test_a_directorys_main_and_its_modules_reload(fever, tmp_path):
    main = write(tmp_path / "app" / "__main__.py",
                 looping("from helper import value\ndef compute(i):\n    return 'old'\n", "compute(i), value()"))
    helper = write(tmp_path / "app" / "helper.py", "def value():\n    return 'a'\n")
    p = fever.run("app", cwd=tmp_path)
    p.wait_stdout(r"^\d+ old a$")
    edit(main, "return 'old'", "return 'new'")
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    p.wait_stdout(r"^\d+ new a$")
    edit(helper, "return 'a'", "return 'b'")
    p.wait_stderr(r"^fever: reloaded helper\.value\b")
    p.wait_stdout(r"^\d+ new b$")
    p.assert_no_fever_errors()
    p.assert_not_restarted()
