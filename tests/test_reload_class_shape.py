"""Class bodies that really change: a decorated class's fields (`@dataclass`) and `__slots__`
fix the class object at creation, so editing them re-creates the class honestly (the class
statement runs again with its decorators, and fever says so); an invalid body is an error and
the old class keeps running. `from models import Item` copies get the new class too."""

import re

import pytest

from conftest import edit, looping, write

ITEM = '''
from dataclasses import dataclass, field


@dataclass
class Item:
    name: str
    qty: int = 1

    def total(self):
        return self.qty
'''

NEW_CLASS = r"^fever: redefined __main__\.Item \(fields changed: new class object; existing instances keep the old class\)"


def add_line(app, line, save):
    """Adds `line` after the `qty` field."""
    save(app, app.read_text().replace("    qty: int = 1\n", f"    qty: int = 1\n{line}\n"))


def start(fever, tmp_path, expr='Item("a")'):
    app = write(tmp_path / "app.py", looping(ITEM, expr))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ Item\(")
    return app, p


@pytest.mark.parametrize("old, new, shown", [
    ("    qty: int = 1\n", "    qty: int = 2\n", "Item(name='a', qty=2)"),
    ("    qty: int = 1\n", "    qty: int = 1\n    tags: list = field(default_factory=list)\n",
     "Item(name='a', qty=1, tags=[])"),
], ids=["changed-default", "added-field"])
def test_changed_fields(fever, tmp_path, save, old, new, shown):
    app, p = start(fever, tmp_path)
    p.wait_stdout(r"^\d+ Item\(name='a', qty=1\)$")
    save(app, app.read_text().replace(old, new))
    p.wait_stderr(NEW_CLASS)
    p.wait_stdout(rf"^\d+ {re.escape(shown)}$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_invalid_field_order_is_an_error_and_the_old_class_runs_on(fever, tmp_path, save):
    app, p = start(fever, tmp_path)
    add_line(app, "    price: float", save)
    error = p.wait_stderr(r"^fever: error: .*app\.py:\d+: (.+)$")
    assert "non-default argument 'price' follows default argument" in error[1], p.report()
    line = p.wait_iterations(5)
    assert line.string.endswith("Item(name='a', qty=1)"), p.report()
    assert not p.fever_lines(r"^fever: redefined"), p.report()
    p.assert_not_restarted()
    # The next good save applies.
    edit(app, "price: float", "price: float = 0.5", save)
    p.wait_stderr(NEW_CLASS)
    p.wait_stdout(r"^\d+ Item\(name='a', qty=1, price=0\.5\)$")


def test_slots(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        class Point:
            __slots__ = ("x",)

            def __init__(self):
                self.x = 1

            def describe(self):
                try:
                    self.y = 2
                    return f"slots {sorted(Point.__slots__)} y={self.y}"
                except AttributeError:
                    return f"slots {sorted(Point.__slots__)} no y"
        ''', "Point().describe()"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ slots \['x'\] no y$")
    edit(app, '__slots__ = ("x",)', '__slots__ = ("x", "y")', save)
    p.wait_stderr(r"^fever: redefined __main__\.Point \(fields changed: new class object; "
                  r"existing instances keep the old class\)")
    p.wait_stdout(r"^\d+ slots \['x', 'y'\] y=2$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_imported_class_and_its_copies(fever, tmp_path, save):
    """`from models import Item` in the script: the script's copy is the new class too."""
    models = write(tmp_path / "models.py", ITEM)
    write(tmp_path / "app.py", looping("from models import Item\n", 'Item("a")'))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ Item\(name='a', qty=1\)$")
    edit(models, "qty: int = 1", "qty: int = 3", save)
    p.wait_stderr(r"^fever: redefined models\.Item \(fields changed")
    p.wait_stderr(r"^fever: updated __main__\.Item \(imported from models\.Item\)")
    p.wait_stdout(r"^\d+ Item\(name='a', qty=3\)$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()
