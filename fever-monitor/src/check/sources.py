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
"""

import datetime
import functools
from _thread import get_ident
import os
import random
import sys
import time
import uuid

_reached = []
_seeded = False
# Between `reset` and `reached`: the thread a call runs on. What that thread reaches is the
# call's; the program's other threads (a logger's, a heartbeat) are not.
_running = None
# The code of the function called, whose frame is the top of what the call may read.
_called = None
# The interpreter's own: loaded again (another trace checked in this process), `sys._getframe`
# is this module's wrapper already.
_getframe = getattr(sys._getframe, "__wrapped__", sys._getframe)

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
    if _active() and label not in _reached:
        _reached.append(label)


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


def reset(called):
    """Forgets what the previous call reached, and watches the clock's methods while the
    function whose code is `called` runs."""
    global _seeded, _running, _called
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
