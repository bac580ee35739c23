"""Sources of nondeterminism that `fever check` watches while it re-invokes recorded calls.

Loaded by fever before the project's modules are imported: the functions below are replaced in
their modules by wrappers that note they were called, so code that imports them afterwards
(``from random import choice`` too) gets the wrappers. A call whose result differs from its
recording after it reached one of them is reported as nondeterministic, not as a regression.

`datetime.datetime.now()`, `utcnow()`, `today()` and `datetime.date.today()` are methods of C
types, which cannot be replaced: they are seen through `sys.monitoring`'s CALL event, on a free
tool id, while a call runs. A call site whose first call is anything else is disabled at once
(`sys.monitoring.DISABLE`), so each site costs one event; a site that calls the clock only
later, through a variable holding different functions, is missed.

What a call reads outside itself differs too when it is re-invoked alone: the exception its
caller was handling (`sys.exc_info()` / `sys.exception()` finding none) and its caller's frames
(`sys._getframe(n)` / `sys._getframemodulename(n)` reaching above the called function).

A module's import that reads a source is noted with the statement of its top level that was
running (`INSTANCE_ID = hex(getrandbits(128))`): `made_at_import()` gives the values those
statements bound, which differ from process to process. The check skips a call only when
every part of its result that differs is one of them (see fever-core's `import_time`), so the
module's other functions, and the rest of that result, are still checked.
"""

import ast

import datetime
import functools
from _thread import get_ident
import os
import random
import sys
import time
import types
import uuid

_reached = []
_seeded = False
# Between `reset` and `reached`: the thread a call runs on. What that thread reaches is the
# call's; the program's other threads (a logger's, a heartbeat) are not.
_running = None
# The code of the function called, whose frame is the top of what the call may read.
_called = None
_getframe = sys._getframe
# id(module globals) -> (the globals, [(file, line of its top level, source)]): what module
# imports read outside calls.
_at_import = {}
# Between loading and `imported()`: the check imports the project's modules.
_importing = True
# File -> its top level's assignments, parsed on first use.
_assignments = {}

_RANDOM = (
    "random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform",
    "gauss", "getrandbits", "randbytes", "triangular", "normalvariate", "expovariate",
    "betavariate", "lognormvariate", "vonmisesvariate", "gammavariate", "paretovariate",
    "weibullvariate", "binomialvariate",
)
_TIME = (
    "time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
    "process_time", "process_time_ns",
)
# Functions of `time` that read the clock only when not given a time: how many arguments
# they take before the time.
_TIME_BY_DEFAULT = {"localtime": 0, "gmtime": 0, "ctime": 0, "asctime": 0, "strftime": 1}
_CLOCK_METHODS = frozenset(("now", "utcnow", "today"))


def _active():
    return _running is not None and _running == get_ident()


def _note(label):
    if _importing:
        _note_import(label)
    elif _active() and label not in _reached:
        _reached.append(label)


def _note_import(label):
    """Notes the module top-level statement running (a module being imported), if any."""
    frame = _getframe(2)
    while frame is not None and frame.f_code.co_name != "<module>":
        frame = frame.f_back
    if frame is None or frame.f_globals.get("__name__") == __name__:
        return
    reads = _at_import.setdefault(id(frame.f_globals), (frame.f_globals, []))[1]
    read = (frame.f_code, frame.f_lineno, label)
    if read not in reads:
        reads.append(read)


def _bound_at(file, line):
    """The names the top-level assignment of `file` spanning `line` binds."""
    if file not in _assignments:
        found = []
        try:
            with open(file, "rb") as source:
                tree = ast.parse(source.read())
        except (OSError, SyntaxError, ValueError):
            tree = None
        todo = list(getattr(tree, "body", ()))
        while todo:
            node = todo.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [
                    n.id for t in targets for n in ast.walk(t)
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
                ]
                found.append((node.lineno, node.end_lineno, names))
            for field in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(node, field, ()))
        _assignments[file] = found
    return [
        name for first, last, names in _assignments[file] if first <= line <= last
        for name in names
    ]


