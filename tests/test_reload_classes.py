"""Methods of classes: plain, classmethod, staticmethod, property, zero-argument super(), new
methods seen by instances created before the save."""

import pytest

from conftest import edit, looping, write


def test_method(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        class Greeter:
            def greet(self, i):
                return f"hello-{i}"

        greeter = Greeter()
        ''', "greeter.greet(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ hello-\d+$")
    edit(app, 'return f"hello-{i}"', 'return f"bonjour-{i * 2}"', save)
    p.wait_stderr(r"^fever: reloaded __main__\.Greeter\.greet\b")
    new = p.wait_stdout(r"^(\d+) bonjour-(\d+)$")
    assert int(new[2]) == 2 * int(new[1])
    p.assert_not_restarted()
    p.assert_no_fever_errors()


SHAPE = '''
class Shape:
    side = 3

    @classmethod
    def kind(cls):
        return f"cm1-{cls.__name__}"

    @staticmethod
    def unit():
        return "sm1"

    @property
    def area(self):
        return f"p1-{self.side * self.side}"

shape = Shape()
'''


@pytest.mark.parametrize(
    "old, new, qualname, before, after",
    [
        ('f"cm1-{cls.__name__}"', 'f"cm2-{cls.__name__.upper()}"', "Shape.kind",
         "cm1-Shape cm1-Shape sm1 p1-9", "cm2-SHAPE cm2-SHAPE sm1 p1-9"),
        ('"sm1"', '"sm2"', "Shape.unit",
         "cm1-Shape cm1-Shape sm1 p1-9", "cm1-Shape cm1-Shape sm2 p1-9"),
        ('f"p1-{self.side * self.side}"', 'f"p2-{self.side + self.side}"', "Shape.area",
         "cm1-Shape cm1-Shape sm1 p1-9", "cm1-Shape cm1-Shape sm1 p2-6"),
    ],
    ids=["classmethod", "staticmethod", "property"],
)
def test_classmethod_staticmethod_property(fever, tmp_path, old, new, qualname, before, after):
    app = write(tmp_path / "app.py", looping(SHAPE, "Shape.kind(), shape.kind(), Shape.unit(), shape.area"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(rf"^\d+ {before}$")
    edit(app, old, new)
    p.wait_stderr(rf"^fever: reloaded __main__\.{qualname}\b")
    p.wait_stdout(rf"^\d+ {after}$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


SUPER = '''
class Base:
    def describe(self, i):
        return f"base{i}"

class Child(Base):
    def describe(self, i):
        return "child1+" + super().describe(i)

child = Child()
'''


def test_method_using_zero_argument_super(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping(SUPER, "child.describe(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) child1\+base\1$")
    edit(app, 'return "child1+" + super().describe(i)', 'return "child2+" + super().describe(i * 3)', save)
    p.wait_stderr(r"^fever: reloaded __main__\.Child\.describe\b")
    new = p.wait_stdout(r"^(\d+) child2\+base(\d+)$")
    assert int(new[2]) == 3 * int(new[1])
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_method_starts_using_super(fever, tmp_path, save):
    """The new code needs a `__class__` cell that the old function does not have."""
    app = write(tmp_path / "app.py", looping('''
        class Base:
            def describe(self, i):
                return f"base{i}"

        class Child(Base):
            def describe(self, i):
                return f"plain{i}"

        child = Child()
        ''', "child.describe(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) plain\1$")
    edit(app, 'return f"plain{i}"', 'return "child+" + super().describe(i)', save)
    p.wait_stderr(r"^fever: reloaded __main__\.Child\.describe\b")
    p.wait_stdout(r"^(\d+) child\+base\1$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_new_method_visible_on_existing_instance(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        class Counter:
            def base(self, i):
                return f"b{i}"

        counter = Counter()
        ''', 'counter.extra(i) if hasattr(counter, "extra") else counter.base(i)'))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) b\1$")
    edit(app, '''
            def base(self, i):
                return f"b{i}"
        ''', '''
            def base(self, i):
                return f"b{i}"

            def extra(self, i):
                return f"x{i * 2}+" + self.base(i)
        ''', save)
    p.wait_stderr(r"^fever: added __main__\.Counter\.extra\b")
    new = p.wait_stdout(r"^(\d+) x(\d+)\+b\1$")
    assert int(new[2]) == 2 * int(new[1])
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_method_default_reads_a_class_attribute(fever, tmp_path):
    app = write(tmp_path / "app.py", looping('''
        class Limits:
            LOW = 1
            HIGH = 1000

            def scale(self, x, k=LOW):
                return x * k

        limits = Limits()
        ''', "limits.scale(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) (\d+)$", where=lambda m: int(m[2]) == int(m[1]))
    edit(app, "def scale(self, x, k=LOW):", "def scale(self, x, k=HIGH):")
    p.wait_stderr(r"^fever: reloaded __main__\.Limits\.scale\b")
    p.wait_stdout(r"^(\d+) (\d+)$", where=lambda m: int(m[1]) > 0 and int(m[2]) == 1000 * int(m[1]))
    p.assert_not_restarted()
    p.assert_no_fever_errors()
