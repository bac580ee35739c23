"""What differs between the Python versions fever runs on (3.12 to 3.15), seen from the outside:
`breakpoint()` under fever (3.14's pdb can run on sys.monitoring and claims tool id 0), a module
with 3.14's lazily evaluated annotations (PEP 649/749) edited while it runs, and a 3.14
recording (annotations, template strings) checked on 3.14. The rest of the suite runs unchanged
on every version (`make test`)."""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import PYTHON, edit, run_fever, write

VERSION = tuple(
    int(x)
    for x in subprocess.run(
        [str(PYTHON), "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout.split()
)
NO_CRASH = ("Traceback", "panicked", "Segmentation fault")

needs_314 = pytest.mark.skipif(VERSION < (3, 14), reason="a Python 3.14 feature")

# --------------------------------------------------------------------------------------------
# breakpoint() under fever run / watch / record
# --------------------------------------------------------------------------------------------

DEBUGGED = """
import sys
BACKEND

def before(n):
    return n + 1

def work(x):
    y = x * 2
    breakpoint()
    return y + 1

def after(n):
    return n * 10

print("start", before(1), flush=True)
print("result", after(work(21)), flush=True)
"""

BACKENDS = {
    "settrace": "",
    # 3.14+: pdb on sys.monitoring, as `python -m pdb` uses it: it claims tool id 0.
    "monitoring": "import pdb\npdb.set_default_backend('monitoring')\n",
}


def backend_param(name):
    marks = [needs_314] if name == "monitoring" else []
    return pytest.param(name, marks=marks, id=name)


def debugged(tmp_path, backend):
    return write(tmp_path / "app.py", DEBUGGED.replace("BACKEND", BACKENDS[backend]))


def assert_pdb_worked(result):
    # pdb stopped in work(), printed the locals it was asked for, and the program went on.
    assert "(Pdb)" in result.stdout, result.stdout
    assert "\n42\n" in result.stdout or "(Pdb) 42\n" in result.stdout, result.stdout
    assert "(Pdb) 21\n" in result.stdout, result.stdout
    assert "result 430" in result.stdout, result.stdout
    assert not any(marker in result.stderr for marker in NO_CRASH), result.stderr


@pytest.mark.parametrize("backend", [backend_param(name) for name in BACKENDS])
def test_breakpoint_opens_pdb_under_fever_run(tmp_path, backend):
    debugged(tmp_path, backend)
    result = run_fever("run", "--no-watch", "app.py", cwd=tmp_path, stdin="p y\np x\nc\n")
    assert result.returncode == 0, result.stderr
    assert_pdb_worked(result)
    # The same as plain python gives.
    plain = subprocess.run([str(PYTHON), "app.py"], cwd=tmp_path, input="p y\np x\nc\n",
                           capture_output=True, text=True, timeout=30)
    assert plain.stdout == result.stdout


@pytest.mark.parametrize("backend", [backend_param(name) for name in BACKENDS])
def test_breakpoint_under_fever_record_keeps_recording(tmp_path, backend):
    debugged(tmp_path, backend)
    trace = tmp_path / "app.fever"
    result = run_fever("record", "-o", trace, "app.py", cwd=tmp_path, stdin="p y\np x\nc\n")
    assert result.returncode == 0, result.stderr
    assert_pdb_worked(result)
    shown = run_fever("show", trace, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    # Calls before, during and after the debugger session are all in the trace.
    for call in ("before(n=1)", "work(x=21)", "after(n=43)"):
        assert call in shown.stdout, shown.stdout
    assert "→ 430" in shown.stdout, shown.stdout


@pytest.mark.parametrize("backend", [backend_param(name) for name in BACKENDS])
def test_breakpoint_opens_pdb_under_fever_watch(tmp_path, fever, backend):
    debugged(tmp_path, backend)
    process = fever.start("watch", "app.py", cwd=tmp_path)
    # pdb's prompt ends without a newline: wait for the line that shows where it stopped (the
    # breakpoint() line on 3.14+, the next one before).
    process.wait_stdout(r"^-> (breakpoint\(\)|return y \+ 1)$", timeout=30)
    process.send_stdin("p y\n")
    process.wait_stdout(r"^\(Pdb\) 42$")
    process.send_stdin("c\n")
    process.wait_stdout(r"^(\(Pdb\) )?result 430$")
    process.wait_stderr(r"^fever: waiting for changes")
    process.assert_no_fever_errors()
    # A save re-runs the script: the breakpoint stops it again, and pdb still answers.
    edit(tmp_path / "app.py", "return n * 10", "return n * 100")
    process.wait_stdout(r"^-> (breakpoint\(\)|return y \+ 1)$", timeout=30)
    process.send_stdin("p x\n")
    process.wait_stdout(r"^\(Pdb\) 21$")
    process.send_stdin("c\n")
    process.wait_stdout(r"^(\(Pdb\) )?result 4300$")


# --------------------------------------------------------------------------------------------
# 3.14 annotations (PEP 649/749)
# --------------------------------------------------------------------------------------------

ANNOTATED = """
import annotationlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decimal import Decimal  # never imported: 3.14 evaluates annotations only on demand


@dataclass
class Point:
    x: int
    y: Later


def area(p: Point, scale: Decimal) -> float:
    return p.x * p.y.size * scale


class Later:
    size: int = 2


def hints():
    found = annotationlib.get_annotations(area, format=annotationlib.Format.FORWARDREF)
    return found["return"].__name__


deadline = time.monotonic() + 60
i = 0
while time.monotonic() < deadline:
    print(i, area(Point(3, Later()), 1), hints(), flush=True)
    i += 1
    time.sleep(0.02)
"""


@needs_314
def test_module_with_lazy_annotations_is_reloaded_while_running(tmp_path, fever):
    app = write(tmp_path / "app.py", ANNOTATED)
    process = fever.run("app.py", cwd=tmp_path)
    process.wait_stdout(r"^\d+ 6 float$")
    # A new body and a new return annotation (which names a type only TYPE_CHECKING imports).
    edit(app, "def area(p: Point, scale: Decimal) -> float:\n    return p.x * p.y.size * scale",
         "def area(p: Point, scale: Decimal) -> int:\n    return p.x * p.y.size * scale * 10")
    process.wait_stderr(r"^fever: reloaded __main__\.area ")
    process.wait_stdout(r"^\d+ 60 int$")
    # The annotation that names a type nobody imported reads as a forward reference after a reload.
    edit(app, 'return found["return"].__name__', 'return found["scale"].__forward_arg__')
    process.wait_stderr(r"^fever: reloaded __main__\.hints ")
    process.wait_stdout(r"^\d+ 60 Decimal$")
    process.assert_running()
    process.assert_no_fever_errors()
    assert not any(marker in line for line in process.stderr for marker in NO_CRASH), process.report()


LAZY_CALLS = """
import typing
from dataclasses import dataclass, fields


@dataclass
class Item:
    name: str
    price: float


def total(items: list[Item], tax: float = 0.2) -> float:
    return sum(item.price for item in items) * (1 + tax)


def describe(kind: type) -> list[str]:
    return [f"{name}: {hint.__name__}" for name, hint in typing.get_type_hints(kind).items()]


def template(name: str) -> str:
    TEMPLATE
    return rendered


if __name__ == "__main__":
    items = [Item("a", 1.0), Item("b", 2.5)]
    print(total(items), describe(Item), [f.name for f in fields(Item)], template("x"))
"""

# 3.14: PEP 750 template strings; before it, an f-string gives the same text.
TEMPLATE_314 = 't = t"<{name}>"\n    rendered = "".join(s if isinstance(s, str) else str(s.value) for s in t)'
TEMPLATE_OLD = 'rendered = f"<{name}>"'


def test_annotate_functions_are_not_recorded_as_calls(tmp_path):
    # Reading annotations (typing.get_type_hints, dataclasses) runs 3.14's __annotate__
    # functions: the trace shows only the calls the program made, the same on every version.
    template = TEMPLATE_314 if VERSION >= (3, 14) else TEMPLATE_OLD
    write(tmp_path / "app.py", LAZY_CALLS.replace("TEMPLATE", template))
    trace = tmp_path / "app.fever"
    result = run_fever("record", "-o", trace, "app.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "['name: str', 'price: float'] ['name', 'price'] <x>" in result.stdout
    recorded = re.search(r"fever: recorded (\d+) calls? of (\d+) functions?", result.stderr)
    assert recorded, result.stderr
    shown = run_fever("show", trace, cwd=tmp_path)
    assert "__annotate__" not in shown.stdout, shown.stdout
    # Each line of the tree starts with the function's name, then its arguments in parentheses.
    names = {line.strip().split("(")[0] for line in shown.stdout.splitlines() if not line.startswith("==")}
    expected = {"__main__.<module>", "__main__.Item", "__main__.total", "__main__.total.<locals>.<genexpr>",
                "__main__.describe", "__main__.template"}
    if VERSION >= (3, 14):
        expected.add("__main__.template.<locals>.<genexpr>")  # iterating the template
    assert names == expected, shown.stdout
    # The recording checks clean on the Python that made it (3.14 on 3.14).
    checked = run_fever("check", trace, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"^fever: \d+ passed, 0 failed, \d+ skipped$", checked.stderr, re.M), checked.stderr


# --------------------------------------------------------------------------------------------
# Exceptions through library code (3.15 made PY_UNWIND a local event, gh-142186)
# --------------------------------------------------------------------------------------------

THROUGH_LIBRARY = """
import json


def hook(d):
    if "bad" in d:
        raise ValueError("bad " + str(d["bad"]))
    return d


def key(word):
    if word == "boom":
        raise KeyError(word)
    return len(word)


def parse(text):
    try:
        return json.loads(text, object_hook=hook)
    except ValueError as e:
        return str(e)


def order(words):
    try:
        return sorted(words, key=key)
    except KeyError:
        return "no order"


def main():
    for round in range(3):
        print(parse('{"a": {"bad": %d}}' % round), order(["bb", "a", "boom"]), parse('{"a": 1}'), order(["bb", "a"]))


main()
"""


def test_exceptions_through_library_frames_keep_the_tree_right(tmp_path):
    # Project callbacks called by library code (json, sorted) raise through library frames that
    # fever switched off with DISABLE; the library frames' unwinds must not pop project calls.
    write(tmp_path / "app.py", THROUGH_LIBRARY)
    trace = tmp_path / "app.fever"
    result = run_fever("record", "-o", trace, "app.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"bad {n} no order {{'a': 1}} ['a', 'bb']" for n in range(3)]
    shown = run_fever("show", trace, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if not line.startswith("==")]
    depth = {line.strip().split("(")[0]: (len(line) - len(line.lstrip())) // 2 for line in lines}
    assert depth["__main__.main"] == 1 and depth["__main__.parse"] == 2 and depth["__main__.order"] == 2, shown.stdout
    assert depth["__main__.hook"] == 3 and depth["__main__.key"] == 3, shown.stdout
    assert any("__main__.hook(" in line and "raised ValueError" in line for line in lines), shown.stdout
    assert any("__main__.key(" in line and "raised KeyError" in line for line in lines), shown.stdout
    # Every parse/order call returned to main: none is left open or nested under another.
    assert not any(line.strip().startswith(("__main__.parse", "__main__.order")) and "raised" in line
                   for line in lines), shown.stdout
