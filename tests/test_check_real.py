"""`fever check` on code like real programs and test suites: recorded calls re-invoked with the
binding they had, test suites recorded under pytest's import modes, nondeterministic calls found
instead of failed, calls that never returned left out, calls that hang stopped, and a real
library's own single-line mutations caught.

Each test records with the real `fever record`, then runs the real `fever check` (the venv's).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import PYTHON, REPO, edit, looping, write
from record_support import clean_stderr, describe, make_cli, record

INFLECTION = REPO / "tests" / "projects" / "inflection"


@pytest.fixture
def venv():
    return make_cli("venv")


def check(cli, *args, cwd: Path, expect: int, timeout: float = 60) -> subprocess.CompletedProcess:
    result = cli.run("check", *args, cwd=cwd, timeout=timeout)
    assert result.returncode == expect, describe(result)
    clean_stderr(result.stderr)
    return result


def counts(result: subprocess.CompletedProcess) -> tuple[int, int, int]:
    """(passed, failed, skipped) from the summary line."""
    m = re.search(r"^fever: (\d+) passed, (\d+) failed, (\d+) skipped", result.stderr, re.M)
    assert m, describe(result)
    return int(m[1]), int(m[2]), int(m[3])


def skipped(result: subprocess.CompletedProcess) -> dict[str, str]:
    """call id → reason, from `-v`'s `fever: skipped ID: REASON` lines."""
    return dict(re.findall(r"^fever: skipped (\S+): (.*)$", result.stderr, re.M))


SIGNATURES = """
    import datetime
    import enum
    from decimal import Decimal
    from collections import namedtuple
    from dataclasses import dataclass

    MISSING = object()
    NO_PAD = "__no__pad__"

    class Color(enum.Enum):
        RED = 1
        BLUE = 2

    Point = namedtuple("Point", "x y")

    @dataclass
    class Box:
        items: list
        color: Color
        corner: Point

    class Slotted:
        __slots__ = ("a", "b")

        def __init__(self, a, b):
            self.a = a
            self.b = b

    class Node:
        def __init__(self, name):
            self.name = name
            self.children = []
            self.parent = None

        def add(self, child):
            child.parent = self
            self.children.append(child)
            return child

    class Curry:
        def __init__(self, *args, **kwargs):
            if not args:
                raise TypeError("curry needs a function")
            self.func, self.args, self.kwargs = args[0], args[1:], kwargs

        @classmethod
        def count(cls, n, *rest):
            return n + len(rest)

        @staticmethod
        def times(x, *, by):
            return x * by

    def spread(first, *rest, scale=1, **options):
        return [first * scale] + [r * scale for r in rest] + sorted(options.items())

    def positional_only(a, b=2, /, c=3, *, d=4):
        return a * 1000 + b * 100 + c * 10 + d

    def sentinel(value, default=MISSING, pad=NO_PAD):
        return (value if default is MISSING else default, pad is NO_PAD)

    def measure(box, slotted):
        return len(box.items) + box.corner.x + slotted.a * slotted.b, box.color

    def depth(node):
        return 0 if node.parent is None else 1 + depth(node.parent)

    def window(seq, part, span, amount, when):
        return seq[part], list(span), amount * 2, when.year

    def main():
        print(spread(1, 2, 3, scale=5, z=6))
        print(positional_only(1, 5, c=7, d=8), positional_only(9))
        Curry(max, 1, key=abs)
        print(Curry.count(3, 4, 5), Curry.times(2, by=3))
        print(sentinel(1), sentinel(1, 2), sentinel(1, pad="x"))
        print(measure(Box([1, 2], Color.BLUE, Point(3, 4)), Slotted(5, 6)))
        root = Node("root")
        leaf = root.add(Node("a")).add(Node("b"))
        print(depth(leaf))
        print(window([1, 2, 3, 4], slice(1, 3), range(2, 8, 2), Decimal("1.5"),
                     datetime.datetime(2024, 5, 6, 7, 8)))

    if __name__ == "__main__":
        main()
"""


