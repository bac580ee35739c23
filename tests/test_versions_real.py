"""What trying fever on real libraries' test suites under Python 3.12 to 3.15 found differing
between the versions, seen from the outside: each test runs the real `fever` on a small program
shaped like the library code that showed it, on the venv's Python (`make test` runs it on each)."""

from __future__ import annotations

from conftest import write
from record_support import describe, make_cli, record
from test_check_real import check, counts


ENUM_ARGUMENTS = """
    import enum
    import re
    import socket

    class Sized:
        @property
        def size(self):
            return "the mixin's"

    class Box(Sized, enum.Enum):
        size = 1    # shadows the mixin's property: the class keeps an enum.property for it
        other = 2

    def bracketed(host, family):
        return f"[{host}]" if family == socket.AF_INET6 else host

    def folds(flags):
        return bool(flags & re.IGNORECASE)

    def is_size(box):
        return box is Box.size

    if __name__ == "__main__":
        print(bracketed("::1", socket.AF_INET6), folds(re.IGNORECASE), is_size(Box.size))
"""


def test_enum_members_a_class_holds_as_enum_properties_are_rebuilt_as_the_members(tmp_path):
    # boltons' URL.to_text compared a rebuilt socket.AF_INET6 with the real one: on 3.12
    # IntEnum._convert_ (socket.AddressFamily, re.RegexFlag) keeps each member behind an
    # enum.property in the class __dict__, as every version does for a member named like a
    # mixin's property; the property object itself was passed, so the calls failed.
    write(tmp_path / "app.py", ENUM_ARGUMENTS)
    recording = record(make_cli("venv"), "app.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    assert "[::1] True True" in recording.result.stdout, describe(recording.result)
    result = check(make_cli("venv"), "run.trace", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (3, 0, 0), describe(result)


THREADS_WITH_LOCKS = """
    import sys
    import threading

    sys.setswitchinterval(1e-6)   # CPython switches threads as often as it can

    class Conn:
        def __init__(self):
            self.lock = threading.RLock()   # its snapshot runs copyreg._slotnames (Python code)

    def handle(conn, i):
        return i + 1

    def serve(n):
        conn = Conn()
        for i in range(n):
            handle(conn, i)

    workers = [threading.Thread(target=serve, args=(N,)) for _ in range(2)]
    for w in workers:
        w.start()
    serve(N)
    for w in workers:
        w.join()
"""


def test_every_call_of_every_thread_is_recorded_while_another_threads_snapshot_runs_python(tmp_path):
    # boltons' socket tests (a server thread, a client thread, each call's arguments holding an
    # RLock) recorded a few hundred to 1,600 of 4,015 NetstringSocket.read_ns calls fewer on a
    # loaded machine, on every Python version: while one thread's snapshot ran Python code,
    # the threads CPython switched to passed their events by.
    n = 3000
    write(tmp_path / "server.py", THREADS_WITH_LOCKS.replace("(N,)", f"({n},)").replace("serve(N)", f"serve({n})"))
    cli = make_cli("venv")
    record(cli, "--max-calls-per-function", "0", "server.py", cwd=tmp_path,
                       trace=tmp_path / "run.trace")
    profile = cli.run("show", "run.trace", "--profile", cwd=tmp_path)
    assert profile.returncode == 0, describe(profile)
    calls = {line.split()[-2]: line.split()[0] for line in profile.stdout.splitlines()[1:]}
    assert calls.get("__main__.handle") == str(3 * n), describe(profile)
    assert calls.get("__main__.serve") == "3", describe(profile)
    assert "lost" not in profile.stderr, describe(profile)
