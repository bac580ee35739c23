"""`fever record` keeps hot reload on: code saved while recording is traced as it runs, and the
trace tells the two versions of a function apart by their code."""

import re
import signal
import subprocess

from conftest import FEVER, edit, looping, write

COMPUTE = '''
def compute(i):
    return i * 2
'''


def test_saved_code_is_traced_after_the_swap(fever, tmp_path):
    app = write(tmp_path / "app.py", looping(COMPUTE, "compute(i)"))
    p = fever.start("record", "-o", "run.trace", "app.py", cwd=tmp_path)
    old = p.wait_stdout(r"^(\d+) (\d+)$")
    assert int(old[2]) == 2 * int(old[1])

    edit(app, "return i * 2", "return i * 3")
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    new = p.wait_stdout(r"^(\d+) (\d+)$", where=lambda m: int(m[2]) == 3 * int(m[1]) and int(m[1]) > 0)
    p.signal(signal.SIGINT)
    assert p.wait_exit() == 130, p.report()
    p.wait_stderr(r"^fever: recorded \d+ calls of \d+ functions to run\.trace")

    show = subprocess.run([str(FEVER), "show", "run.trace"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert show.returncode == 0, show.stderr
    groups = re.findall(r"__main__\.compute\(i=(\d+)\) → (\d+)", show.stdout)
    # Repeated calls collapse by code: one group per version, each showing its first call.
    assert len(groups) == 2, show.stdout
    (i0, v0), (i1, v1) = [(int(i), int(v)) for i, v in groups]
    assert (i0, v0) == (0, 0)
    assert 0 < i1 <= int(new[1]) and v1 == 3 * i1, show.stdout

    profile = subprocess.run([str(FEVER), "show", "run.trace", "--profile"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert profile.returncode == 0, profile.stderr
    # One row per version of the function.
    versions = re.findall(r"__main__\.compute \[(v\d)\]", profile.stdout)
    assert sorted(versions) == ["v1", "v2"], profile.stdout
