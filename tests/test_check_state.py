"""`fever check` where real code and suites made it fail or miss: calls that depend on module
state a test changed (skipped, naming the state), objects rebuilt through `__reduce__`, the
clock read through `datetime`, generator calls compared by what they yielded, calls past
`--max-calls-per-function`, calls whose same recorded arguments are known only in part, and a
decorated function's object passed as `self`.

Each test records with the real `fever record`, then runs the real `fever check` (the venv's).
"""

from __future__ import annotations

import re

import pytest

from conftest import edit, write
from record_support import describe, make_cli, record
from test_check_real import check, counts, skipped


@pytest.fixture
def venv():
    return make_cli("venv")


def record_pytest(venv, project):
    record(venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project,
           trace=project / "run.trace")


LIB = """
    UNCOUNTABLE = {"fish"}

    def plural(word):
        if word in UNCOUNTABLE:
            return word
        return word + "s"

    class Lazy:
        def __init__(self, f):
            self.f = f
            self.spec = None

        def __call__(self, x):
            if self.spec is None:
                self.spec = "signature of " + self.f.__name__
            return self.f(x)

    def _double(x):
        return x * 2

    double = Lazy(_double)

    def lookup(name):
        return globals()[name]
"""

LIB_TESTS = """
    import lib

    def test_plural():
        assert lib.plural("cat") == "cats"

    def test_uncountable():
        lib.UNCOUNTABLE.add("sheep")
        try:
            assert lib.plural("sheep") == "sheep"
        finally:
            lib.UNCOUNTABLE.remove("sheep")

    def test_lazy():
        assert lib.double(2) == 4
        assert lib.lookup("double") is lib.double
"""


def record_and_check(venv, tmp_path, lib, tests):
    """`lib.py` and its tests recorded under pytest, then checked unchanged: the project, the
    check's result."""
    project = tmp_path / "proj"
    write(project / "lib.py", lib)
    write(project / "test_lib.py", tests)
    record_pytest(venv, project)
    return project, check(venv, "run.trace", "-v", cwd=project, expect=0)


def test_calls_that_depend_on_module_state_a_test_changed_are_skipped_naming_it(venv, tmp_path):
    project, result = record_and_check(venv, tmp_path, LIB, LIB_TESTS)
    reasons = skipped(result)
    # plural("sheep") ran while the test had added "sheep" to the module's set.
    assert reasons["lib.plural[2]"] == (
        "depends on module state: it reads lib.UNCOUNTABLE, which test_lib.test_uncountable "
        "(that made this call) changes, so lib.UNCOUNTABLE was not what it is now when the "
        "call was recorded"), describe(result)
    # lookup returned the module's own object, whose cache the test's first call filled.
    assert reasons["lib.lookup[1]"].startswith(
        "depends on module state: it returns lib.double, an object the module holds"), describe(result)
    assert counts(result) == (2, 0, 2), describe(result)

    # A real change is still a failure.
    edit(project / "lib.py", 'return word + "s"', 'return word + "es"')
    result = check(venv, "run.trace", cwd=project, expect=1)
    assert counts(result) == (1, 1, 2), describe(result)
    assert "lib.plural(word='cat')" in result.stdout, describe(result)


CLOCK = """
    import datetime
    import time
    from datetime import date

    def stamp(label):
        return (label, datetime.datetime.now().isoformat())

    def day(label):
        return (label, date.today().toordinal() + len(str(time.time_ns())) * 0)

    def utc(label):
        return (label, str(datetime.datetime.now(datetime.timezone.utc)))

    def formatted(label):
        return label + time.strftime("%H:%M:%S.") + str(time.perf_counter_ns())

    def fixed(label):
        return label + time.strftime("%Y", time.gmtime(0)) + datetime.date(2024, 1, 2).isoformat()

    def main():
        print(stamp("a"), day("b"), utc("c"), formatted("d"), fixed("e"))

    if __name__ == "__main__":
        main()
"""


CLASS_LIB = """
    class Memo:
        def __init__(self):
            self.filled = None

        def fill(self):
            if self.filled is None:
                self.filled = ["filled"]
            return self.filled

    class Holder:
        memo = Memo()

    def attribute(owner, name):
        return owner.__dict__[name]
"""

