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
"""

import datetime
import functools
import os
import random
import sys
import time
import uuid

_reached = []
_seeded = False

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


def _note(label):
    if label not in _reached:
        _reached.append(label)


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
_watch_seed()


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


def reset():
    """Forgets what the previous call reached, and watches the clock's methods."""
    global _seeded
    _reached.clear()
    _seeded = False
    if _tool is not None:
        sys.monitoring.set_events(_tool, sys.monitoring.events.CALL)


def reached():
    """The sources reached since `reset`, in the order first reached; stops watching."""
    if _tool is not None:
        sys.monitoring.set_events(_tool, 0)
    return list(_reached)
