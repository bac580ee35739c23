"""A module's `from __future__ import annotations` applies to the code a save adds, as it does
when the whole file is compiled: found as Python finds it (among several imported features), and
not in a comment that merely mentions it."""

from conftest import edit, looping, write

COMPUTE = '''
def compute(i):
    return "v1"
'''

ADDED = '''
def helper(x: Missing) -> Missing:
    return x


def compute(i):
    return repr(helper.__annotations__)
'''


def test_future_annotations_among_several_features(fever, tmp_path, save):
    script = '"""An app."""\nfrom __future__ import division, annotations\n' + looping(COMPUTE, "compute(i)")
    app = write(tmp_path / "app.py", script)
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ v1$")
    edit(app, COMPUTE.strip("\n"), ADDED.strip("\n"), save)
    p.wait_stderr(r"^fever: added __main__\.helper\b")
    # Postponed: the annotations stay strings, and the undefined name is never looked up.
    p.wait_stdout(r"^\d+ \{'x': 'Missing', 'return': 'Missing'\}$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_a_comment_mentioning_future_annotations_changes_nothing(fever, tmp_path):
    script = "# from __future__ import annotations would postpone them\n" + looping(COMPUTE, "compute(i)")
    app = write(tmp_path / "app.py", script)
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ v1$")
    edit(app, COMPUTE.strip("\n"), ADDED.strip("\n").replace("Missing", "int"))
    p.wait_stderr(r"^fever: added __main__\.helper\b")
    # Evaluated, as in the module the file's own compilation gives.
    p.wait_stdout(r"^\d+ \{'x': <class 'int'>, 'return': <class 'int'>\}$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()