# Values too common to tell where they came from (a small int, a short text, True).
_PLAIN = (type(None), bool, type, types.FunctionType, types.BuiltinFunctionType,
          types.MethodType, types.ModuleType)


def _distinctive(value):
    if isinstance(value, _PLAIN):
        return False
    if isinstance(value, (str, bytes)):
        return len(value) >= 8
    if isinstance(value, int):
        return abs(value) >= 10 ** 6
    if isinstance(value, float):
        return not value.is_integer()
    return True


def _parts(value, depth=0):
    """`value`, the values it holds (a dict's values, a list's items) and their texts."""
    if _distinctive(value):
        yield value
        if not isinstance(value, (str, bytes, dict, list, tuple, set, frozenset)):
            try:
                text = str(value)
            except Exception:
                text = ""
            if _distinctive(text):
                yield text
    if depth < 3:
        if isinstance(value, dict):
            items = list(value.values())
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = ()
        for item in items:
            yield from _parts(item, depth + 1)


def _literals(code):
    """`(type, value)` of the texts and numbers written in `code` (and the code in it)."""
    found = set()
    todo = [code]
    while todo:
        for const in todo.pop().co_consts:
            if isinstance(const, types.CodeType):
                todo.append(const)
            elif isinstance(const, (tuple, frozenset)):
                found.update((type(c), c) for c in const if isinstance(c, (str, bytes, int, float)))
            elif isinstance(const, (str, bytes, int, float)):
                found.add((type(const), const))
    return found


def made_at_import():
    """`[(module.NAME, source, [values])]`: what the top-level assignments that read a source
    while their module was imported bound (the value, the values it holds, their texts)."""
    made = []
    for namespace, reads in list(_at_import.values()):
        for code, line, label in reads:
            literals = _literals(code)
            for name in _bound_at(code.co_filename, line):
                if name in namespace:
                    # A literal of the module (`{"name": "longname1", "t": time()}`) is the
                    # same in every process.
                    values = [
                        v for v in _parts(namespace[name])
                        if not (isinstance(v, (str, bytes, int, float))
                                and (type(v), v) in literals)
                    ]
                    if values:
                        made.append((f"{namespace.get('__name__')}.{name}", label, values))
    return made


def _outside(depth):
    """Whether the frame `depth` levels above the caller of our caller is not the called
    function's nor one below it (or does not exist)."""
    try:
        frame = _getframe(depth + 2)
    except ValueError:
        return True
    while frame is not None:
        if frame.f_code is _called:
            return False
        frame = frame.f_back
    return True


def _watch_frames():
    """Notes `sys._getframe(n)` and `sys._getframemodulename(n)` reaching above the call."""
    for name in ("_getframe", "_getframemodulename"):
        original = getattr(sys, name, None)
        if original is not None and not getattr(original, "__fever_watched__", False):
            setattr(sys, name, _frame_reader(original))


def _frame_reader(original):
    """`original` (`sys._getframe` or `sys._getframemodulename`), noting a read above the call."""
    label = "its caller's frame (sys._getframe)"

    def reader(depth=0):
        if _active() and _outside(depth):
            _note(label)
        # One frame more: this one. A negative depth is the caller's own frame, as 0 is.
        return original(depth + 1 if depth >= 0 else 1)

    functools.update_wrapper(reader, original)
    reader.__fever_watched__ = True
    return reader


# Modules that read the exception being handled for their own bookkeeping (ExitStack.__exit__),
# not to report their caller's.
_BOOKKEEPING = frozenset(("contextlib",))


