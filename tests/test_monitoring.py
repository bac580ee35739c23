"""fever's sys.monitoring tool id: claimed at start (3, else 4), dormant, and never taken from
another tool (cProfile holds 2, coverage 1, debuggers 0)."""

from conftest import run_fever, write

REPORT = """
import sys
mon = sys.monitoring
print([mon.get_tool(i) for i in range(6)])
print(sorted({mon.get_events(i) for i in range(6)}))
"""


def test_tool_id_is_claimed_and_dormant(tmp_path):
    write(tmp_path / "app.py", REPORT)
    result = run_fever("run", "app.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    tools, events = result.stdout.splitlines()
    assert tools == "[None, None, None, 'fever', None, None]"
    assert events == "[0]"  # no events enabled for any tool


def test_takes_the_next_id_when_three_is_held(tmp_path):
    # A sitecustomize-like hook: another tool already holds id 3 before fever starts.
    write(tmp_path / "sitecustomize.py", "import sys\nsys.monitoring.use_tool_id(3, 'other')\n")
    write(tmp_path / "app.py", REPORT)
    result = run_fever("run", "app.py", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "[None, None, None, 'other', 'fever', None]"


def test_runs_without_an_id_when_none_is_free(tmp_path):
    write(tmp_path / "sitecustomize.py", "import sys\nfor i in (3, 4):\n    sys.monitoring.use_tool_id(i, f'other{i}')\n")
    write(tmp_path / "app.py", REPORT)
    result = run_fever("run", "app.py", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "[None, None, None, 'other3', 'other4', None]"
    assert "fever: sys.monitoring tool ids 3 and 4 are taken" in result.stderr


def test_program_using_cprofile_keeps_its_id(tmp_path):
    write(tmp_path / "app.py", "import cProfile\ncProfile.run('sum(range(1000))', '/dev/null')\n" + REPORT)
    result = run_fever("run", "app.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "[None, None, None, 'fever', None, None]"
