"""What trying fever on real libraries' test suites under Python 3.12 to 3.15 found differing
between the versions, seen from the outside: each test runs the real `fever` on a small program
shaped like the library code that showed it, on the venv's Python (`make test` runs it on each)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import write
from record_support import clean_stderr, describe, make_cli, record


def check(*args, cwd: Path, expect: int) -> subprocess.CompletedProcess:
    result = make_cli("venv").run("check", *args, cwd=cwd, timeout=60)
    assert result.returncode == expect, describe(result)
    clean_stderr(result.stderr)
    return result


def counts(result: subprocess.CompletedProcess) -> tuple[int, int, int]:
    """(passed, failed, skipped) from the summary line."""
    m = re.search(r"^fever: (\d+) passed, (\d+) failed, (\d+) skipped", result.stderr, re.M)
    assert m, describe(result)
    return int(m[1]), int(m[2]), int(m[3])


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
    result = check("run.trace", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (3, 0, 0), describe(result)