def test_calls_are_re_invoked_with_the_binding_they_had(venv, tmp_path):
    write(tmp_path / "sigs.py", SIGNATURES)
    record(venv, "sigs.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "--select", "sigs.*", "--depth", "1", "-v", cwd=tmp_path,
                   expect=0)
    # main, then every call it made: *args, **kwargs, keyword-only, positional-only, defaults
    # that are sentinels, methods, classmethods, staticmethods, objects with slots, enums,
    # named tuples and dataclasses nested in each other, objects in a cycle (parent/child),
    # values known by their repr: a slice, a range, a Decimal, a datetime.
    assert counts(result) == (19, 0, 0), describe(result)

    edit(tmp_path / "sigs.py", "return [first * scale]", "return [first * scale * 2]")
    edit(tmp_path / "sigs.py", "return a * 1000 + b * 100", "return a * 1000 + b * 10")
    result = check(venv, "run.trace", "--depth", "1", cwd=tmp_path, expect=1)
    assert "sigs.py" in result.stdout
    assert re.search(r"^__main__\.spread\(first=1, rest=\(2, 3\), scale=5, options=\{'z': 6\}\)",
                     result.stdout, re.M), describe(result)
    assert counts(result)[1] == 3, describe(result)  # spread, positional_only x2


CACHED = """
    import functools

    class cachedproperty:
        # as boltons.urlutils has it: the function is kept as `func`, and the class holds the
        # descriptor under the function's name
        def __init__(self, func):
            self.func = func

        def __get__(self, obj, objtype=None):
            if obj is None:
                return self
            value = obj.__dict__[self.func.__name__] = self.func(obj)
            return value

    class Url:
        def __init__(self, text):
            self.text = text

        @cachedproperty
        def parts(self):
            return self.text.split("/")

        @functools.cached_property
        def size(self):
            return len(self.text)

    def describe(url):
        return url.parts, url.size

    if __name__ == "__main__":
        print(describe(Url("a/b/c")))
"""