def _watch_handled():
    """Notes `sys.exc_info()` and `sys.exception()` finding no exception being handled: the
    recording's caller was handling one."""
    label = "the exception its caller was handling (sys.exc_info)"
    for name in ("exc_info", "exception"):
        original = getattr(sys, name, None)
        if original is None or getattr(original, "__fever_watched__", False):
            continue

        # `is None`, not `==`: an exception's own `__eq__` is the program's code.
        def watched(original=original, triple=name == "exc_info"):
            handled = original()
            if (_active() and (handled[0] if triple else handled) is None
                    and _getframe(1).f_globals.get("__name__") not in _BOOKKEEPING):
                _note(label)
            return handled

        functools.update_wrapper(watched, original)
        watched.__fever_watched__ = True
        setattr(sys, name, watched)


def _watch(module, name, label, unless_seeded=False, time_at=None):
    original = getattr(module, name, None)
    if original is None or getattr(original, "__fever_watched__", False):
        return

    @functools.wraps(original)
    def watched(*args, **kwargs):
        if unless_seeded and _seeded:
            pass
        elif time_at is None or len(args) <= time_at or args[time_at] is None:
            _note(label)
        return original(*args, **kwargs)

    watched.__fever_watched__ = True
    setattr(module, name, watched)


def _watch_seed():
    original = random.seed
    if getattr(original, "__fever_watched__", False):
        return

    @functools.wraps(original)
    def seed(a=None, *args, **kwargs):
        global _seeded
        _seeded = a is not None
        return original(a, *args, **kwargs)

    seed.__fever_watched__ = True
    random.seed = seed


for _name in _RANDOM:
    _watch(random, _name, "random without a fixed seed", unless_seeded=True)
for _name in _TIME:
    _watch(time, _name, "the clock (time." + _name + ")")
for _name, _at in _TIME_BY_DEFAULT.items():
    _watch(time, _name, "the clock (time." + _name + ")", time_at=_at)
for _name in ("uuid1", "uuid4"):
    _watch(uuid, _name, "uuid." + _name)
_watch(os, "urandom", "os.urandom")
# `random.SystemRandom` (and `secrets`) reads os.urandom through the name random imported.
_watch(random, "_urandom", "os.urandom (random.SystemRandom)")
_watch_seed()
_watch_frames()
_watch_handled()


def _on_call(code, offset, function, arg0):
    owner = getattr(function, "__self__", None)
    if (isinstance(owner, type) and issubclass(owner, datetime.date)
            and getattr(function, "__name__", None) in _CLOCK_METHODS):
        _note(f"the clock ({owner.__module__}.{owner.__qualname__}.{function.__name__})")
        return None
    return sys.monitoring.DISABLE


def _calls_tool():
    """A free sys.monitoring tool id, taken for the CALL watcher; None if all are taken."""
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return None
    name = "fever check: the clock"
    # Loaded again (another trace checked in this process): the tool it took already.
    tools = [t for t in range(6) if monitoring.get_tool(t) == name]
    tools += [t for t in (5, 4, 3, 2, 1, 0) if monitoring.get_tool(t) is None]
    if not tools:
        return None
    if monitoring.get_tool(tools[0]) is None:
        monitoring.use_tool_id(tools[0], name)
    monitoring.register_callback(tools[0], monitoring.events.CALL, _on_call)
    return tools[0]


_tool = _calls_tool()
# The project's imports, which follow, are watched for the clock's methods too, until
# `imported()`.
if _tool is not None:
    sys.monitoring.set_events(_tool, sys.monitoring.events.CALL)


def imported():
    """The project's modules are imported: stops watching the clock's methods until a call."""
    global _importing
    _importing = False
    if _tool is not None:
        sys.monitoring.set_events(_tool, 0)


def reset(called):
    """Forgets what the previous call reached, and watches the clock's methods while the
    function whose code is `called` runs."""
    global _seeded, _running, _called, _importing
    _importing = False
    _reached.clear()
    _seeded = False
    _running = get_ident()
    _called = called
    if _tool is not None:
        sys.monitoring.set_events(_tool, sys.monitoring.events.CALL)


def reached():
    """The sources reached since `reset`, in the order first reached; stops watching."""
    global _running, _called
    _running = None
    _called = None
    if _tool is not None:
        sys.monitoring.set_events(_tool, 0)
    return list(_reached)