CLASS_LIB_TESTS = """
    import lib

    def test_attribute():
        lib.Holder.memo.fill()
        assert lib.attribute(lib.Holder, "memo") is lib.Holder.memo
"""


def test_a_call_returning_a_class_attribute_a_test_changed_is_skipped_naming_it(venv, tmp_path):
    # cachetools 8.0.2's `_MethodDescriptor._lookup(owner, name)` returns `owner.__dict__[name]`,
    # a descriptor whose cache earlier class accesses filled: recorded filled, empty when checked.
    _, result = record_and_check(venv, tmp_path, CLASS_LIB, CLASS_LIB_TESTS)
    reasons = skipped(result)
    assert reasons["lib.attribute[1]"].startswith(
        "depends on module state: it returns lib.Holder.memo, an object the module holds"
    ), describe(result)
    assert counts(result)[1] == 0, describe(result)


def test_the_clock_read_through_datetime_is_nondeterministic_not_a_failure(venv, tmp_path):
    write(tmp_path / "clock.py", CLOCK)
    record(venv, "clock.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    # day() reads time.time_ns too: its date is the same today, so it passes unless run across
    # midnight, when it is skipped naming both.
    result = check(venv, "run.trace", "--select", "clock.[!m]*", "-v", cwd=tmp_path, expect=0)
    reasons = skipped(result)
    assert reasons["__main__.stamp[1]"] == (
        "nondeterministic: it used the clock (datetime.datetime.now) and its result differs"), describe(result)
    assert reasons["__main__.utc[1]"].startswith(
        "nondeterministic: it used the clock (datetime.datetime.now)"), describe(result)
    assert reasons["__main__.formatted[1]"].startswith(
        "nondeterministic: it used the clock (time.strftime)"), describe(result)
    assert "__main__.fixed[1]" not in reasons, describe(result)
    assert counts(result)[1] == 0, describe(result)

    # fixed() formats given times: not the clock, so a change to it is a failure.
    edit(tmp_path / "clock.py", 'time.strftime("%Y", time.gmtime(0))', 'time.strftime("%y", time.gmtime(0))')
    result = check(venv, "run.trace", "--select", "clock.fixed", cwd=tmp_path, expect=1)
    assert counts(result) == (0, 1, 0), describe(result)


LATE = """
    def grade(score):
        if score > 20:
            return "high"
        return "low"

    def main():
        print([grade(i) for i in range(1, 41)])

    if __name__ == "__main__":
        main()
"""


def test_calls_past_max_calls_per_function_are_sampled_and_checked(venv, tmp_path):
    write(tmp_path / "late.py", LATE)
    recording = record(venv, "--max-calls-per-function", "4", "late.py", cwd=tmp_path,
                       trace=tmp_path / "run.trace")
    assert recording.calls == 42  # every call counted: the module, main and 40 of grade
    listed = check(venv, "run.trace", "--select", "late.grade", "--list", cwd=tmp_path, expect=0)
    # The first 4, then one per doubling of the count: the 8th, 16th and 32nd.
    assert re.findall(r"^__main__\.grade\[(\d+)\]", listed.stdout, re.M) == list("1234567"), describe(listed)

    # Only a late call (score > 20) sees this change.
    edit(tmp_path / "late.py", "score > 20", "score > 40")
    result = check(venv, "run.trace", "--select", "late.grade", cwd=tmp_path, expect=1)
    assert counts(result) == (6, 1, 0), describe(result)
    assert re.findall(r"grade\(score=(\d+)\)", result.stdout) == ["32"], describe(result)


GENERATORS = """
    def evens(limit):
        for i in range(limit):
            if i % 2 == 0:
                yield i
        return "done"

    def pairs(items):
        it = iter(items)
        for a in it:
            yield (a, next(it, None))

    def main():
        print(list(evens(7)))
        for pair in pairs("abcdefg"):
            if pair[0] == "c":
                break  # dropped after two values: those two are compared
        print(list(zip(evens(4), evens(9))))  # interleaved: each compared up to where they mix

    if __name__ == "__main__":
        main()
"""


def test_generator_calls_are_checked_by_what_they_yielded(venv, tmp_path):
    write(tmp_path / "gen.py", GENERATORS)
    record(venv, "gen.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    selected = ["--select", "gen.[!m]*"]
    result = check(venv, "run.trace", *selected, "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (4, 0, 0), describe(result)

    # Only the values from the third on change: the dropped pairs() and the interleaved calls
    # do not see it, the list(evens(7)) does.
    edit(tmp_path / "gen.py", "if i % 2 == 0:", "if i % 2 == 0 and i != 4:")
    result = check(venv, "run.trace", *selected, cwd=tmp_path, expect=1)
    assert counts(result) == (3, 1, 0), describe(result)
    assert "gen.py" in result.stdout
    assert "__main__.evens(limit=7)" in result.stdout, describe(result)
    assert "value 3 it yielded differs:\n--- recorded\n+++ now\n@@ -1 +1 @@\n-4\n+6\n" in result.stdout, describe(result)

    # The value it returns at its end (StopIteration's) counts too.
    edit(tmp_path / "gen.py", "if i % 2 == 0 and i != 4:", "if i % 2 == 0:")
    edit(tmp_path / "gen.py", 'return "done"', 'return "over"')
    result = check(venv, "run.trace", *selected, cwd=tmp_path, expect=1)
    assert counts(result)[1] >= 1, describe(result)
    assert "its end after the 4 values differs" in result.stdout, describe(result)

    # A change in the dropped generator's first two values is caught.
    edit(tmp_path / "gen.py", 'return "over"', 'return "done"')
    edit(tmp_path / "gen.py", "yield (a, next(it, None))", "yield (next(it, None), a)")
    result = check(venv, "run.trace", *selected, cwd=tmp_path, expect=1)
    assert counts(result) == (3, 1, 0), describe(result)
    assert "__main__.pairs(items='abcdefg')" in result.stdout, describe(result)


REDUCED = """
    import array
    import collections
    import functools

    def apply(f, x):
        return f(x)

    def window(d):
        return list(d)[-2:], d.maxlen

    def total(a):
        return sum(a), a.typecode

    def rest(it):
        return list(it)

    def same(it):
        return it

    def pairs(*iterables):
        return list(zip(*iterables))

    def main():
        print(apply(functools.partial(max, 3), 5))
        print(window(collections.deque([1, 2, 3, 4], maxlen=3)))
        print(total(array.array("i", [1, 2, 3])))
        it = iter([1, 2, 3, 4])
        next(it)
        print(rest(it))
        done = iter([1])
        next(done, None)
        next(done, None)
        print(same(done) is done, same(iter({"a": 1})) is not None)
        one = iter("abcd")
        print(pairs(one, one))

    if __name__ == "__main__":
        main()
"""


def test_objects_of_c_types_are_rebuilt_through_their_reduction(venv, tmp_path):
    write(tmp_path / "red.py", REDUCED)
    record(venv, "red.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    # A functools.partial, a deque with maxlen, an array, a list iterator already advanced: each
    # rebuilt by its reduction (callable, arguments, state, items), then the call checked.
    # An exhausted iterator, and a dict's key iterator (reduced to a list's), compare by what is
    # left to iterate. One iterator passed twice comes back as two: skipped, saying so.
    result = check(venv, "run.trace", "--select", "red.[!m]*", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (6, 0, 1), describe(result)
    assert skipped(result)["__main__.pairs[1]"] == (
        "its arguments hold equal str_ascii_iterator objects, which may have been one iterator "
        "when recorded (a snapshot keeps values, not which objects were the same)"), describe(result)

    edit(tmp_path / "red.py", "return list(it)", "return list(it)[1:]")
    edit(tmp_path / "red.py", "return sum(a), a.typecode", "return sum(a) + 1, a.typecode")
    result = check(venv, "run.trace", "--select", "red.[!m]*", cwd=tmp_path, expect=1)
    assert counts(result) == (4, 2, 1), describe(result)
    # The iterator was rebuilt where it was: past its first item.
    assert "__main__.rest(it=list_iterator([1, 2, 3, 4], state=1))" in result.stdout, describe(result)
    assert " [\n-    2,\n     3,\n     4,\n ]\n" in result.stdout, describe(result)



PARTLY_KNOWN = """
    def make(k):
        return lambda x: x + k

    def apply(f, x):
        return f(x)

    def main():
        print(apply(make(1), 1), apply(make(2), 1))

    if __name__ == "__main__":
        main()
"""


def test_same_arguments_known_only_in_part_are_not_called_nondeterministic(venv, tmp_path):
    write(tmp_path / "part.py", PARTLY_KNOWN)
    record(venv, "part.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    # Two lambdas of one name: the same snapshot, which holds only their name, different results.
    result = check(venv, "run.trace", "--select", "part.apply", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (0, 0, 2), describe(result)
    reason = ("the same recorded arguments gave different results, but the snapshot holds only "
              "part of them (a value known by its repr or type, cut at a limit, or a nested "
              "function): they may have differed, or it is nondeterministic")
    assert skipped(result) == {"__main__.apply[1]": reason, "__main__.apply[2]": reason}, \
        describe(result)


NAMED = """
    import functools
    import sys

    class Named:
        def __init__(self, f):
            functools.update_wrapper(self, f)
            self.f = f

        def is_global(self):
            return getattr(sys.modules[self.__module__], self.__qualname__, None) is self

    @Named
    def double(x):
        return 2 * x

    def main():
        print(double.is_global())

    if __name__ == "__main__":
        main()
"""


def test_a_decorated_functions_object_as_self_is_the_modules_own(venv, tmp_path):
    write(tmp_path / "named.py", NAMED)
    record(venv, "named.py", cwd=tmp_path, trace=tmp_path / "run.trace")
    # The recorded self was the module's `double`; a rebuilt copy is another object, so the
    # call is tried again with the module's own object, which passes.
    result = check(venv, "run.trace", "--select", "named.Named.*", "-v", cwd=tmp_path, expect=0)
    assert counts(result) == (2, 0, 0), describe(result)

    edit(tmp_path / "named.py", "None) is self", 'None) is self and self.__name__ == "triple"')
    result = check(venv, "run.trace", "--select", "named.Named.*", cwd=tmp_path, expect=1)
    assert counts(result) == (1, 1, 0), describe(result)
    assert result.stdout.startswith("__main__.Named.is_global(self=Named("), describe(result)


PATCHED_LIB = """
    import helpers

    def main(args=None):
        return helpers.run(args)

    def wrap(x):
        return [x]

    def both(x):
        return (x * 2, helpers.name(x))
"""

PATCHED_HELPERS = """
    def run(args):
        raise SystemExit(2)

    def name(x):
        return "real"
"""

PATCHED_TESTS = """
    from unittest import mock

    import lib

    def test_main_calls_run():
        # semver 3.0.4's tests patch `semver.__main__.cli.main` and call `__main__.main()`.
        with mock.patch("lib.helpers.run") as run:
            lib.main()
            run.assert_called_once()

    def test_both():
        with mock.patch("lib.helpers.name"):
            assert lib.both(3)[0] == 6

    def test_wrap():
        given = mock.Mock()
        assert lib.wrap(given) == [given]
"""


def test_a_result_a_tests_patch_made_is_skipped_and_a_mock_argument_is_not(venv, tmp_path):
    project = tmp_path / "proj"
    write(project / "helpers.py", PATCHED_HELPERS)
    write(project / "lib.py", PATCHED_LIB)
    write(project / "test_lib.py", PATCHED_TESTS)
    record_pytest(venv, project)
    result = check(venv, "run.trace", "-v", "--select", "lib.*", cwd=project, expect=0)
    reasons = skipped(result)
    assert reasons["lib.main[1]"] == (
        "ran with the test's patches: its recorded result holds a unittest.mock.MagicMock that "
        "its arguments do not, made by a patch (unittest.mock), and differs only there; a re-run "
        "without the test cannot make it again"), describe(result)
    # Only the patch's part differs: skipped.
    assert reasons["lib.both[1]"].startswith(
        "ran with the test's patches: its recorded result holds a unittest.mock.MagicMock"
    ), describe(result)
    # Given a mock, the call is checked.
    assert "lib.wrap[1]" not in reasons, describe(result)
    assert counts(result) == (1, 0, 2), describe(result)

    # A change to a call given a mock fails, and so does one to a part of a result the patch
    # did not make.
    edit(project / "lib.py", "return [x]", "return [x, x]")
    edit(project / "lib.py", "return (x * 2,", "return (x * 3,")
    result = check(venv, "run.trace", "-v", "--select", "lib.*", cwd=project, expect=1)
    assert counts(result) == (0, 2, 1), describe(result)