def test_a_function_a_cached_property_holds_is_found_by_its_name(venv, tmp_path):
    # The descriptor's `func` is recorded as a reference to `Url.parts`; the class holds the
    # descriptor under that name, so rebuilding it looks inside (`func`, as `fget` for a property).
    write(tmp_path / "cached.py", CACHED)
    record(venv, "cached.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "--depth", "3", "-v", cwd=tmp_path, expect=0)
    # describe, the two __init__, the descriptor's __get__, and parts and size themselves (they
    # were skipped as "a cachedproperty now, not a function", and __get__ failed: not callable)
    assert counts(result) == (6, 0, 0), describe(result)


def test_a_script_summary_says_how_to_check_more_and_list_says_what_is_checked(venv, tmp_path):
    write(tmp_path / "sigs.py", SIGNATURES)
    record(venv, "sigs.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", cwd=tmp_path, expect=0)
    assert counts(result) == (1, 0, 0)
    hint = re.search(r"^hint: only the outermost call was checked; (\d+) recorded calls below it "
                     r"can be checked too: `--depth 1`", result.stderr, re.M)
    assert hint, describe(result)

    listed = check(venv, "run.trace", "--list", cwd=tmp_path, expect=0)
    assert re.fullmatch(r"__main__\.main\[1\]  \S+sigs\.py:\d+  check\n", listed.stdout), describe(listed)
    assert f"fever: not selected: {hint[1]} inside a selected call" in listed.stderr, describe(listed)
    # The help's example: a script's functions match under its file name.
    assert counts(check(venv, "run.trace", "--select", "sigs.depth", cwd=tmp_path, expect=0)) == (1, 0, 0)


CONFTEST = """
    import pytest

    @pytest.fixture
    def squares():
        from shapes import Square
        return [Square(2), Square(3)]
"""

SHAPES = """
    class Square:
        def __init__(self, side):
            self.side = side

    def area(square):
        return square.side ** 2

    def total(squares):
        return sum(area(s) for s in squares)
"""

HELPERS = """
    class Rect:
        def __init__(self, w, h):
            self.w = w
            self.h = h
"""

TESTS = """
    from HELPERS import Rect
    import shapes

    def describe(rect):
        return shapes.total([shapes.Square(rect.w), shapes.Square(rect.h)])

    def test_total(squares):
        assert shapes.total(squares) == 13

    def test_rect():
        assert describe(Rect(1, 2)) == 5
"""


@pytest.mark.parametrize("mode", ["prepend", "append", "importlib"])
def test_a_pytest_suite_checks_the_calls_its_tests_made_under_each_import_mode(venv, tmp_path, mode):
    """The code under test in src/ (pytest's `pythonpath`), a fixture in the rootdir's
    conftest.py, tests in tests/ importing a helper module next to them: on sys.path by pytest
    itself in the prepend and append modes; a package in the importlib mode."""
    project = tmp_path / "proj"
    write(project / "src" / "shapes.py", SHAPES)
    write(project / "conftest.py", CONFTEST)
    write(project / "tests" / "helpers.py", HELPERS)
    helpers = "helpers"
    if mode == "importlib":
        write(project / "tests" / "__init__.py", "")
        helpers = "tests.helpers"
    write(project / "tests" / "test_shapes.py", TESTS.replace("HELPERS", helpers))
    write(project / "pyproject.toml", '[tool.pytest.ini_options]\npythonpath = ["src"]\n')
    record(venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--import-mode={mode}",
           "tests", cwd=project, trace=project / "run.trace")
    listed = check(venv, project / "run.trace", "--list", cwd=tmp_path, expect=0)
    # Not the tests, nor the fixture or helpers: what they called in the code under test.
    names = re.findall(r"^(\S+)\[\d+\]  ", listed.stdout, re.M)
    assert names == ["shapes.Square.__init__", "shapes.Square.__init__", "shapes.total",
                     "shapes.Square.__init__", "shapes.Square.__init__", "shapes.total"], describe(listed)
    assert re.search(r"^fever: not selected: \d+ test code", listed.stderr, re.M), describe(listed)

    # Run from elsewhere: the directories pytest put on sys.path come from the trace.
    result = check(venv, project / "run.trace", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (6, 0, 0), describe(result)

    edit(project / "src" / "shapes.py", "square.side ** 2", "square.side * 2")
    result = check(venv, project / "run.trace", cwd=tmp_path, expect=1)
    assert counts(result) == (4, 2, 0), describe(result)

    # With --select, the tests' own functions, and the helpers' classes they pass, are found.
    edit(project / "src" / "shapes.py", "square.side * 2", "square.side ** 2")
    result = check(venv, project / "run.trace", "--select", "*.describe", "-v",
                   cwd=tmp_path, expect=0)
    assert counts(result) == (1, 0, 0), describe(result)


def test_fever_run_pytest_with_warnings_as_errors(venv, tmp_path):
    write(tmp_path / "test_ok.py", "def test_ok():\n    assert 1 + 1 == 2\n")
    result = venv.run("run", "-m", "pytest", "-W", "error", "-q", "-p", "no:cacheprovider",
                      "test_ok.py", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "1 passed" in result.stdout
    assert "PytestAssertRewriteWarning" not in result.stdout + result.stderr


NONDETERMINISTIC = """
    import random
    import time
    import uuid
    import warnings

    def roll(sides):
        return random.randint(1, sides * 1000)

    def seeded(sides):
        random.seed(7)
        return random.randint(1, sides * 1000)

    def stamp(label):
        return (label, time.time_ns())

    def ident(prefix):
        return prefix + str(uuid.uuid4())

    CALLS = [0]

    def counter(step):
        CALLS[0] += step
        return CALLS[0]

    def strict(n):
        warnings.warn("strict is deprecated", DeprecationWarning)
        return n

    def main():
        print(roll(6), seeded(6), stamp("x"), ident("id-"), counter(1))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # what pytest's -W error does
            try:
                strict(1)
            except DeprecationWarning:
                pass

    if __name__ == "__main__":
        main()
"""


def test_nondeterministic_calls_are_skipped_with_their_source_never_failed(venv, tmp_path):
    write(tmp_path / "nd.py", NONDETERMINISTIC)
    record(venv, "nd.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    # Not main(), whose own run of counter() would count for the one checked after it.
    selected = ["--select", "nd.[!m]*"]
    result = check(venv, "run.trace", *selected, "-v", cwd=tmp_path, expect=0)
    reasons = skipped(result)
    assert reasons["__main__.roll[1]"] == (
        "nondeterministic: it used random without a fixed seed and its result differs")
    assert reasons["__main__.stamp[1]"].startswith("nondeterministic: it used the clock (time.time_ns)")
    assert reasons["__main__.ident[1]"].startswith("nondeterministic: it used uuid.uuid4")
    assert "__main__.seeded[1]" not in reasons
    # seeded, counter and strict pass (counter counts its calls: 1 on the first; strict raises
    # its warning, as warnings were errors when it was recorded).
    assert counts(result) == (3, 0, 3), describe(result)

    # Run twice in one process, counter() returns 1, then 2.
    twice = check(venv, "run.trace", "--select", "nd.counter", "--twice", "-v", cwd=tmp_path,
                  expect=0)
    assert skipped(twice)["__main__.counter[1]"] == (
        "nondeterministic: two runs gave different results"), describe(twice)


LOOPING = """
    import time

    def step(i):
        return i * 2

    def hang(n):
        while True:
            n += 1

    def main():
        i = 0
        while True:
            step(i)
            i += 1
            if i == 3:
                print("ready", flush=True)
            time.sleep(0.005)

    if __name__ == "__main__":
        main()
"""


def test_a_main_stopped_with_ctrl_c_is_not_run_again_and_a_hanging_call_times_out(venv, tmp_path, fever):
    write(tmp_path / "loop.py", LOOPING)
    p = fever.start("record", "-o", "run.trace", "loop.py", cwd=tmp_path)
    p.wait_stdout(r"^ready$")
    p.signal(signal.SIGINT)
    assert p.wait_exit() == 130, p.report()
    p.wait_stderr(r"^fever: recorded \d+ calls")

    listed = check(venv, "run.trace", "--list", cwd=tmp_path, expect=0)
    assert "__main__.main" not in listed.stdout, describe(listed)
    assert "__main__.step[1]" in listed.stdout, describe(listed)
    assert re.search(r"^fever: not selected: [12] did not return in the recording", listed.stderr,
                     re.M), describe(listed)
    result = check(venv, "run.trace", cwd=tmp_path, expect=0)
    passed, failed, _ = counts(result)
    assert passed > 0 and failed == 0, describe(result)

    # step() now hangs: each call fails as timed out, and the check goes on to the next.
    edit(tmp_path / "loop.py", "return i * 2", "return hang(i)")
    result = check(venv, "run.trace", "--select", "loop.step", "--timeout", "0.2", cwd=tmp_path,
                   expect=1, timeout=120)
    timed_out = re.findall(r"^timed out after 0\.2 s", result.stdout, re.M)
    assert len(timed_out) == counts(result)[1] == passed, describe(result)


def test_python_has_no_effect_in_the_venvs_fever(venv, tmp_path):
    write(tmp_path / "x.py", "print('ran')\n")
    result = venv.run("run", "--python", "/no/such/python", "x.py", cwd=tmp_path)
    assert result.returncode == 2, describe(result)
    assert "ran" not in result.stdout
    assert result.stderr.startswith(
        "fever: error: --python /no/such/python has no effect: this fever is installed in "), describe(result)
    # Naming the interpreter it runs in is fine.
    result = venv.run("run", "--python", PYTHON, "x.py", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "ran\n", describe(result)


# Single-line mutations of inflection 0.5.1 (tests/projects/inflection) that its own tests catch:
# a changed operator, constant, or return value.
MUTATIONS = [
    ("return string[0].lower() + camelize(string)[1:]",
     "return string[0].upper() + camelize(string)[1:]"),
    ("return word.replace('_', '-')", "return word.replace('_', '+')"),
    ("if number % 100 in (11, 12, 13):", "if number % 100 in (11, 12):"),
    ("3: \"rd\",", "3: \"th\","),
    ('}.get(number % 10, "th")', '}.get(number % 10, "st")'),
    ('2: "nd",', '2: "th",'),
    ('return "{}{}".format(number, ordinal(number))', 'return "{} {}".format(number, ordinal(number))'),
    ("return string.lower()", "return string"),
    ("if number % 100 in (11, 12, 13):", "if number % 10 in (11, 12, 13):"),
    ("return pluralize(underscore(word))", "return underscore(word)"),
    ("word = re.sub(r\"([a-z\\d])([A-Z])\", r'\\1_\\2', word)",
     "word = re.sub(r\"([a-z\\d])([A-Z])\", r'\\1\\2', word)"),
    ("return word.lower()\n", "return word\n"),
    ("number = abs(int(number))", "number = int(number)"),
    ("_irregular('child', 'children')", "_irregular('child', 'childs')"),
    # Raises while the module is imported: every call of the module fails.
    ("return ''.join('[' + char + char.upper() + ']' for char in string)",
     "return ''.join('[' - char + char.upper() + ']' for char in string)"),
    ("word = re.sub(r\"(?i)([a-z\\d]*)\", lambda m: m.group(1).lower(), word)",
     "word = re.sub(r\"(?i)([a-z\\d]*)\", lambda m: m.group(1).upper(), word)"),
]

# The one test that changes a module global (inflection.UNCOUNTABLES) around the calls it makes:
# those calls' results depend on state that a recording does not hold, so they are left out.
DESELECT = "not test_uncountable_word_is_not_greedy"


def test_a_real_librarys_single_line_mutations_are_caught(venv, tmp_path):
    project = Path(shutil.copytree(INFLECTION, tmp_path / "inflection"))
    # Every call recorded: by default only the first calls of each function are, and a mutation
    # that only later calls reach (a word near the end of a parametrized list) goes unseen.
    record(venv, "--max-calls-per-function", "0", "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "-k", DESELECT, "test_inflection.py", cwd=project, trace=project / "run.trace")
    unchanged = check(venv, "run.trace", cwd=project, expect=0)
    passed, failed, _ = counts(unchanged)
    assert passed > 500 and failed == 0, describe(unchanged)

    source = project / "inflection" / "__init__.py"
    original = source.read_text()
    caught_by_suite = caught_by_fever = 0
    missed = []
    for old, new in MUTATIONS:
        assert original.count(old) == 1, old
        source.write_text(original.replace(old, new))
        suite = subprocess.run([str(PYTHON), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                "-k", DESELECT, "test_inflection.py"], cwd=project,
                               capture_output=True, text=True, timeout=120)
        assert suite.returncode != 0, f"the suite misses {new!r}:\n{suite.stdout[-2000:]}"
        caught_by_suite += 1
        result = venv.run("check", "run.trace", cwd=project)
        clean_stderr(result.stderr)
        assert result.returncode in (0, 1), describe(result)
        if result.returncode == 1:
            caught_by_fever += 1
        else:
            missed.append(new)
    source.write_text(original)
    print(f"single-line mutations caught: fever check {caught_by_fever}/{len(MUTATIONS)}, "
          f"the suite {caught_by_suite}/{len(MUTATIONS)}")
    assert caught_by_fever == caught_by_suite == len(MUTATIONS), missed


ARRAYS = """
    import numpy as np

    def normalize(values, scale):
        return values / values.sum() * scale

    def shape_of(grid):
        return grid.shape, str(grid.dtype)

    def main():
        print(normalize(np.arange(1.0, 5.0), 2.0))
        print(shape_of(np.zeros((3, 2), dtype=np.int32)))

    if __name__ == "__main__":
        main()
"""


def test_numpy_arrays_are_rebuilt_when_numpy_is_installed(venv, tmp_path):
    has_numpy = subprocess.run([str(PYTHON), "-c", "import numpy"], capture_output=True).returncode == 0
    if not has_numpy:
        pytest.skip("numpy is not installed in the venv under test")
    write(tmp_path / "arrays.py", ARRAYS)
    record(venv, "arrays.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "--select", "arrays.[!m]*", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (2, 0, 0), describe(result)
    edit(tmp_path / "arrays.py", "* scale", "* scale + 1")
    result = check(venv, "run.trace", "--select", "arrays.normalize", cwd=tmp_path, expect=1)
    assert counts(result) == (0, 1, 0), describe(result)


SET_ORDER = """
    def tags(words):
        return list(set(words))

    def main():
        print(tags(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]))

    if __name__ == "__main__":
        main()
"""


def test_the_order_of_a_set_of_strings_is_nondeterministic(venv, tmp_path):
    write(tmp_path / "tags.py", SET_ORDER)
    # Recorded and checked with other hash seeds: the set iterates in another order.
    record(venv, "tags.py", cwd=tmp_path, trace=tmp_path / "run.trace", env={"PYTHONHASHSEED": "1"})
    result = venv.run("check", "run.trace", "--select", "tags.tags", "-v", cwd=tmp_path,
                      env={"PYTHONHASHSEED": "random"})
    assert result.returncode == 0, describe(result)
    reason = skipped(result).get("__main__.tags[1]")
    passed = counts(result)[0] == 1  # the same order again, by chance (1 in 40,320)
    assert passed or reason.startswith("nondeterministic: the same strings in another order, as iterating a "
                                        "set of strings gives; hashes of strings change"), describe(result)
    # With a fixed seed, the order is the program's: a different one is a failure.
    result = venv.run("check", "run.trace", "--select", "tags.tags", cwd=tmp_path,
                      env={"PYTHONHASHSEED": "2"})
    assert result.returncode == 1, describe(result)


PROPERTY = """
    class Box:
        def __init__(self):
            self._size = 0

        @property
        def size(self):
            return self._size

        @size.setter
        def size(self, value):
            if value < 0:
                raise ValueError("negative size")
            self._size = value

    if __name__ == "__main__":
        box = Box()
        print(box.size)
        box.size = 3
        try:
            box.size = -1
        except ValueError:
            pass
        print(box.size)
"""


def test_a_propertys_setter_is_checked_as_the_setter_not_its_getter(venv, tmp_path):
    # The getter and the setter are both `Box.size`: the names of their calls' arguments tell
    # them apart (not versions of one function reloaded), and the recorded first line which
    # function each is now.
    write(tmp_path / "box.py", PROPERTY)
    record(venv, "box.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "-v", cwd=tmp_path, expect=0)
    # __init__, the getter twice, the setter twice (the second raised)
    assert counts(result) == (5, 0, 0), describe(result)

    # Moved down (a line added above): told apart by their parameters instead.
    edit(tmp_path / "box.py", "class Box:", "# boxes\n\nclass Box:")
    result = check(venv, "run.trace", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (5, 0, 0), describe(result)
    # A regression in the setter is the setter's.
    edit(tmp_path / "box.py", "if value < 0:", "if value < 5:")
    result = check(venv, "run.trace", cwd=tmp_path, expect=1)
    assert counts(result) == (4, 1, 0), describe(result)
    assert re.search(r"^__main__\.Box\.size\(self=.*value=3\)", result.stdout, re.M), describe(result)
    # And one in the getter the getter's.
    edit(tmp_path / "box.py", "if value < 5:", "if value < 0:")
    edit(tmp_path / "box.py", "return self._size", "return -self._size")
    result = check(venv, "run.trace", cwd=tmp_path, expect=1)
    assert counts(result) == (4, 1, 0), describe(result)


def test_a_getter_called_only_before_its_setter_is_still_checked(venv, tmp_path):
    # Not alternating (as a version reloaded and replaced would look in the trace), but the class
    # has both functions now, each taking the arguments its calls were given.
    write(tmp_path / "box.py", PROPERTY.replace("    pass\n        print(box.size)", "    pass"))
    record(venv, "box.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "-v", cwd=tmp_path, expect=0)
    # __init__, the getter once, the setter twice
    assert counts(result) == (4, 0, 0), describe(result)
    edit(tmp_path / "box.py", "return self._size", "return self._size + 1")
    result = check(venv, "run.trace", cwd=tmp_path, expect=1)
    assert counts(result) == (3, 1, 0), describe(result)


COMPUTE = """
    def compute(i):
        return i * 2
"""


def test_a_function_moved_and_edited_while_recording_keeps_its_old_calls_off_the_new_code(fever, venv, tmp_path):
    app = write(tmp_path / "app.py", looping(COMPUTE, "compute(i)"))
    p = venv.start(fever, "record", "-o", "run.trace", "app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) (\d+)$")
    # Moved down and edited at once, its parameter renamed: a new first line, new content, other
    # argument names; but its old version is never called again.
    edit(app, "def compute(i):\n    return i * 2", "# later\n\n\ndef compute(n):\n    return n * 3")
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    p.wait_stdout(r"^(\d+) (\d+)$", where=lambda m: int(m[2]) == 3 * int(m[1]) and int(m[1]) > 0)
    p.signal(signal.SIGINT)
    assert p.wait_exit() == 130, p.report()
    p.wait_stderr(r"^fever: recorded \d+ calls of \d+ functions to run\.trace")

    result = check(venv, "run.trace", "-v", "--select", "app.compute", cwd=tmp_path, expect=0)
    passed, failed, skipped_ = counts(result)
    assert passed > 0 and failed == 0 and skipped_ > 0, describe(result)
    reasons = set(skipped(result).values())
    assert reasons == {"the code changed during the recording: it ran __main__.compute [v1], which "
                       "was reloaded later ([v2] is the last)"}, describe(result)


IMPORT_TIME = """
    import datetime
    import random

    INSTANCE_ID = hex(random.SystemRandom().getrandbits(128))
    STARTED = str(datetime.datetime.now())

    def double(x):
        return x * 2
"""


def test_a_module_that_reads_the_clock_or_random_as_it_is_imported_keeps_its_regressions(venv, tmp_path):
    # What a module made at import differs in each process, but its functions' regressions are
    # still failures, not skipped because of it.
    write(tmp_path / "eco.py", IMPORT_TIME)
    write(tmp_path / "app.py", """
        import eco

        if __name__ == "__main__":
            print(eco.double(2), eco.double(5))
    """)
    record(venv, "app.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (2, 0, 0), describe(result)
    edit(tmp_path / "eco.py", "return x * 2", "return x + 2")
    result = check(venv, "run.trace", cwd=tmp_path, expect=1)
    assert counts(result) == (1, 1, 0), describe(result)


SCRIPT_NAME = """
    import logging
    import sys

    def who():
        return __name__, logging.getLogger(__name__).name

    def args():
        return sys.argv[1:]

    if __name__ == "__main__":
        print(who(), args())
"""


def test_a_script_checks_under_its_recorded_name_and_arguments(venv, tmp_path):
    write(tmp_path / "tool.py", SCRIPT_NAME)
    record(venv, "tool.py", "--fast", "x", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (2, 0, 0), describe(result)
    edit(tmp_path / "tool.py", "return sys.argv[1:]", "return sys.argv[2:]")
    result = check(venv, "run.trace", cwd=tmp_path, expect=1)
    assert counts(result) == (1, 1, 0), describe(result)


def test_a_module_run_with_m_checks_with_its_recorded_arguments(venv, tmp_path):
    # `python -m pkg.tool ARGS` puts the module's file first; the check imports nothing to
    # find it (a stale installed copy of the package stays out of it).
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "tool.py", SCRIPT_NAME.replace("return sys.argv[1:]",
                                                            "return [os.path.basename(sys.argv[0])] + sys.argv[1:]")
          .replace("import sys", "import os, sys"))
    record(venv, "-m", "pkg.tool", "--fast", "x", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (2, 0, 0), describe(result)



def test_a_suite_run_with_m_pytest_checks_with_pytests_recorded_arguments(venv, tmp_path):
    # pytest's __main__ is not the project's (no call of it in the trace): its file is found on
    # sys.path, as `python -m pytest` put it first.
    write(tmp_path / "invocation.py", """
        import sys

        def command():
            return sys.argv[1:], sys.argv[0].endswith("__main__.py")
    """)
    write(tmp_path / "test_invocation.py", """
        import invocation

        def test_command():
            assert invocation.command()[1]
    """)
    record(venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_invocation.py",
           cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (1, 0, 0), describe(result)



def test_a_namespace_package_run_with_m_checks_with_the_portion_holding_its_main(venv, tmp_path):
    # `python -m nsp` with nsp split over two folders runs the __main__.py of whichever holds
    # one: that file comes first in the recorded argv, as it was when run.
    project = tmp_path / "proj"
    write(project / "invocation.py", """
        import sys

        def command():
            return sys.argv[1:], sys.argv[0].endswith("b/nsp/__main__.py")
    """)
    write(tmp_path / "a" / "nsp" / "helper.py", "")
    write(tmp_path / "b" / "nsp" / "__main__.py", """
        import invocation
        print(invocation.command())
    """)
    paths = os.pathsep.join(str(tmp_path / d) for d in ("a", "b"))
    recording = record(venv, "-m", "nsp", "--fast", cwd=project, trace=project / "run.trace",
                       env={"PYTHONPATH": paths})
    assert "(['--fast'], True)" in recording.result.stdout, describe(recording.result)
    # The check finds it on its own sys.path (the recorded one is not in the trace).
    result = venv.run("check", "run.trace", "-v", cwd=project, env={"PYTHONPATH": paths})
    assert result.returncode == 0, describe(result)
    assert counts(result) == (1, 0, 0), describe(result)

SET_MESSAGE = """
    def check_perms(text):
        bad = set(text) - set("rwx")
        if bad:
            raise ValueError(f"got invalid chars {bad} in {text!r}")
        return text

    if __name__ == "__main__":
        try:
            check_perms("nopequz")
        except ValueError as e:
            print(e)
"""


def test_an_error_message_listing_a_set_of_strings_in_another_order_is_nondeterministic(venv, tmp_path):
    write(tmp_path / "perms.py", SET_MESSAGE)
    record(venv, "perms.py", cwd=tmp_path, trace=tmp_path / "run.trace", env={"PYTHONHASHSEED": "1"})
    result = venv.run("check", "run.trace", "--select", "perms.check_perms", "-v", cwd=tmp_path,
                      env={"PYTHONHASHSEED": "random"})
    assert result.returncode == 0, describe(result)
    reason = skipped(result).get("__main__.check_perms[1]")
    passed = counts(result)[0] == 1  # the same order again, by chance (1 in 5,040)
    assert passed or reason.startswith("nondeterministic: the same strings in another order"), \
        describe(result)
    # Another message is a failure.
    edit(tmp_path / "perms.py", "got invalid chars", "invalid chars")
    result = venv.run("check", "run.trace", "--select", "perms.check_perms", cwd=tmp_path,
                      env={"PYTHONHASHSEED": "random"})
    assert result.returncode == 1, describe(result)


CALLER_FRAME = """
    import contextlib
    import sys

    def make_class(name):
        # as namedtuple factories do: the class belongs to the module that called
        module = sys._getframe(1).f_globals["__name__"]
        return type(name, (), {"__module__": module})

    def current_error():
        kind, value, _ = sys.exc_info()
        return f"{kind.__name__}: {value}"

    def caller_name():
        return sys._getframe(1).f_code.co_name

    def total(xs):
        # ExitStack.__exit__ asks for the exception being handled, for itself
        with contextlib.ExitStack():
            return sum(xs)
"""


def test_calls_are_made_from_their_callers_module_and_reading_above_them_is_nondeterministic(
        venv, tmp_path):
    write(tmp_path / "frames.py", CALLER_FRAME)
    write(tmp_path / "shapes.py", """
        import frames

        def build():
            try:
                1 / 0
            except ZeroDivisionError:
                error = frames.current_error()
            return frames.make_class("Point"), error, frames.caller_name(), frames.total([1, 2])
    """)
    write(tmp_path / "app.py", """
        import shapes

        if __name__ == "__main__":
            print(shapes.build())
    """)
    record(venv, "app.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "--select", "frames.*", "-v", cwd=tmp_path, expect=0)
    # make_class, called from shapes, names shapes again; the other two read what only their
    # caller had: the exception it was handling, its frame.
    assert counts(result) == (2, 0, 2), describe(result)
    reasons = skipped(result)
    assert reasons["frames.current_error[1]"] == (
        "nondeterministic: it used the exception its caller was handling (sys.exc_info) and its "
        "result differs"), describe(result)
    assert reasons["frames.caller_name[1]"] == (
        "nondeterministic: it used its caller's frame (sys._getframe) and its result differs"), \
        describe(result)
    # What the standard library reads for itself is not the caller's: a regression fails.
    edit(tmp_path / "frames.py", "return sum(xs)", "return sum(xs) + 1")
    result = check(venv, "run.trace", "--select", "frames.*", cwd=tmp_path, expect=1)
    assert counts(result) == (1, 1, 2), describe(result)


def test_the_recorded_callers_script_is_not_run_again_to_call_from_it(venv, tmp_path):
    # A call is made from a frame of its recorded caller's module only when the check has that
    # module already: a script doing its work at its top level is not run again for it.
    write(tmp_path / "lib.py", """
        def add(a, b):
            return a + b
    """)
    write(tmp_path / "app.py", """
        import os
        import lib

        open(f"ran-{os.getpid()}", "w").close()
        print(lib.add(1, 2))
    """)
    record(venv, "app.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    assert len(list(tmp_path.glob("ran-*"))) == 1
    result = check(venv, "run.trace", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (1, 0, 0), describe(result)
    assert len(list(tmp_path.glob("ran-*"))) == 1, describe(result)


def test_an_exception_with_its_own_eq_is_not_compared_by_the_check(venv, tmp_path):
    # Watching `sys.exception()` for "nothing handled" must not call the exception's `__eq__`.
    write(tmp_path / "app.py", """
        import sys

        class HTTPError(Exception):
            def __init__(self, code):
                super().__init__(code)
                self.code = code

            def __eq__(self, other):
                return self.code == other.code

            __hash__ = Exception.__hash__

        def status(code):
            try:
                raise HTTPError(code)
            except HTTPError:
                return sys.exception().code, sys.exc_info()[1].code

        if __name__ == "__main__":
            print(status(404))
    """)
    record(venv, "app.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (1, 0, 0), describe(result)


def test_what_another_thread_reads_does_not_make_a_call_nondeterministic(venv, tmp_path):
    # A logger's thread reads the clock and frames all along: a regression in a call made
    # meanwhile is still a failure.
    write(tmp_path / "lib.py", """
        import logging
        import threading
        import time

        log = logging.getLogger("lib")
        # Records are made (the clock, the caller's frame) and dropped: a daemon thread's output
        # could follow fever's last line.
        log.addHandler(logging.NullHandler())
        log.propagate = False

        def _beat():
            while True:
                log.warning("beat")
                time.sleep(0.001)

        threading.Thread(target=_beat, daemon=True).start()

        def work(x):
            time.sleep(0.05)
            return x * 2
    """)
    write(tmp_path / "app.py", """
        import lib

        if __name__ == "__main__":
            print(lib.work(2), lib.work(3))
    """)
    record(venv, "app.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (2, 0, 0), describe(result)
    edit(tmp_path / "lib.py", "return x * 2", "return x + 2")
    result = check(venv, "run.trace", "-v", cwd=tmp_path, expect=1)
    assert counts(result) == (1, 1, 0), describe(result)


def test_a_zipapps_calls_are_skipped_saying_why(venv, tmp_path):
    import zipapp
    write(tmp_path / "app" / "__main__.py", """
        def twice(x):
            return 2 * x

        print(twice(21))
    """)
    zipapp.create_archive(tmp_path / "app", tmp_path / "app.pyz")
    record(venv, "app.pyz", cwd=tmp_path, trace=tmp_path / "run.trace")
    result = check(venv, "run.trace", "-v", cwd=tmp_path, expect=0)
    assert skipped(result)["__main__.twice[1]"] == (
        f"cannot import __main__: ImportError: it ran from the zipapp {tmp_path / 'app.pyz'}, "
        "whose files fever check does not load"), describe(result)
